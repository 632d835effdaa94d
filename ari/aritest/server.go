package aritest

import (
	"errors"
	"fmt"
	"math/rand"
	"net"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"time"
)

// Options configures a Server. The zero value is usable.
type Options struct {
	// Username and Password are the ARI credentials, accepted as
	// api_key=user:pass or HTTP basic auth. Defaults "callflow" / "secret".
	Username, Password string

	// DefaultMediaDuration is how long one media item plays (default 200ms).
	DefaultMediaDuration time.Duration
	// MediaDurations overrides the duration per media URI,
	// e.g. "sound:custom/acme-menu": 2*time.Second.
	MediaDurations map[string]time.Duration
	// MissingMedia lists media URIs whose file does not exist: their
	// playback ends at once with state "failed".
	MissingMedia []string

	// RecordingsDir is where stored recordings are written as real files.
	// Default: a temporary directory removed by Close.
	RecordingsDir string

	// Logf, if set, receives a debug log of what the fake does. It is
	// called with the server's lock held and must not call the Server.
	Logf func(format string, args ...any)

	// TimeScale multiplies every simulated duration: media, ringing, agent
	// delays, caller speech, and the seconds given in requests (dial and
	// originate timeouts, maxDurationSeconds, maxSilenceSeconds). 0 means 1
	// (real time); 0.01 makes a 20 s ring timeout last 200 ms. Durations
	// reported in events stay in simulated time.
	TimeScale float64

	// CreateStasisDelay is the real time a channel made by /channels/create
	// takes to enter Stasis. Zero: a random 0-2 ms, so that StasisStart
	// sometimes precedes the create response and sometimes follows it, as on
	// a loaded Asterisk. Negative: StasisStart is sent before the response.
	CreateStasisDelay time.Duration

	// OnCommandLatency, if set, receives event-to-command latencies: the
	// time from writing an event about a call to the websocket to reading
	// the client's next request about that call (latency.go says what a
	// call and a request's call are). It is called with the server's lock
	// held and must not call the Server; (*LatencyRecorder).Record fits.
	OnCommandLatency func(time.Duration)

	// SystemName is asterisk.conf's systemname: channel ids become
	// "systemname-epoch.sequence", as Asterisk makes them unique across
	// boxes. Empty: "epoch.sequence".
	SystemName string

	// OnDialLatency, if set, receives the time from writing a caller's
	// ChannelDtmfReceived to reading the first request that creates a
	// channel with that caller as originator= (POST /channels or
	// /channels/create): key pressed to first agent leg asked for. Called
	// like OnCommandLatency, with the server's lock held.
	OnDialLatency func(time.Duration)

	// OnAgentLeg, if set, is told when an agent leg (a channel created for
	// an endpoint) joins a bridge ("bridged") and when it is gone
	// ("gone"), with the endpoint: what a queue's agent-free to
	// caller-bridged time is measured from. Called with the server's lock
	// held: it must not block or call the server.
	OnAgentLeg func(endpoint, event string)

	// NoRequestLog keeps no log of REST requests (Requests returns
	// nothing), so that a long load run does not hold every request.
	NoRequestLog bool
}

// ErrNoApplication is returned by PlaceCall when no websocket is open for
// the application: a real Stasis() fails at once in that case.
var ErrNoApplication = errors.New("aritest: no websocket is open for the Stasis application")

// ErrClosed is returned when the server has been closed.
var ErrClosed = errors.New("aritest: server closed")

// Request is one REST request received by the fake.
type Request struct {
	Method string
	Path   string // e.g. "/ari/channels/1795237517.54/play"
	Query  string // raw query string
	Body   string
	Time   time.Time
	Status int
}

// ChannelInfo describes a channel of the fake.
type ChannelInfo struct {
	ID, Name, State string
	// Endpoint is the endpoint an agent leg was created for ("PJSIP/tech1");
	// empty for inbound calls.
	Endpoint string
	Inbound  bool
	// How the channel came to be: "inbound", "create" or "originate".
	Kind string
	// App is the Stasis application the channel is in, if InStasis.
	App      string
	InStasis bool
	Bridge   string
	// Originator and Formats as given on /channels/create or originate.
	Originator, Formats string
	// SampleRate is the rate the channel's media runs at: 192000 when it was
	// created without originator or formats (Asterisk then picks signed
	// linear at 192 kHz and resamples every prompt), 8000 otherwise.
	SampleRate int
	// Continued is "context,exten,priority" once the channel left Stasis by
	// /continue and fell back to the dialplan.
	Continued string
	// MusicOnHold is true while music on hold plays to the channel, on the
	// channel itself or in its bridge.
	MusicOnHold bool
	Vars        map[string]string
	Gone        bool
	HangupCause int
}

// SentMessage is a message received on PUT /endpoints/sendMessage.
type SentMessage struct {
	To, From, Body string
	Variables      map[string]string
	Time           time.Time
}

// Server is a fake Asterisk serving ARI on 127.0.0.1.
type Server struct {
	opts      Options
	scale     float64
	eid       string
	ln        net.Listener
	hs        *http.Server
	url       string
	wsURL     string
	recDir    string
	ownRecDir bool
	missing   map[string]bool
	handlers  tracker
	serveDone chan struct{}

	mu        sync.Mutex
	bg        sync.WaitGroup // timers and websocket writers
	closed    bool
	startup   time.Time
	rnd       *rand.Rand
	apps      map[string]*app
	ws        map[*wsConn]struct{}
	timers    map[*timer]struct{}
	channels  map[string]*channel
	history   []*channel
	bridges   map[string]*bridge
	playbacks map[string]*playback
	liveRecs  map[string]*recording
	agents    map[string]AgentBehavior
	devices   map[string]*device
	globals   map[string]string
	requests  []Request
	messages  []SentMessage
	latencies []time.Duration
	chanSeq   int
	nameSeq   int
}

// NewServer starts a fake Asterisk listening on 127.0.0.1:0.
func NewServer(opts Options) *Server {
	if opts.Username == "" {
		opts.Username = "callflow"
	}
	if opts.Password == "" {
		opts.Password = "secret"
	}
	if opts.DefaultMediaDuration <= 0 {
		opts.DefaultMediaDuration = 200 * time.Millisecond
	}
	s := &Server{
		opts:      opts,
		scale:     opts.TimeScale,
		eid:       "02:fc:00:00:00:01",
		missing:   map[string]bool{},
		serveDone: make(chan struct{}),
		startup:   time.Now(),
		rnd:       rand.New(rand.NewSource(time.Now().UnixNano())),
		apps:      map[string]*app{},
		ws:        map[*wsConn]struct{}{},
		timers:    map[*timer]struct{}{},
		channels:  map[string]*channel{},
		bridges:   map[string]*bridge{},
		playbacks: map[string]*playback{},
		liveRecs:  map[string]*recording{},
		agents:    map[string]AgentBehavior{},
		devices:   map[string]*device{},
		globals:   map[string]string{},
	}
	if s.scale <= 0 {
		s.scale = 1
	}
	for _, m := range opts.MissingMedia {
		s.missing[m] = true
	}
	s.recDir = opts.RecordingsDir
	if s.recDir == "" {
		d, err := os.MkdirTemp("", "aritest-recordings-")
		if err != nil {
			panic(fmt.Sprintf("aritest: %v", err))
		}
		s.recDir, s.ownRecDir = d, true
	} else if err := os.MkdirAll(s.recDir, 0o755); err != nil {
		panic(fmt.Sprintf("aritest: %v", err))
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(fmt.Sprintf("aritest: failed to listen: %v", err))
	}
	s.ln = ln
	s.url = "http://" + ln.Addr().String() + "/ari"
	s.wsURL = "ws://" + ln.Addr().String() + "/ari/events"
	s.hs = &http.Server{Handler: http.HandlerFunc(s.serveHTTP), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		defer close(s.serveDone)
		_ = s.hs.Serve(ln)
	}()
	return s
}

// URL is the ARI base URL, "http://127.0.0.1:PORT/ari".
func (s *Server) URL() string { return s.url }

// WebsocketURL is the event websocket URL, "ws://127.0.0.1:PORT/ari/events".
func (s *Server) WebsocketURL() string { return s.wsURL }

// RecordingsDir is the directory stored recordings are written to.
func (s *Server) RecordingsDir() string { return s.recDir }

// Close stops everything: timers, websockets, the HTTP server, and waits for
// every goroutine the server started.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	for t := range s.timers {
		s.stopTimerLocked(t)
	}
	conns := s.detachAllWSLocked()
	for _, c := range s.channels {
		c.markGoneLocked()
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.closeNow()
	}
	_ = s.hs.Close()
	<-s.serveDone
	s.handlers.closeAndWait()
	s.bg.Wait()
	if s.ownRecDir {
		_ = os.RemoveAll(s.recDir)
	}
}

// DropWebsockets abruptly closes every event websocket. Calls stay up;
// events produced while no websocket is open for an application are lost.
func (s *Server) DropWebsockets() {
	s.mu.Lock()
	conns := s.detachAllWSLocked()
	s.mu.Unlock()
	for _, c := range conns {
		c.closeNow()
	}
}

// Restart behaves like an Asterisk restart: websockets drop, and every
// channel, bridge, playback and live recording is forgotten without any
// StasisEnd. Stored recordings survive; HTTP keeps listening.
func (s *Server) Restart() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	for t := range s.timers {
		s.stopTimerLocked(t)
	}
	conns := s.detachAllWSLocked()
	for _, c := range s.channels {
		c.markGoneLocked()
	}
	s.channels = map[string]*channel{}
	s.bridges = map[string]*bridge{}
	s.playbacks = map[string]*playback{}
	s.liveRecs = map[string]*recording{}
	s.apps = map[string]*app{}
	s.globals = map[string]string{}
	s.startup = time.Now()
	s.mu.Unlock()
	for _, c := range conns {
		c.closeNow()
	}
	s.logf("restarted")
}

// SetAgent defines how the far end of an endpoint behaves when the
// application creates or originates a channel to it, e.g. "PJSIP/tech1" or
// "Local/6005@agents/n". Endpoints never set fail to allocate, as an unknown
// endpoint does on a real Asterisk.
func (s *Server) SetAgent(endpoint string, b AgentBehavior) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.agents[endpointKey(endpoint)] = b
}

// Requests returns the REST requests received so far.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// Channels returns the channels alive now.
func (s *Server) Channels() []ChannelInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []ChannelInfo
	for _, c := range s.sortedChannelsLocked() {
		out = append(out, c.infoLocked())
	}
	return out
}

// History returns every channel the server has had since it started,
// including those gone, in creation order.
func (s *Server) History() []ChannelInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]ChannelInfo, 0, len(s.history))
	for _, c := range s.history {
		out = append(out, c.infoLocked())
	}
	return out
}

// Bridges returns the ids of the bridges alive now.
func (s *Server) Bridges() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for id := range s.bridges {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

// StoredRecordings returns the names of the stored recordings.
func (s *Server) StoredRecordings() []string {
	var out []string
	for _, r := range s.listStored() {
		out = append(out, r.Name)
	}
	return out
}

// Messages returns the messages sent with PUT /endpoints/sendMessage.
func (s *Server) Messages() []SentMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]SentMessage(nil), s.messages...)
}

// Latencies returns event-to-command latencies: for each REST request naming
// a channel (directly, or through its playback, recording or bridge), the
// time since the last event about that channel was written to a websocket,
// when an event was sent since the previous such request.
func (s *Server) Latencies() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.latencies...)
}

func (s *Server) logf(format string, args ...any) {
	if s.opts.Logf != nil {
		s.opts.Logf("aritest: "+format, args...)
	}
}

// sim converts a simulated duration to the real time it takes.
func (s *Server) sim(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return time.Duration(float64(d) * s.scale)
}

// simSince is the simulated time elapsed since a real instant.
func (s *Server) simSince(t time.Time) time.Duration {
	return time.Duration(float64(time.Since(t)) / s.scale)
}

func (s *Server) sortedChannelsLocked() []*channel {
	out := make([]*channel, 0, len(s.channels))
	for _, c := range s.channels {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].seq < out[j].seq })
	return out
}

// timer is a scheduled callback run under s.mu; stopped timers never run.
type timer struct {
	t *time.Timer
}

// afterLocked schedules fn to run under s.mu after the real duration d.
// Callbacks are plain time.AfterFunc timers, not one goroutine per call.
func (s *Server) afterLocked(d time.Duration, fn func()) *timer {
	if s.closed {
		return nil
	}
	tm := &timer{}
	s.timers[tm] = struct{}{}
	s.bg.Add(1)
	tm.t = time.AfterFunc(d, func() {
		defer s.bg.Done()
		s.mu.Lock()
		defer s.mu.Unlock()
		if _, ok := s.timers[tm]; !ok {
			return
		}
		delete(s.timers, tm)
		fn()
	})
	return tm
}

func (s *Server) stopTimerLocked(tm *timer) {
	if tm == nil {
		return
	}
	if _, ok := s.timers[tm]; !ok {
		return
	}
	delete(s.timers, tm)
	if tm.t.Stop() {
		s.bg.Done()
	}
}

// tracker counts running HTTP handlers so Close can wait for them even
// though net/http does not.
type tracker struct {
	mu     sync.Mutex
	cond   *sync.Cond
	n      int
	closed bool
}

func (t *tracker) enter() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return false
	}
	t.n++
	return true
}

func (t *tracker) leave() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.n--
	if t.n == 0 && t.cond != nil {
		t.cond.Broadcast()
	}
}

func (t *tracker) closeAndWait() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.closed = true
	if t.cond == nil {
		t.cond = sync.NewCond(&t.mu)
	}
	for t.n > 0 {
		t.cond.Wait()
	}
}

// endpointKey normalises an endpoint: Local channel options ("/n") are
// not part of the endpoint's identity.
func endpointKey(ep string) string {
	if strings.HasPrefix(ep, "Local/") {
		rest := strings.TrimPrefix(ep, "Local/")
		if i := strings.Index(rest, "/"); i >= 0 {
			rest = rest[:i]
		}
		return "Local/" + rest
	}
	return ep
}
