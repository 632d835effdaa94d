package webhooks

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/callflow/callflow/applets"
	"github.com/callflow/callflow/flows"
)

type hookServer struct {
	mu       sync.Mutex
	failures int // answer 503 this many times first
	got      []Summary
	sigs     []string
	srv      *httptest.Server
}

func newHookServer(t *testing.T, failures int) *hookServer {
	h := &hookServer{failures: failures}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.failures > 0 {
			h.failures--
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		var s Summary
		if err := json.Unmarshal(body, &s); err != nil {
			t.Errorf("bad JSON: %v", err)
		}
		mac := hmac.New(sha256.New, []byte("k"))
		mac.Write(body)
		if r.Header.Get("X-Callflow-Signature") != "sha256="+hex.EncodeToString(mac.Sum(nil)) {
			t.Errorf("bad signature %q", r.Header.Get("X-Callflow-Signature"))
		}
		h.got = append(h.got, s)
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hookServer) received() []Summary {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Summary(nil), h.got...)
}

type mails struct {
	mu   sync.Mutex
	sent []applets.Email
}

func (m *mails) Send(ctx context.Context, e applets.Email) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sent = append(m.sent, e)
	return nil
}

func record(abandoned bool, hook, abandonedHook string) *flows.CallRecord {
	t0 := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	return &flows.CallRecord{
		ID: "c1", Transport: "ari", Flow: "Support", Caller: "+15557654321", Called: "+15550001111",
		Started: t0, Ended: t0.Add(time.Minute), Outcome: "hangup", Abandoned: abandoned, LastStep: "menu",
		Steps: []flows.StepTrace{{Seq: 1, Flow: "Support", Step: "menu", Applet: "menu", Outcome: "hangup",
			Details: map[string]any{"bids": []map[string]any{{"buyer": "a", "bid": 12.5}}}}},
		Notify: flows.Notify{PostCallWebhook: hook, AbandonedWebhook: abandonedHook, AbandonedEmail: []string{"boss@acme.example"}},
	}
}

func TestPostCallWebhookIsDeliveredAfterRetries(t *testing.T) {
	base := runtime.NumGoroutine()
	hook := newHookServer(t, 2)
	abandoned := newHookServer(t, 0)
	m := &mails{}
	s := New(Options{Backoff: 10 * time.Millisecond, Secret: "k", Mail: m, Log: zerolog.Nop()})
	s.RecordCall(record(true, hook.srv.URL, abandoned.srv.URL))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	s.Close()
	got := hook.received()
	if len(got) != 1 || got[0].Event != "call.ended" || got[0].CallID != "c1" || got[0].Bids == nil || len(got[0].Steps) != 1 {
		t.Fatalf("post-call webhook got %+v", got)
	}
	if a := abandoned.received(); len(a) != 1 || a[0].Event != "call.abandoned" || a[0].LastStep != "menu" {
		t.Errorf("abandoned webhook got %+v", a)
	}
	if len(m.sent) != 1 || m.sent[0].To[0] != "boss@acme.example" {
		t.Errorf("abandoned email %+v", m.sent)
	}
	if st := s.Stats(); st.Delivered != 2 || st.Retries != 2 || st.Failed != 0 {
		t.Errorf("stats %+v", st)
	}
	hook.srv.Close()
	abandoned.srv.Close()
	waitGoroutines(t, base)
}

func TestDeadEndpointGivesUpWithoutBlocking(t *testing.T) {
	base := runtime.NumGoroutine()
	dead := httptest.NewServer(http.NotFoundHandler())
	url := dead.URL
	dead.Close()
	s := New(Options{Backoff: time.Millisecond, MaxAttempts: 3, Log: zerolog.Nop()})
	s.RecordCall(record(false, url, ""))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if st := s.Stats(); st.Failed != 1 || st.Retries != 2 {
		t.Errorf("stats %+v", st)
	}
	waitGoroutines(t, base)
}

func waitGoroutines(t *testing.T, base int) {
	t.Helper()
	for range 500 {
		if runtime.NumGoroutine() <= base {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Errorf("%d goroutines left, started with %d", runtime.NumGoroutine(), base)
}
