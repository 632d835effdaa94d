package aritest

import (
	"strings"
	"testing"
	"time"
)

// An application whose websocket closed stays registered while channels
// are still in it (GET /applications/{name} answers 200 and lists them),
// and is gone (404) once none is; Stasis() for it fails at once.
func TestApplicationOutlivesItsWebsocketWhileChannelsAreInIt(t *testing.T) {
	s, c, st := setup(t, Options{})
	cl := placeCall(t, s, st, CallSpec{App: "callflow", Args: []string{"number=+15550001"}})
	if r := c.do("GET", "/applications/callflow", nil, nil); r.status != 200 {
		t.Fatalf("registered app: %d %s", r.status, r.body)
	}
	if r := c.do("GET", "/applications/nosuchapp", nil, nil); r.status != 404 || r.message() != "Application not found" {
		t.Fatalf("unknown app: %d %s", r.status, r.body)
	}
	st.close()
	_ = st.waitClosed()
	waitFor(t, "the websocket to be gone", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return !s.appActiveLocked("callflow")
	})
	r := c.do("GET", "/applications/callflow", nil, nil)
	if r.status != 200 || !strings.Contains(string(r.body), cl.ID()) {
		t.Fatalf("app with a channel left, no websocket: %d %s", r.status, r.body)
	}
	if _, err := s.PlaceCall(ctxT(t), CallSpec{App: "callflow"}); err != ErrNoApplication {
		t.Fatalf("Stasis() for an app nobody serves: %v", err)
	}

	// Another application takes the channel: the first one is then gone.
	st2 := dialEvents(t, s, "callflow-b")
	if r := c.do("POST", "/channels/"+cl.ID()+"/move", vals("app", "callflow-b", "appArgs", "number=+15550001"), nil); r.status != 204 {
		t.Fatalf("move: %d %s", r.status, r.body)
	}
	ev := st2.next("StasisStart", onChannel(cl.ID()))
	if args := field(ev, "args"); len(args.([]any)) != 1 || args.([]any)[0] != "number=+15550001" {
		t.Errorf("moved StasisStart args %v", args)
	}
	// Still inside the same Stasis(): the dialplan names the first app.
	if d := str(field(ev, "channel", "dialplan", "app_data")); d != "callflow,number=+15550001" {
		t.Errorf("dialplan app_data after a move %q", d)
	}
	if r := c.do("GET", "/applications/callflow", nil, nil); r.status != 404 {
		t.Errorf("app with no channel and no websocket: %d %s", r.status, r.body)
	}
	if r := c.do("GET", "/applications/callflow-b", nil, nil); !strings.Contains(string(r.body), cl.ID()) {
		t.Errorf("moved channel not in its new app: %s", r.body)
	}
	if r := c.do("POST", "/channels/"+cl.ID()+"/answer", nil, nil); r.status != 204 {
		t.Errorf("the new app controls the moved channel: %d", r.status)
	}
	st2.next("ChannelStateChange", onChannel(cl.ID()))
}

func TestMoveErrors(t *testing.T) {
	s, c, st := setup(t, Options{})
	cl := placeCall(t, s, st, CallSpec{})
	for _, tc := range []struct {
		name   string
		id     string
		params []string
		status int
	}{
		{"unknown channel", "nope", []string{"app", "other"}, 404},
		{"no app", cl.ID(), nil, 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if r := c.do("POST", "/channels/"+tc.id+"/move", vals(tc.params...), nil); r.status != tc.status {
				t.Errorf("status %d, want %d: %s", r.status, tc.status, r.body)
			}
		})
	}
	// Moving to an application nobody serves: Stasis() gives up and the
	// dialplan goes on; the channel is then not in Stasis (409).
	if r := c.do("POST", "/channels/"+cl.ID()+"/move", vals("app", "nobody"), nil); r.status != 204 {
		t.Fatalf("move to an unserved app: %d", r.status)
	}
	st.next("StasisEnd", onChannel(cl.ID()))
	waitFor(t, "the channel to continue in the dialplan", func() bool {
		for _, ch := range s.Channels() {
			if ch.ID == cl.ID() {
				return ch.Continued != "" && !ch.InStasis
			}
		}
		return false
	})
	if r := c.do("POST", "/channels/"+cl.ID()+"/move", vals("app", "callflow"), nil); r.status != 409 {
		t.Errorf("move out of the dialplan: %d", r.status)
	}
}

// waitFor polls cond until it holds, failing after testTimeout.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
