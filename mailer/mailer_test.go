package mailer

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"log"
	"math"
	"math/big"
	"mime"
	"mime/multipart"
	"net"
	"net/mail"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/callflow/callflow/applets"
	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// ---- a real SMTP server ----

type received struct {
	From string
	To   []string
	Data []byte
	TLS  bool
	User string
}

type server struct {
	Addr string

	// settings, before start
	tlsConfig     *tls.Config
	implicitTLS   bool
	insecureAuth  bool
	user, pass    string
	mechs         []string // default PLAIN
	failData      int      // refuse this many DATA commands with 451
	dataCode      int      // refuse every DATA with this code (5xx)
	refuseRcpt    string   // refuse this recipient with 550
	mu            sync.Mutex
	msgs          []received
	dataAttempts  int
	srv           *smtp.Server
	serveFinished chan struct{}
}

func (s *server) start(t *testing.T) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.Addr = ln.Addr().String()
	s.srv = smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &session{s: s, c: c}, nil
	}))
	s.srv.Domain = "mx.test"
	s.srv.AllowInsecureAuth = s.insecureAuth
	s.srv.ErrorLog = log.New(io.Discard, "", 0)
	s.srv.ReadTimeout = time.Minute
	s.srv.WriteTimeout = time.Minute
	if s.implicitTLS {
		ln = tls.NewListener(ln, s.tlsConfig)
	} else {
		s.srv.TLSConfig = s.tlsConfig
	}
	s.serveFinished = make(chan struct{})
	go func() {
		defer close(s.serveFinished)
		_ = s.srv.Serve(ln)
	}()
	t.Cleanup(func() {
		s.srv.Close()
		<-s.serveFinished
	})
}

func (s *server) port(t *testing.T) int {
	_, p, _ := net.SplitHostPort(s.Addr)
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func (s *server) messages() []received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]received(nil), s.msgs...)
}

type session struct {
	s      *server
	c      *smtp.Conn
	authed string
	from   string
	to     []string
}

func (x *session) Reset()        { x.from, x.to = "", nil }
func (x *session) Logout() error { return nil }

func (x *session) AuthMechanisms() []string {
	if x.s.user == "" {
		return nil
	}
	if x.s.mechs != nil {
		return x.s.mechs
	}
	return []string{sasl.Plain}
}

func (x *session) Auth(mech string) (sasl.Server, error) {
	check := func(user, pass string) error {
		if user != x.s.user || pass != x.s.pass {
			return errors.New("bad credentials")
		}
		x.authed = user
		return nil
	}
	switch mech {
	case sasl.Plain:
		return sasl.NewPlainServer(func(_, user, pass string) error { return check(user, pass) }), nil
	case sasl.Login:
		return &loginServer{check: check}, nil
	}
	return nil, smtp.ErrAuthUnknownMechanism
}

func (x *session) Mail(from string, _ *smtp.MailOptions) error {
	if x.s.user != "" && x.authed == "" {
		return smtp.ErrAuthRequired
	}
	x.from = from
	return nil
}

func (x *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if to == x.s.refuseRcpt {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
	}
	x.to = append(x.to, to)
	return nil
}

func (x *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	x.s.mu.Lock()
	defer x.s.mu.Unlock()
	x.s.dataAttempts++
	if x.s.dataCode != 0 {
		return &smtp.SMTPError{Code: x.s.dataCode, EnhancedCode: smtp.EnhancedCode{5, 0, 0}, Message: "rejected"}
	}
	if x.s.dataAttempts <= x.s.failData {
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try again later"}
	}
	_, isTLS := x.c.TLSConnectionState()
	x.s.msgs = append(x.s.msgs, received{From: x.from, To: x.to, Data: b, TLS: isTLS, User: x.authed})
	return nil
}

// loginServer asks for the username, then the password, as most servers do.
type loginServer struct {
	check func(user, pass string) error
	step  int
	user  string
}

func (l *loginServer) Next(resp []byte) ([]byte, bool, error) {
	l.step++
	switch l.step {
	case 1:
		if len(resp) > 0 {
			l.user = string(resp)
			l.step++
			return []byte("Password:"), false, nil
		}
		return []byte("Username:"), false, nil
	case 2:
		l.user = string(resp)
		return []byte("Password:"), false, nil
	default:
		return nil, true, l.check(l.user, string(resp))
	}
}

// selfSigned returns a certificate for 127.0.0.1 and a pool trusting it.
func selfSigned(t *testing.T) (*tls.Config, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "mx.test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:     []string{"localhost"},
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:         true,

		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}}}, pool
}

// ---- helpers ----

// logBuf collects the mailer's JSON log lines.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) entries(t *testing.T) []map[string]any {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(l.b.String()), "\n") {
		if line == "" {
			continue
		}
		var e map[string]any
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		out = append(out, e)
	}
	return out
}

func (l *logBuf) count(t *testing.T, msg string) int {
	n := 0
	for _, e := range l.entries(t) {
		if e["message"] == msg {
			n++
		}
	}
	return n
}

// wav returns a valid 8 kHz 16-bit mono WAV of a 440 Hz tone.
func wav(samples int) []byte {
	data := make([]byte, 2*samples)
	for i := range samples {
		v := int16(8000 * math.Sin(2*math.Pi*440*float64(i)/8000))
		binary.LittleEndian.PutUint16(data[2*i:], uint16(v))
	}
	var b bytes.Buffer
	b.WriteString("RIFF")
	binary.Write(&b, binary.LittleEndian, uint32(36+len(data)))
	b.WriteString("WAVEfmt ")
	for _, v := range []any{uint32(16), uint16(1), uint16(1), uint32(8000), uint32(16000), uint16(2), uint16(16)} {
		binary.Write(&b, binary.LittleEndian, v)
	}
	b.WriteString("data")
	binary.Write(&b, binary.LittleEndian, uint32(len(data)))
	b.Write(data)
	return b.Bytes()
}

func writeWAV(t *testing.T, name string) (string, []byte) {
	t.Helper()
	b := wav(2000)
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p, b
}

func newMailer(t *testing.T, s *server, o Options) (*Mailer, *logBuf) {
	t.Helper()
	lb := &logBuf{}
	if o.Host == "" {
		o.Host = "127.0.0.1"
	}
	if o.Port == 0 && s != nil {
		o.Port = s.port(t)
	}
	if o.From == "" {
		o.From = "Callflow <callflow@pbx.test>"
	}
	if o.TLS == "" {
		o.TLS = TLSNone
	}
	if o.Backoff == 0 {
		o.Backoff = time.Millisecond
	}
	o.Hostname = "pbx.test"
	o.Logger = zerolog.New(lb)
	m := New(o)
	t.Cleanup(func() { m.Close() })
	return m, lb
}

func flush(t *testing.T, m *Mailer) {
	t.Helper()
	// A guard against a hang, not a performance assertion.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := m.Flush(ctx); err != nil {
		t.Fatalf("Flush: %v (stats %+v)", err, m.Stats())
	}
}

// parsed is a received message taken apart.
type parsed struct {
	msg   *mail.Message
	text  string
	atts  map[string][]byte
	ctype map[string]string
	raw   []byte
}

func parse(t *testing.T, raw []byte) parsed {
	t.Helper()
	for i, line := range strings.Split(string(raw), "\r\n") {
		if len(line) > 78 {
			t.Errorf("line %d is %d characters long: %q", i, len(line), line)
		}
	}
	if bytes.Contains(bytes.ReplaceAll(raw, []byte("\r\n"), nil), []byte("\n")) {
		t.Error("bare LF in message")
	}
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/mixed" {
		t.Fatalf("Content-Type %q: %v", msg.Header.Get("Content-Type"), err)
	}
	p := parsed{msg: msg, atts: map[string][]byte{}, ctype: map[string]string{}, raw: raw}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(part)
		if err != nil {
			t.Fatal(err)
		}
		if name := part.FileName(); name != "" {
			if enc := part.Header.Get("Content-Transfer-Encoding"); enc != "base64" {
				t.Errorf("%s: Content-Transfer-Encoding %q", name, enc)
			}
			dec, err := base64.StdEncoding.DecodeString(strings.ReplaceAll(string(b), "\r\n", ""))
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			p.atts[name] = dec
			p.ctype[name] = part.Header.Get("Content-Type")
			continue
		}
		// multipart.Reader undoes quoted-printable itself.
		p.text = string(b)
	}
	return p
}

// ---- tests ----

func TestDeliversWAVAttachment(t *testing.T) {
	s := &server{}
	s.start(t)
	m, _ := newMailer(t, s, Options{})
	path, want := writeWAV(t, "vm-1795237533.wav")
	if len(want) != 44+2*2000 || string(want[:4]) != "RIFF" || string(want[36:40]) != "data" {
		t.Fatalf("fixture is not a WAV file")
	}
	subject := "Voicemail from José ☎ +914430001234 (Acme Support)"
	err := m.Send(context.Background(), applets.Email{
		To:          []string{"support@acme.example", "Ops Team <ops@acme.example>"},
		Subject:     subject,
		Body:        "Caller: +914430001234\nFlow: Acme Support\nCafé: très bien\n",
		Attachments: []applets.Attachment{{Name: "vm-1795237533.wav", Path: path}},
	})
	if err != nil {
		t.Fatal(err)
	}
	flush(t, m)
	msgs := s.messages()
	if len(msgs) != 1 {
		t.Fatalf("got %d messages", len(msgs))
	}
	r := msgs[0]
	if r.From != "callflow@pbx.test" || strings.Join(r.To, ",") != "support@acme.example,ops@acme.example" {
		t.Errorf("envelope %s -> %v", r.From, r.To)
	}
	p := parse(t, r.Data)
	h := p.msg.Header
	if got, err := new(mime.WordDecoder).DecodeHeader(h.Get("Subject")); err != nil || got != subject {
		t.Errorf("Subject %q decodes to %q, %v", h.Get("Subject"), got, err)
	}
	if !strings.HasPrefix(h.Get("Subject"), "=?utf-8?") {
		t.Error("non-ASCII subject not RFC 2047 encoded")
	}
	if _, err := h.Date(); err != nil {
		t.Errorf("Date: %v", err)
	}
	if id := h.Get("Message-ID"); !strings.HasPrefix(id, "<") || !strings.HasSuffix(id, "@pbx.test>") {
		t.Errorf("Message-ID %q", id)
	}
	if from, err := h.AddressList("From"); err != nil || from[0].Address != "callflow@pbx.test" {
		t.Errorf("From %v %v", from, err)
	}
	if to, err := h.AddressList("To"); err != nil || len(to) != 2 || to[1].Name != "Ops Team" {
		t.Errorf("To %v %v", to, err)
	}
	if h.Get("MIME-Version") != "1.0" {
		t.Error("no MIME-Version")
	}
	if !strings.Contains(p.text, "Café: très bien") || !strings.Contains(p.text, "Flow: Acme Support") {
		t.Errorf("text %q", p.text)
	}
	got, ok := p.atts["vm-1795237533.wav"]
	if !ok {
		t.Fatalf("attachments %v", p.atts)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("attachment: %d bytes, want %d identical", len(got), len(want))
	}
	if ct := p.ctype["vm-1795237533.wav"]; !strings.HasPrefix(ct, "audio/wav") {
		t.Errorf("attachment Content-Type %q", ct)
	}
	if st := m.Stats(); st != (Stats{Sent: 1}) {
		t.Errorf("stats %+v", st)
	}
}

func TestStartTLS(t *testing.T) {
	cfg, pool := selfSigned(t)
	s := &server{tlsConfig: cfg}
	s.start(t)
	m, _ := newMailer(t, s, Options{TLS: TLSStartTLS, TLSConfig: &tls.Config{RootCAs: pool}})
	if err := m.Send(context.Background(), applets.Email{To: []string{"a@acme.example"}, Subject: "hi", Body: "x"}); err != nil {
		t.Fatal(err)
	}
	flush(t, m)
	msgs := s.messages()
	if len(msgs) != 1 || !msgs[0].TLS {
		t.Fatalf("messages %+v", msgs)
	}
}

func TestStartTLSRequired(t *testing.T) {
	s := &server{} // offers no STARTTLS
	s.start(t)
	m, lb := newMailer(t, s, Options{TLS: TLSStartTLS, MaxAttempts: 2})
	if err := m.Send(context.Background(), applets.Email{To: []string{"a@acme.example"}, Body: "x"}); err != nil {
		t.Fatal(err)
	}
	flush(t, m)
	if n := len(s.messages()); n != 0 {
		t.Fatalf("%d messages sent without TLS", n)
	}
	if st := m.Stats(); st.Failed != 1 {
		t.Errorf("stats %+v", st)
	}
	if !strings.Contains(lb.b.String(), "STARTTLS") {
		t.Errorf("log does not say why: %s", lb.b.String())
	}
}

func TestImplicitTLS(t *testing.T) {
	cfg, pool := selfSigned(t)
	s := &server{tlsConfig: cfg, implicitTLS: true}
	s.start(t)
	m, _ := newMailer(t, s, Options{TLS: TLSImplicit, TLSConfig: &tls.Config{RootCAs: pool}})
	if err := m.Send(context.Background(), applets.Email{To: []string{"a@acme.example"}, Body: "x"}); err != nil {
		t.Fatal(err)
	}
	flush(t, m)
	if msgs := s.messages(); len(msgs) != 1 || !msgs[0].TLS {
		t.Fatalf("messages %+v", msgs)
	}
}

func TestImplicitTLSUntrusted(t *testing.T) {
	cfg, _ := selfSigned(t)
	s := &server{tlsConfig: cfg, implicitTLS: true}
	s.start(t)
	m, _ := newMailer(t, s, Options{TLS: TLSImplicit, MaxAttempts: 1})
	if err := m.Send(context.Background(), applets.Email{To: []string{"a@acme.example"}, Body: "x"}); err != nil {
		t.Fatal(err)
	}
	flush(t, m)
	if st := m.Stats(); st.Failed != 1 || len(s.messages()) != 0 {
		t.Fatalf("stats %+v, %d messages", st, len(s.messages()))
	}
}

func TestAuth(t *testing.T) {
	cfg, pool := selfSigned(t)
	tests := []struct {
		name   string
		server *server
		opts   Options
		ok     bool
	}{
		{"plain over starttls", &server{tlsConfig: cfg, user: "pbx", pass: "s3cret"},
			Options{TLS: TLSStartTLS, TLSConfig: &tls.Config{RootCAs: pool}, Username: "pbx", Password: "s3cret"}, true},
		{"login on loopback without tls", &server{insecureAuth: true, user: "pbx", pass: "s3cret", mechs: []string{sasl.Login}},
			Options{TLS: TLSNone, Username: "pbx", Password: "s3cret"}, true},
		{"wrong password", &server{tlsConfig: cfg, user: "pbx", pass: "s3cret"},
			Options{TLS: TLSStartTLS, TLSConfig: &tls.Config{RootCAs: pool}, Username: "pbx", Password: "nope", MaxAttempts: 2}, false},
		{"no username, server wants one", &server{tlsConfig: cfg, user: "pbx", pass: "s3cret"},
			Options{TLS: TLSStartTLS, TLSConfig: &tls.Config{RootCAs: pool}, MaxAttempts: 2}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := tt.server
			s.start(t)
			m, lb := newMailer(t, s, tt.opts)
			if err := m.Send(context.Background(), applets.Email{To: []string{"a@acme.example"}, Body: "x"}); err != nil {
				t.Fatal(err)
			}
			flush(t, m)
			msgs := s.messages()
			if !tt.ok {
				if len(msgs) != 0 || m.Stats().Failed != 1 {
					t.Fatalf("delivered: %+v", msgs)
				}
				if strings.Contains(lb.b.String(), "s3cret") || strings.Contains(lb.b.String(), "nope") {
					t.Error("password in the log")
				}
				return
			}
			if len(msgs) != 1 || msgs[0].User != "pbx" {
				t.Fatalf("messages %+v\nlog: %s", msgs, lb.b.String())
			}
		})
	}
}

func TestRetriesAfterTemporaryFailure(t *testing.T) {
	s := &server{failData: 2}
	s.start(t)
	m, lb := newMailer(t, s, Options{MaxAttempts: 5})
	if err := m.Send(context.Background(), applets.Email{To: []string{"a@acme.example"}, Subject: "retry", Body: "x"}); err != nil {
		t.Fatal(err)
	}
	flush(t, m)
	if msgs := s.messages(); len(msgs) != 1 {
		t.Fatalf("%d messages", len(msgs))
	}
	if n := lb.count(t, "email delivery failed; will retry"); n != 2 {
		t.Errorf("%d retries logged, want 2", n)
	}
	for _, e := range lb.entries(t) {
		if e["message"] == "email sent" && e["attempt"] != float64(3) {
			t.Errorf("sent at attempt %v, want 3", e["attempt"])
		}
	}
	if st := m.Stats(); st != (Stats{Sent: 1}) {
		t.Errorf("stats %+v", st)
	}
}

func TestPermanentFailureIsNotRetried(t *testing.T) {
	s := &server{dataCode: 554}
	s.start(t)
	m, lb := newMailer(t, s, Options{MaxAttempts: 5})
	if err := m.Send(context.Background(), applets.Email{To: []string{"a@acme.example"}, Body: "x"}); err != nil {
		t.Fatal(err)
	}
	flush(t, m)
	s.mu.Lock()
	n := s.dataAttempts
	s.mu.Unlock()
	if n != 1 || lb.count(t, "email delivery failed; giving up") != 1 {
		t.Fatalf("%d attempts\n%s", n, lb.b.String())
	}
}

func TestRefusedRecipientIsDropped(t *testing.T) {
	s := &server{refuseRcpt: "gone@acme.example"}
	s.start(t)
	m, lb := newMailer(t, s, Options{})
	if err := m.Send(context.Background(), applets.Email{To: []string{"gone@acme.example", "a@acme.example"}, Body: "x"}); err != nil {
		t.Fatal(err)
	}
	flush(t, m)
	msgs := s.messages()
	if len(msgs) != 1 || strings.Join(msgs[0].To, ",") != "a@acme.example" {
		t.Fatalf("messages %+v", msgs)
	}
	if lb.count(t, "recipient refused") != 1 {
		t.Errorf("log: %s", lb.b.String())
	}
}

func TestDeadServer(t *testing.T) {
	m, lb := newMailer(t, nil, Options{Port: deadPort(t), MaxAttempts: 3})
	if err := m.Send(context.Background(), applets.Email{To: []string{"a@acme.example"}, Subject: "lost", Body: "x"}); err != nil {
		t.Fatalf("Send: %v", err)
	}
	flush(t, m)
	if n := lb.count(t, "email delivery failed; will retry"); n != 2 {
		t.Errorf("%d retries logged, want 2", n)
	}
	if n := lb.count(t, "email delivery failed; giving up"); n != 1 {
		t.Errorf("give-up logged %d times", n)
	}
	var attempts []float64
	for _, e := range lb.entries(t) {
		if a, ok := e["attempt"].(float64); ok {
			attempts = append(attempts, a)
			if e["subject"] != "lost" || e["error"] == nil {
				t.Errorf("log entry lacks subject or error: %v", e)
			}
		}
	}
	if len(attempts) != 3 || attempts[2] != 3 {
		t.Errorf("attempts logged %v", attempts)
	}
	if st := m.Stats(); st != (Stats{Failed: 1}) {
		t.Errorf("stats %+v", st)
	}
}

func TestFetchWhenNoPath(t *testing.T) {
	s := &server{}
	s.start(t)
	want := wav(1234)
	var mu sync.Mutex
	var fetched []string
	fetch := func(_ context.Context, name string) (io.ReadCloser, error) {
		mu.Lock()
		defer mu.Unlock()
		fetched = append(fetched, name)
		return io.NopCloser(bytes.NewReader(want)), nil
	}
	m, _ := newMailer(t, s, Options{Fetch: fetch})
	err := m.Send(context.Background(), applets.Email{
		To:          []string{"a@acme.example"},
		Body:        "x",
		Attachments: []applets.Attachment{{Recording: "vm-42"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	flush(t, m)
	msgs := s.messages()
	if len(msgs) != 1 {
		t.Fatalf("%d messages", len(msgs))
	}
	p := parse(t, msgs[0].Data)
	if !bytes.Equal(p.atts["vm-42.wav"], want) {
		t.Errorf("attachments %v", keys(p.atts))
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(fetched, ",") != "vm-42" {
		t.Errorf("fetched %v", fetched)
	}
}

func TestMissingAttachmentSentWithoutIt(t *testing.T) {
	s := &server{}
	s.start(t)
	m, lb := newMailer(t, s, Options{MaxAttempts: 3})
	missing := filepath.Join(t.TempDir(), "vm-7.wav")
	err := m.Send(context.Background(), applets.Email{
		To:          []string{"a@acme.example"},
		Body:        "Voicemail: tech",
		Attachments: []applets.Attachment{{Path: missing}},
	})
	if err != nil {
		t.Fatal(err)
	}
	flush(t, m)
	msgs := s.messages()
	if len(msgs) != 1 {
		t.Fatalf("%d messages", len(msgs))
	}
	p := parse(t, msgs[0].Data)
	if len(p.atts) != 0 {
		t.Errorf("attachments %v", keys(p.atts))
	}
	if !strings.Contains(p.text, "Voicemail: tech") || !strings.Contains(p.text, "vm-7.wav could not be included") {
		t.Errorf("text %q", p.text)
	}
	if n := lb.count(t, "email delivery failed; will retry"); n != 2 {
		t.Errorf("%d retries for the attachment, want 2", n)
	}
}

func TestSpoolSurvivesRestart(t *testing.T) {
	spool := t.TempDir()
	port := deadPort(t)

	path, want := writeWAV(t, "vm-9.wav")
	m1, _ := newMailer(t, nil, Options{Port: port, Spool: spool, Backoff: time.Hour})
	if err := m1.Send(context.Background(), applets.Email{To: []string{"a@acme.example"}, Subject: "kept", Body: "x",
		Attachments: []applets.Attachment{{Path: path}}}); err != nil {
		t.Fatal(err)
	}
	m1.Close()
	files, _ := filepath.Glob(filepath.Join(spool, "*.json"))
	if len(files) != 1 {
		t.Fatalf("spool holds %v", files)
	}

	s := &server{}
	s.start(t)
	m2, _ := newMailer(t, s, Options{Spool: spool})
	flush(t, m2)
	msgs := s.messages()
	if len(msgs) != 1 {
		t.Fatalf("%d messages after restart", len(msgs))
	}
	p := parse(t, msgs[0].Data)
	if p.msg.Header.Get("Subject") != "kept" || !bytes.Equal(p.atts["vm-9.wav"], want) {
		t.Errorf("subject %q, attachments %v", p.msg.Header.Get("Subject"), keys(p.atts))
	}
	if files, _ := os.ReadDir(spool); len(files) != 0 {
		t.Errorf("spool not emptied: %v", files)
	}
}

func TestQueueFull(t *testing.T) {
	port := deadPort(t)
	email := applets.Email{To: []string{"a@acme.example"}, Body: "x"}

	m, _ := newMailer(t, nil, Options{Port: port, QueueSize: 1, Backoff: time.Hour})
	if err := m.Send(context.Background(), email); err != nil {
		t.Fatal(err)
	}
	if err := m.Send(context.Background(), email); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("second Send: %v", err)
	}

	// With a spool the overflow waits on disk.
	spool := t.TempDir()
	ms, _ := newMailer(t, nil, Options{Port: port, QueueSize: 1, Backoff: time.Hour, Spool: spool})
	for i := range 3 {
		if err := ms.Send(context.Background(), email); err != nil {
			t.Fatalf("Send %d: %v", i, err)
		}
	}
	if st := ms.Stats(); st.Queued != 3 {
		t.Errorf("stats %+v", st)
	}
	if files, _ := filepath.Glob(filepath.Join(spool, "*.json")); len(files) != 3 {
		t.Errorf("spool holds %d files", len(files))
	}
}

func TestSendValidates(t *testing.T) {
	m, _ := newMailer(t, nil, Options{Port: 2525})
	tests := []struct {
		name string
		e    applets.Email
	}{
		{"no recipient", applets.Email{Body: "x"}},
		{"bad recipient", applets.Email{To: []string{"not an address"}}},
		{"header injection", applets.Email{To: []string{"a@acme.example\r\nBcc: x@evil.example"}}},
		{"empty attachment", applets.Email{To: []string{"a@acme.example"}, Attachments: []applets.Attachment{{Name: "x.wav"}}}},
		{"recording without fetch", applets.Email{To: []string{"a@acme.example"}, Attachments: []applets.Attachment{{Recording: "vm-1"}}}},
	}
	for _, tt := range tests {
		if err := m.Send(context.Background(), tt.e); err == nil {
			t.Errorf("%s: no error", tt.name)
		}
	}

	bad, _ := newMailer(t, nil, Options{Host: "", From: "nobody", TLS: "ssl"})
	if err := (Options{From: "x@y.example"}).Validate(); err == nil {
		t.Error("no host: no error")
	}
	if err := (Options{Host: "mx", From: "x@y.example", TLS: "ssl"}).Validate(); err == nil {
		t.Error("TLS ssl: no error")
	}
	if err := bad.Send(context.Background(), applets.Email{To: []string{"a@acme.example"}}); err == nil {
		t.Error("Send with bad options: no error")
	}
}

func TestCloseLeavesNoGoroutine(t *testing.T) {
	defer goleak.VerifyNone(t)
	port := deadPort(t)
	m := New(Options{Host: "127.0.0.1", Port: port, From: "pbx@acme.example", TLS: TLSNone, Backoff: time.Hour, Logger: zerolog.Nop()})
	if err := m.Send(context.Background(), applets.Email{To: []string{"a@acme.example"}, Body: "x"}); err != nil {
		t.Fatal(err)
	}
	m.Close()
	m.Close()
	if err := m.Send(context.Background(), applets.Email{To: []string{"a@acme.example"}}); !errors.Is(err, ErrClosed) {
		t.Errorf("Send after Close: %v", err)
	}
	if err := m.Flush(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("Flush after Close: %v", err)
	}
}

func TestBackoff(t *testing.T) {
	want := []time.Duration{30 * time.Second, time.Minute, 2 * time.Minute, 4 * time.Minute, 8 * time.Minute, 10 * time.Minute, 10 * time.Minute}
	for i, w := range want {
		if got := backoff(30*time.Second, i+1); got != w {
			t.Errorf("attempt %d: %v, want %v", i+1, got, w)
		}
	}
}

func TestLineWriter(t *testing.T) {
	var b bytes.Buffer
	lw := &lineWriter{w: &b}
	enc := base64.NewEncoder(base64.StdEncoding, lw)
	data := bytes.Repeat([]byte{0xAB}, 1000)
	for i := 0; i < len(data); i += 7 {
		enc.Write(data[i:min(i+7, len(data))])
	}
	enc.Close()
	lw.end()
	lines := strings.Split(strings.TrimSuffix(b.String(), "\r\n"), "\r\n")
	for i, l := range lines[:len(lines)-1] {
		if len(l) != 76 {
			t.Fatalf("line %d: %d chars", i, len(l))
		}
	}
	dec, err := base64.StdEncoding.DecodeString(strings.Join(lines, ""))
	if err != nil || !bytes.Equal(dec, data) {
		t.Fatalf("round trip: %v", err)
	}
}

// deadPort is a local port nothing listens on.
func deadPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
