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

// memOutbox is an Outbox in memory, with the store's claim rules.
type memOutbox struct {
	mu     sync.Mutex
	next   int64
	items  map[int64]*Retry
	leases map[int64]time.Time
}

func newMemOutbox() *memOutbox {
	return &memOutbox{items: map[int64]*Retry{}, leases: map[int64]time.Time{}}
}

func (o *memOutbox) Add(_ context.Context, r Retry) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.next++
	r.ID = o.next
	o.items[r.ID] = &r
	return nil
}

func (o *memOutbox) Claim(_ context.Context, _ string, now time.Time, lease time.Duration, max int) ([]Retry, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []Retry
	for id, r := range o.items {
		if len(out) < max && !r.Due.After(now) && !o.leases[id].After(now) {
			o.leases[id] = now.Add(lease)
			out = append(out, *r)
		}
	}
	return out, nil
}

func (o *memOutbox) Done(_ context.Context, id int64) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	delete(o.items, id)
	return nil
}

func (o *memOutbox) Again(_ context.Context, id int64, attempts int, due time.Time, lastErr string) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if r := o.items[id]; r != nil {
		r.Attempts, r.Due, r.Error = attempts, due, lastErr
		delete(o.leases, id)
	}
	return nil
}

func (o *memOutbox) len() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.items)
}

// With an outbox, a failed delivery waits there, not in memory: a sender
// started later (after a restart, or on another node) makes it, and a
// sender closed with deliveries not yet tried leaves them there too.
func TestFailedDeliveriesWaitInTheOutboxAndOutliveTheSender(t *testing.T) {
	base := runtime.NumGoroutine()
	hook := newHookServer(t, 1)
	ob := newMemOutbox()
	first := New(Options{Backoff: time.Millisecond, Secret: "k", Log: zerolog.Nop(), Outbox: ob, Node: "a", Poll: time.Hour})
	first.RecordCall(record(false, hook.srv.URL, ""))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := first.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	first.Close()
	if ob.len() != 1 || len(hook.received()) != 0 {
		t.Fatalf("after a failed attempt: %d in the outbox, %d delivered", ob.len(), len(hook.received()))
	}

	second := New(Options{Backoff: time.Millisecond, Secret: "k", Log: zerolog.Nop(), Outbox: ob, Node: "b", Poll: 5 * time.Millisecond})
	for ob.len() != 0 && ctx.Err() == nil {
		time.Sleep(5 * time.Millisecond)
	}
	if err := second.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	second.Close()
	if got := hook.received(); len(got) != 1 || got[0].CallID != "c1" {
		t.Errorf("delivered by the second sender: %+v", got)
	}

	// Closed while a delivery is being tried and another waits: both are
	// left in the outbox, not lost.
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(time.Second):
		}
	}))
	third := New(Options{Timeout: 50 * time.Millisecond, Log: zerolog.Nop(), Outbox: ob, Poll: time.Hour, Workers: 1})
	third.post(slow.URL, "call.ended", Summary{CallID: "tried"})
	queued := func() int {
		third.mu.Lock()
		defer third.mu.Unlock()
		return len(third.queue)
	}
	for queued() != 0 && ctx.Err() == nil {
		time.Sleep(time.Millisecond) // the worker takes the first
	}
	third.post(slow.URL, "call.ended", Summary{CallID: "waiting"})
	third.Close()
	if ob.len() != 2 {
		t.Errorf("after Close: %d deliveries in the outbox, want 2", ob.len())
	}
	slow.Close()
	hook.srv.Close()
	waitGoroutines(t, base)
}
