package server

import (
	"bytes"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/callflow/callflow/applets"
	"github.com/callflow/callflow/ari/aritest"
	"github.com/callflow/callflow/config"
	"github.com/callflow/callflow/internal/pgtest"
	"github.com/callflow/callflow/store"
)

// flakySMTP is a real SMTP server that answers 451 (try again later) to
// every message while down.
type flakySMTP struct {
	down atomic.Bool
	mu   sync.Mutex
	msgs [][]byte
}

func (f *flakySMTP) NewSession(*smtp.Conn) (smtp.Session, error) { return &flakySession{f: f}, nil }

type flakySession struct{ f *flakySMTP }

func (s *flakySession) Mail(string, *smtp.MailOptions) error { return nil }
func (s *flakySession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (s *flakySession) Reset()                               {}
func (s *flakySession) Logout() error                        { return nil }
func (s *flakySession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if s.f.down.Load() {
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try again later"}
	}
	s.f.mu.Lock()
	s.f.msgs = append(s.f.msgs, b)
	s.f.mu.Unlock()
	return nil
}

func (f *flakySMTP) received() [][]byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([][]byte(nil), f.msgs...)
}

// A voicemail email the mail server turns away waits in the database's
// outbox, not in the node's spool: when that node and its Asterisk box are
// gone, another node sends it, with the message's audio (from the
// database's copy) attached, exactly once.
func TestEmailRetryIsSentByAnotherNode(t *testing.T) {
	dsn := pgtest.Database(t, "mail")
	backend := &flakySMTP{}
	backend.down.Store(true)
	srv := smtp.NewServer(backend)
	srv.Domain = "localhost"
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Close()
	port := ln.Addr().(*net.TCPAddr).Port

	src, err := os.ReadFile(filepath.Join(repoTestdata, "flows", "after-hours.toml"))
	if err != nil {
		t.Fatal(err)
	}
	dir := writeFlowDir(t, map[string]string{"after-hours.toml": string(src)})
	node := func(name string) *harness {
		return startWith(t, harnessOptions{flowsDir: dir,
			services: func(*harness) applets.Services { return applets.Services{} }, // the server's own mailer and inbox
			tweak: []func(*config.Config){func(c *config.Config) {
				c.Database, c.DataDir, c.Node.Name = dsn, t.TempDir(), name
				c.SMTP.Host, c.SMTP.Port, c.SMTP.TLS, c.SMTP.From = "127.0.0.1", port, "none", "callflow@acme.example"
				c.SMTP.RetryAfter.UnmarshalTOMLValue("200ms")
			}}})
	}

	a := node("node-a")
	c := a.call(aritest.CallSpec{Exten: "+914430009999", Talk: 2 * time.Second})
	hangupWhenDone(t, c)
	a.record(c.ID())
	st := a.srv.Store()
	var vm store.Voicemail
	waitUntil(t, "the message's audio in the database", func() bool {
		vms, _, err := st.ListVoicemails(ctxT(t), store.VoicemailFilter{Scope: store.AllWorkspaces()})
		if err != nil || len(vms) != 1 {
			return false
		}
		vm = vms[0]
		have, err := st.HasAudio(ctxT(t), vm.Recording)
		return err == nil && have
	})
	waitUntil(t, "the refused email in the outbox", func() bool {
		n, err := st.OutboxLen(ctxT(t))
		return err == nil && n == 1
	})
	stored, err := os.ReadFile(filepath.Join(a.ast.RecordingsDir(), vm.Recording+".wav"))
	if err != nil {
		t.Fatal(err)
	}
	a.stop()
	a.ast.Close() // the box is gone, and its recordings with it

	backend.down.Store(false)
	b := node("node-b")
	waitUntil(t, "the email sent by the other node", func() bool { return len(backend.received()) == 1 })
	waitUntil(t, "the outbox emptied", func() bool {
		n, err := b.srv.Store().OutboxLen(ctxT(t))
		return err == nil && n == 0
	})
	msgs := backend.received()
	if len(msgs) != 1 {
		t.Fatalf("%d emails sent, want 1", len(msgs))
	}
	if wav := attachment(t, msgs[0]); !bytes.Equal(wav, stored) {
		t.Errorf("attachment (%d bytes) is not the recording (%d bytes)", len(wav), len(stored))
	}
}
