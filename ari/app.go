package ari

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/rs/zerolog"

	"github.com/callflow/callflow/applets/call"
)

// Why a call's context ended, besides the caller hanging up (call.ErrHangup).
var (
	errVanished  = errors.New("channel vanished")
	errShutdown  = errors.New("shutting down")
	errTransport = errors.New("transport stopped")
	errCallDone  = errors.New("call ended")
	errReplaced  = errors.New("application replaced by another connection")
)

const (
	pingInterval = 20 * time.Second
	pingTimeout  = 10 * time.Second
	// a connection that lived this long resets the reconnect backoff
	stableAfter = 10 * time.Second
)

// route says which call owns a channel or bridge id.
type route struct {
	call *Call
	id   string // the key, so events can share it instead of allocating
	// live is set once the channel was seen in Stasis: only those are
	// checked by the reconcile, so a leg being created is not "vanished".
	live bool
}

// App is the Stasis application: one websocket, one reader goroutine that
// routes events to per-call queues, and one goroutine per inbound call.
type App struct {
	opts     Options
	h        call.Handler
	log      zerolog.Logger
	client   *client   // HTTP to Asterisk: the websocket's credentials, downloads
	rest     requester // every REST request; the client unless a test scripts Asterisk
	wsClient *http.Client
	guards   guards

	mu     sync.RWMutex
	routes map[string]route
	calls  map[string]*Call
	idle   chan struct{} // closed when the last call ends, if someone waits
	// adopted are conversations an earlier process bridged (orphans.go).
	adopted  map[string]*adoption
	nAdopted atomic.Int64
	// adoptionsOver: Run is ending; a time limit that fires now does
	// nothing (guarded by mu).
	adoptionsOver bool
	ended         recentlyEnded
	// moved are channels a standby moved here from its primary (standby.go).
	moved   map[string]bool // true once its StasisStart arrived
	standby standbyState

	draining   atomic.Bool
	systemName atomic.Pointer[string] // Asterisk's systemname, read at each connection
	connected  atomic.Bool
	replaced   atomic.Bool
	reconnects atomic.Int64
	originated atomic.Int64 // numbers the channels Originate makes
	errMu      sync.Mutex
	lastErr    string

	callsCtx    context.Context
	cancelCalls context.CancelCauseFunc

	helpers sync.WaitGroup // short REST chores started by Run's goroutines

	runMu    sync.Mutex
	started  bool
	runDone  chan struct{}
	stop     chan struct{}
	stopOnce sync.Once

	// reader-owned
	raw  rawEvent
	wire wireEvent
	rbuf bytes.Buffer
}

// New returns an application; Run connects it.
func New(opts Options, h call.Handler) *App {
	opts.setDefaults()
	a := &App{
		opts:     opts,
		h:        h,
		log:      opts.Logger.With().Str("app", opts.App).Logger(),
		client:   newClient(opts.URL, opts.Username, opts.Password, opts.RequestTimeout, opts.MaxConns),
		wsClient: &http.Client{Transport: &http.Transport{Proxy: http.ProxyFromEnvironment}},
		routes:   make(map[string]route),
		calls:    make(map[string]*Call),
		adopted:  make(map[string]*adoption),
		moved:    make(map[string]bool),
		runDone:  make(chan struct{}),
		stop:     make(chan struct{}),
		guards:   defaultGuards(),
	}
	a.rest = a.client
	a.callsCtx, a.cancelCalls = context.WithCancelCause(context.Background())
	a.standby.arrived = make(chan struct{}, 1)
	return a
}

// Health reports the transport's state.
func (a *App) Health() Health {
	a.mu.RLock()
	n := len(a.calls)
	a.mu.RUnlock()
	a.errMu.Lock()
	le := a.lastErr
	a.errMu.Unlock()
	return Health{
		Connected:       a.connected.Load(),
		Replaced:        a.replaced.Load(),
		ActiveCalls:     n,
		Reconnects:      int(a.reconnects.Load()),
		LastError:       le,
		Draining:        a.draining.Load(),
		App:             a.opts.App,
		StandbyFor:      a.opts.StandbyFor,
		PrimaryAlive:    a.opts.StandbyFor != "" && a.standby.primaryAlive.Load(),
		AdoptedChannels: int(a.standby.adoptedChannels.Load()),
		Takeovers:       int(a.standby.takeovers.Load()),
		SystemName:      a.systemNameNow(),
	}
}

func (a *App) systemNameNow() string {
	if p := a.systemName.Load(); p != nil {
		return *p
	}
	return ""
}

func (a *App) setErr(err error) {
	a.errMu.Lock()
	a.lastErr = err.Error()
	a.errMu.Unlock()
}

// Run connects to Asterisk and pumps events until ctx ends or Shutdown
// finishes, reconnecting with backoff. After every connect it reconciles
// the calls in progress against the channels Asterisk still has. It
// returns nil once stopped; calls still running then have their context
// cancelled.
func (a *App) Run(ctx context.Context) error {
	a.runMu.Lock()
	if a.started {
		a.runMu.Unlock()
		return errors.New("ari: Run called twice")
	}
	a.started = true
	a.runMu.Unlock()
	defer close(a.runDone)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	a.helpers.Add(1)
	go func() {
		defer a.helpers.Done()
		select {
		case <-a.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	if a.opts.StandbyFor != "" {
		a.standby.primaryAlive.Store(true) // until its heartbeat is seen standing still
		a.helpers.Add(1)
		go a.watchPrimary(ctx)
	}

	backoff := a.opts.ReconnectMin
	first := true
	for ctx.Err() == nil {
		conn, err := a.dial(ctx)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			a.setErr(err)
			a.log.Warn().Err(err).Dur("retry_in", backoff).Msg("event websocket connect failed")
			if !sleepCtx(ctx, backoff) {
				break
			}
			backoff = min(backoff*2, a.opts.ReconnectMax)
			continue
		}
		reconnect := !first
		if reconnect {
			a.reconnects.Add(1)
		}
		a.log.Info().Bool("reconnect", reconnect).Msg("event websocket connected")
		first = false
		a.connected.Store(true)
		began := time.Now()
		err = a.pump(ctx, conn, reconnect)
		a.connected.Store(false)
		if ctx.Err() != nil {
			break
		}
		a.setErr(err)
		switch {
		case errors.Is(err, errReplaced):
			// Reconnecting takes the name back from the other instance:
			// do it slowly.
			backoff = a.opts.ReconnectMax
		case time.Since(began) > stableAfter:
			backoff = a.opts.ReconnectMin
		}
		a.log.Warn().Err(err).Dur("retry_in", backoff).Msg("event websocket closed")
		if !sleepCtx(ctx, backoff) {
			break
		}
		backoff = min(backoff*2, a.opts.ReconnectMax)
	}
	a.connected.Store(false)
	// Calls still running can no longer hear from Asterisk.
	a.cancelCalls(errTransport)
	a.stopAdoptions()
	a.helpers.Wait()
	a.client.close()
	a.wsClient.CloseIdleConnections()
	return nil
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func (a *App) dial(ctx context.Context) (*websocket.Conn, error) {
	dctx, cancel := context.WithTimeout(ctx, a.opts.RequestTimeout)
	defer cancel()
	u := a.opts.WebsocketURL
	if strings.Contains(u, "?") {
		u += "&"
	} else {
		u += "?"
	}
	p := params{}
	p.add("app", a.opts.App).addBool("subscribeAll", false)
	u += string(p.b)
	hdr := http.Header{}
	if a.client.auth != "" {
		hdr.Set("Authorization", a.client.auth)
	}
	conn, _, err := websocket.Dial(dctx, u, &websocket.DialOptions{
		HTTPClient:      a.wsClient,
		HTTPHeader:      hdr,
		CompressionMode: websocket.CompressionDisabled,
	})
	if err != nil {
		return nil, err
	}
	conn.SetReadLimit(4 << 20)
	return conn, nil
}

// pump is the one reader: it decodes each event and hands it to the call
// that owns it without ever waiting on that call.
func (a *App) pump(ctx context.Context, conn *websocket.Conn, reconnect bool) error {
	cctx, cancel := context.WithCancel(ctx)
	// The read itself gets no context: a cancellable one costs an
	// allocation per message; closing the connection ends the read.
	stop := context.AfterFunc(cctx, func() { conn.CloseNow() })
	defer func() {
		cancel()
		stop()
		conn.CloseNow()
	}()
	// The calls and legs of before this connection: those created from
	// now on get their events live and need no reconcile, which, racing
	// their events, could end a leg as vanished before its hangup cause
	// is read.
	before := a.liveRoutes()
	a.helpers.Add(3)
	go a.pinger(cctx, conn)
	go a.afterConnect(cctx, reconnect, before)
	go a.heartbeat(cctx)
	for {
		_, r, err := conn.Reader(context.Background())
		if err != nil {
			return err
		}
		a.rbuf.Reset()
		if _, err := a.rbuf.ReadFrom(r); err != nil {
			return err
		}
		if a.dispatch(a.rbuf.Bytes()) {
			return errReplaced
		}
	}
}

func (a *App) pinger(ctx context.Context, conn *websocket.Conn) {
	defer a.helpers.Done()
	t := time.NewTicker(pingInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			pctx, cancel := context.WithTimeout(ctx, pingTimeout)
			err := conn.Ping(pctx)
			cancel()
			if err != nil && ctx.Err() == nil {
				a.log.Warn().Err(err).Msg("event websocket ping failed")
				conn.CloseNow()
				return
			}
		}
	}
}

func (a *App) afterConnect(ctx context.Context, reconnect bool, before []liveRoute) {
	defer a.helpers.Done()
	if a.opts.EventFilter {
		if err := a.setEventFilter(ctx); err != nil && ctx.Err() == nil {
			a.log.Warn().Err(err).Msg("event filter not set")
		}
	}
	a.checkSystemName(ctx)
	a.reconcile(ctx, reconnect, before)
	a.watchDevices(ctx)
}

// watchDevices subscribes to the agents' device states and reads each
// one's state now (changes while disconnected produced no event).
func (a *App) watchDevices(ctx context.Context) {
	if a.opts.Devices == nil {
		return
	}
	for _, d := range a.opts.Devices.Devices(ctx) {
		p := params{}
		p.add("eventSource", "deviceState:"+d)
		if err := a.rest.do(ctx, http.MethodPost, "/applications/"+esc(a.opts.App)+"/subscription", &p, nil, nil); err != nil {
			if ctx.Err() == nil {
				a.log.Warn().Err(err).Str("device", d).Msg("device state not followed")
			}
			continue
		}
		var st struct {
			State string `json:"state"`
		}
		if err := a.rest.do(ctx, http.MethodGet, "/deviceStates/"+esc(d), nil, nil, &st); err == nil {
			a.opts.Devices.DeviceState(d, st.State)
		}
	}
}

// deviceState hands a DeviceStateChanged to the watcher.
func (a *App) deviceState(b []byte) {
	if a.opts.Devices == nil {
		return
	}
	var ev struct {
		DeviceState struct {
			Name  string `json:"name"`
			State string `json:"state"`
		} `json:"device_state"`
	}
	if err := json.Unmarshal(b, &ev); err != nil || ev.DeviceState.Name == "" {
		a.log.Warn().Err(err).Msg("undecodable DeviceStateChanged")
		return
	}
	a.opts.Devices.DeviceState(ev.DeviceState.Name, ev.DeviceState.State)
}

// checkSystemName reads Asterisk's systemname, for Health and, with
// SharedCallIDs, a warning when it has none.
func (a *App) checkSystemName(ctx context.Context) {
	var info struct {
		Config struct {
			Name string `json:"name"`
		} `json:"config"`
	}
	if err := a.rest.do(ctx, http.MethodGet, "/asterisk/info", nil, nil, &info); err != nil {
		a.log.Debug().Err(err).Msg("asterisk info not read")
		return
	}
	a.systemName.Store(&info.Config.Name)
	if info.Config.Name == "" && a.opts.SharedCallIDs {
		a.log.Warn().Msg("Asterisk has no systemname (asterisk.conf): its call ids are epoch.sequence, the same as another box's, so calls of two boxes sharing this database can overwrite each other's records; set a systemname on every box")
	}
}

func (a *App) setEventFilter(ctx context.Context) error {
	type typ struct {
		Type string `json:"type"`
	}
	var body struct {
		Allowed    []typ `json:"allowed"`
		Disallowed []typ `json:"disallowed"`
	}
	for _, t := range filterTypes() {
		body.Allowed = append(body.Allowed, typ{t})
	}
	body.Disallowed = []typ{}
	return a.rest.do(ctx, http.MethodPut, "/applications/"+esc(a.opts.App)+"/eventFilter", nil, &body, nil)
}

// dispatch handles one event; it reports whether the application was
// taken over by another connection.
func (a *App) dispatch(b []byte) bool {
	switch peekKind(b) {
	case evNone:
		return false
	case evDeviceState:
		a.deviceState(b)
		return false
	}
	r := &a.raw
	if !scanEvent(b, r) {
		if err := unmarshalWire(b, &a.wire); err != nil {
			a.log.Warn().Err(err).Msg("undecodable event")
			return false
		}
		r.fromWire(&a.wire)
	}
	switch r.kind {
	case evNone:
		return false
	case evAppReplaced:
		a.replaced.Store(true)
		a.log.Error().Msg("ApplicationReplaced: another websocket took over this Stasis application name; two instances must not share it")
		return true
	case evStasisStart:
		a.stasisStart(r)
		return false
	}
	idb, refb, stb := r.routing()
	a.mu.RLock()
	rt, ok := a.routes[string(idb)]
	a.mu.RUnlock()
	if !ok {
		if (r.kind == evStasisEnd || r.kind == evDestroyed) && a.nAdopted.Load() > 0 {
			a.adoptedGone(string(idb))
		}
		return false
	}
	ev := event{kind: r.kind, cause: int32(r.cause), soft: r.soft, dur: int32(r.recDur), id: rt.id, state: intern(stb)}
	if len(refb) > 0 {
		ev.ref = string(refb)
	}
	c := rt.call
	if ev.id == c.id && (ev.kind == evStasisEnd || ev.kind == evDestroyed) {
		c.cancel(call.ErrHangup)
	}
	c.push(ev)
	return false
}

func (a *App) stasisStart(r *rawEvent) {
	a.mu.Lock()
	if rt, ok := a.routes[string(r.ch.id)]; ok {
		// One of our own legs (or a channel we already run).
		rt.live = true
		a.routes[rt.id] = rt
		a.mu.Unlock()
		rt.call.push(event{kind: evStasisStart, id: rt.id, state: intern(r.ch.state)})
		return
	}
	a.mu.Unlock()
	id := string(r.ch.id)
	if moved, _ := a.wasMoved(id); moved {
		a.movedIn(id) // taken from the primary: takeArrived starts or adopts it
		return
	}
	if len(r.args) > 0 && string(r.args[0]) == dialedMarker {
		// A leg whose dial is over (or an earlier instance's): nobody
		// will bridge it.
		a.hangupOrphan(id)
		return
	}
	var args []string
	if len(r.args) > 0 {
		args = make([]string, len(r.args))
		for i, v := range r.args {
			args[i] = string(v)
		}
	}
	ch := &r.ch
	in := parseInbound(args, string(ch.exten), string(ch.context), string(ch.callerNumber), string(ch.callerName), string(ch.name))
	a.startCall(id, intern(ch.state), in)
}

func (a *App) startCall(id, state string, in inbound) {
	a.mu.Lock()
	if _, ok := a.routes[id]; ok {
		a.mu.Unlock()
		return
	}
	if a.draining.Load() {
		a.mu.Unlock()
		a.continueInDialplan(id)
		return
	}
	c := newCall(a, id, state, in)
	if in.Resumed {
		// Legs and bridges of the run before may still exist: new ids.
		c.seq = int(time.Now().UnixMilli() % 1e9)
	}
	a.routes[id] = route{call: c, id: id, live: true}
	a.calls[id] = c
	a.mu.Unlock()
	go a.runCall(c)
}

// continueInDialplan sends a call we will not take back to the dialplan,
// whose fallback after Stasis() then runs.
func (a *App) continueInDialplan(id string) {
	a.helpers.Add(1)
	go func() {
		defer a.helpers.Done()
		err := a.rest.do(context.Background(), http.MethodPost, "/channels/"+esc(id)+"/continue", nil, nil, nil)
		a.log.Info().Str("call", id).Err(err).Msg("not taking calls: sent back to the dialplan")
	}()
}

func (a *App) hangupOrphan(id string) {
	a.helpers.Add(1)
	go func() {
		defer a.helpers.Done()
		err := a.rest.do(context.Background(), http.MethodDelete, "/channels/"+esc(id), nil, nil, nil)
		if err != nil && !IsNotFound(err) {
			a.log.Warn().Str("channel", id).Err(err).Msg("orphan leg hangup failed")
			return
		}
		a.log.Debug().Str("channel", id).Msg("orphan leg hung up")
	}()
}

func (a *App) runCall(c *Call) {
	defer a.endCall(c)
	defer func() {
		if r := recover(); r != nil {
			c.log.Error().Str("panic", fmt.Sprint(r)).Bytes("stack", debug.Stack()).Msg("call handler panicked")
		}
	}()
	c.log.Debug().Str("number", c.in.Number).Str("from", c.in.CallerNumber).Str("flow", c.in.FlowName).Msg("call start")
	a.h.HandleCall(c.ctx, c, c.in.route())
}

func (a *App) endCall(c *Call) {
	c.chores.Wait()
	cause := context.Cause(c.ctx)
	if cause == nil && !c.hungUp {
		// The handler left the caller in Stasis: nobody would ever talk
		// to them again.
		if err := a.rest.do(context.Background(), http.MethodDelete, "/channels/"+esc(c.id), nil, nil, nil); err != nil && !IsNotFound(err) {
			c.log.Warn().Err(err).Msg("hangup after handler failed")
		}
	}
	c.cancel(errCallDone)
	c.stopTimer()
	a.mu.Lock()
	delete(a.routes, c.id)
	for _, id := range c.owned {
		delete(a.routes, id)
	}
	delete(a.calls, c.id)
	a.ended.add(c.id, time.Now())
	if len(a.calls) == 0 && a.idle != nil {
		close(a.idle)
		a.idle = nil
	}
	a.mu.Unlock()
	// The flow runner logs every call's start and end at info; the
	// transport adds a line of its own only when the call ended for a
	// reason of its own (the websocket lost, a drain).
	end, lvl := "completed", zerolog.DebugLevel
	switch {
	case errors.Is(cause, call.ErrHangup):
		end = "caller hung up"
	case cause != nil:
		end, lvl = cause.Error(), zerolog.InfoLevel
	case c.hungUp:
		end = "hung up"
	}
	c.log.WithLevel(lvl).Dur("duration", time.Since(c.started)).Str("end", end).Int64("events", c.events.Load()).Msg("call end")
}

// liveRoute is a channel in Stasis that a call runs (its own, or a leg).
type liveRoute struct {
	id   string
	call *Call
}

func (a *App) liveRoutes() []liveRoute {
	a.mu.RLock()
	defer a.mu.RUnlock()
	live := make([]liveRoute, 0, len(a.routes))
	for id, r := range a.routes {
		if r.live {
			live = append(live, liveRoute{id, r.call})
		}
	}
	return live
}

// reconcile ends the calls whose channel Asterisk no longer has (events
// lost while disconnected, or Asterisk restarted), tells the others to
// check what they wait for after a reconnect, and picks up channels that
// entered the application while no websocket was open. cands are the
// routes live when the connection opened (liveRoutes).
func (a *App) reconcile(ctx context.Context, reconnect bool, cands []liveRoute) {
	var chans []channelData
	if err := a.rest.do(ctx, http.MethodGet, "/channels", nil, nil, &chans); err != nil {
		if ctx.Err() == nil {
			a.log.Warn().Err(err).Msg("reconcile: listing channels failed")
		}
		return
	}
	present := channelIDs(chans)
	a.forgetMoved(present)
	gone := 0
	for _, x := range cands {
		if _, ok := present[x.id]; ok {
			continue
		}
		if x.id == x.call.id {
			gone++
			x.call.log.Warn().Msg("channel vanished")
			x.call.cancel(errVanished)
		}
		x.call.push(event{kind: evVanished, id: x.id})
	}
	if reconnect {
		a.mu.RLock()
		for id, c := range a.calls {
			if _, ok := present[id]; ok {
				c.push(event{kind: evResync, id: id})
			}
		}
		a.mu.RUnlock()
	}
	a.mu.RLock()
	var lost []string
	for id := range a.adopted {
		if _, ok := present[id]; !ok {
			lost = append(lost, id)
		}
	}
	a.mu.RUnlock()
	for _, id := range lost {
		a.adoptedGone(id)
	}
	picked := a.takeOrphans(ctx, chans)
	a.log.Info().Int("channels", len(chans)).Int("vanished", gone).Int("picked_up", picked).Msg("reconciled")
}

// Shutdown stops taking calls (new ones go back to the dialplan), lets the
// calls in progress finish for up to DrainTimeout, hangs up the rest,
// waits for their handlers and stops Run.
func (a *App) Shutdown(ctx context.Context) error {
	a.mu.Lock()
	a.draining.Store(true)
	n := len(a.calls)
	a.mu.Unlock()
	a.log.Info().Int("calls", n).Dur("drain", a.opts.DrainTimeout).Msg("draining")

	t := time.NewTimer(a.opts.DrainTimeout)
	defer t.Stop()
	select {
	case <-a.waitIdle():
	case <-t.C:
	case <-ctx.Done():
	}

	a.mu.RLock()
	left := make([]*Call, 0, len(a.calls))
	for _, c := range a.calls {
		left = append(left, c)
	}
	a.mu.RUnlock()
	if len(left) > 0 {
		a.log.Warn().Int("calls", len(left)).Msg("drain time over: hanging up")
		a.hangupAll(left)
	}
	var err error
	select {
	case <-a.waitIdle():
	case <-ctx.Done():
		err = ctx.Err()
	}
	a.stopOnce.Do(func() { close(a.stop) })
	a.runMu.Lock()
	started := a.started
	a.runMu.Unlock()
	if started {
		select {
		case <-a.runDone:
		case <-ctx.Done():
			err = ctx.Err()
		}
	}
	return err
}

func (a *App) waitIdle() <-chan struct{} {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.calls) == 0 {
		ch := make(chan struct{})
		close(ch)
		return ch
	}
	if a.idle == nil {
		a.idle = make(chan struct{})
	}
	return a.idle
}

func (a *App) hangupAll(calls []*Call) {
	const workers = 32
	sem := make(chan struct{}, workers)
	var wg sync.WaitGroup
	for _, c := range calls {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			err := a.rest.do(context.Background(), http.MethodDelete, "/channels/"+esc(c.id), nil, nil, nil)
			if err != nil && !IsNotFound(err) {
				c.log.Warn().Err(err).Msg("shutdown hangup failed")
			}
			c.cancel(errShutdown)
		}()
	}
	wg.Wait()
}
