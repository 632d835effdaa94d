package presence

import (
	"context"
	"errors"
	"path/filepath"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/callflow/callflow/applets"
	"github.com/callflow/callflow/store"
)

// openDirectory is a real store with a support team of alice (two
// endpoints), bob and carol.
func openDirectory(t *testing.T) *store.Store {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "callflow.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.CreateTeam(ctx, "support", ""); err != nil {
		t.Fatal(err)
	}
	for _, a := range []struct {
		name string
		dial []string
	}{{"alice", []string{"PJSIP/1001", "PJSIP/+15550001@trunk"}}, {"bob", []string{"PJSIP/1002"}}, {"carol", []string{"PJSIP/1003"}}} {
		if _, err := st.CreateUser(ctx, store.NewUser{Name: a.name, Password: "password1", Role: store.RoleStaff}); err != nil {
			t.Fatal(err)
		}
		if err := st.SetAgentEndpoints(ctx, a.name, a.dial); err != nil {
			t.Fatal(err)
		}
		if err := st.AddTeamMember(ctx, "support", a.name); err != nil {
			t.Fatal(err)
		}
	}
	return st
}

func dials(legs []applets.AgentLeg) []string {
	var out []string
	for _, l := range legs {
		out = append(out, l.Dial)
	}
	return out
}

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func TestResolveRingsOnlyAvailableAgents(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)}
	tr := New(Options{Directory: openDirectory(t), WrapUp: 10 * time.Second, Now: clk.now})
	resolve := func() []string {
		t.Helper()
		legs, err := tr.Resolve(ctx, "team:support")
		if err != nil {
			t.Fatal(err)
		}
		return dials(legs)
	}
	all := []string{"PJSIP/1001", "PJSIP/+15550001@trunk", "PJSIP/1002", "PJSIP/1003"}
	if got := resolve(); !reflect.DeepEqual(got, all) {
		t.Fatalf("everyone available: %v, want %v", got, all)
	}

	if err := tr.Set(ctx, "bob", Paused, "lunch"); err != nil {
		t.Fatal(err)
	}
	if got := resolve(); !reflect.DeepEqual(got, []string{"PJSIP/1001", "PJSIP/+15550001@trunk", "PJSIP/1003"}) {
		t.Errorf("bob paused: %v", got)
	}
	if s := tr.Status("bob"); s.State != Paused || s.Reason != "lunch" {
		t.Errorf("bob = %+v", s)
	}

	tr.DeviceState("PJSIP/1003", "INUSE") // a call callflow did not place
	if got := resolve(); !reflect.DeepEqual(got, []string{"PJSIP/1001", "PJSIP/+15550001@trunk"}) {
		t.Errorf("carol's phone in use: %v", got)
	}
	tr.DeviceState("PJSIP/1003", "NOT_INUSE")

	// One dial claims alice and carol; a second dial at the same time
	// gets nobody, and after alice answers carol is free again.
	c1, got := tr.Claim([]string{"alice", "alice", "carol"})
	if !reflect.DeepEqual(got, []string{"alice", "carol"}) {
		t.Fatalf("first claim = %v", got)
	}
	if _, got := tr.Claim([]string{"alice", "carol"}); len(got) != 0 {
		t.Errorf("second claim while they ring = %v, want none", got)
	}
	c1.Answered("alice")
	if got := resolve(); !reflect.DeepEqual(got, []string{"PJSIP/1003"}) {
		t.Errorf("alice talking: %v", got)
	}
	c1.Done()
	if s := tr.Status("alice"); s.State != WrapUp {
		t.Errorf("alice after the call = %s, want wrap_up", s.State)
	}
	clk.t = clk.t.Add(10 * time.Second)
	if s := tr.Status("alice"); s.State != Available {
		t.Errorf("alice after wrap-up = %s, want available", s.State)
	}

	// A presence chosen survives a restart.
	tr2 := New(Options{Directory: tr.opts.Directory, Now: clk.now})
	if err := tr2.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if s := tr2.Status("bob"); s.State != Paused || s.Reason != "lunch" {
		t.Errorf("bob after restart = %+v", s)
	}
}

func TestResolveRefusesWhatIsNoTeamOrAgent(t *testing.T) {
	ctx := context.Background()
	tr := New(Options{Directory: openDirectory(t)})
	for _, target := range []string{"team:sales", "agent:dave"} {
		if _, err := tr.Resolve(ctx, target); !errors.Is(err, ErrUnknownTarget) {
			t.Errorf("%s: %v, want ErrUnknownTarget", target, err)
		}
	}
	if err := tr.Set(ctx, "alice", Busy, ""); err == nil {
		t.Error("busy is not a state to choose")
	}
	if err := tr.Set(ctx, "dave", Available, ""); err == nil {
		t.Error("dave is no agent")
	}
	legs, err := tr.Resolve(ctx, "agent:bob")
	if err != nil || !reflect.DeepEqual(dials(legs), []string{"PJSIP/1002"}) {
		t.Errorf("agent:bob = %v, %v", legs, err)
	}
}

// An agent dialling the login number from a desk phone or from their
// mobile's number is known by it; toggle takes a paused agent in.
func TestSetByCallerKnowsTheAgentByNumber(t *testing.T) {
	ctx := context.Background()
	tr := New(Options{Directory: openDirectory(t)})
	steps := []struct{ caller, action, reason, agent, state string }{
		{"1002", "pause", "coffee", "bob", "paused"},
		{"1002", "toggle", "", "bob", "available"},
		{"1002", "toggle", "", "bob", "logged_out"},
		{"+15550001", "logout", "", "alice", "logged_out"},
		{"+15550001", "login", "", "alice", "available"},
	}
	for _, s := range steps {
		agent, state, err := tr.SetByCaller(ctx, s.caller, s.action, s.reason)
		if err != nil || agent != s.agent || state != s.state {
			t.Errorf("%s %s: %s %s %v, want %s %s", s.caller, s.action, agent, state, err, s.agent, s.state)
		}
	}
	if _, _, err := tr.SetByCaller(ctx, "1009", "login", ""); !errors.Is(err, applets.ErrNotAgent) {
		t.Errorf("unknown phone: %v", err)
	}
}

// sharedBook is SharedClaims in memory, for two trackers (two nodes).
type sharedBook struct {
	mu     sync.Mutex
	holder map[string]string
}

func (b *sharedBook) ClaimAgents(ctx context.Context, node string, names []string, now, until time.Time) ([]string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var got []string
	for _, n := range names {
		if h, ok := b.holder[n]; !ok || h == node {
			b.holder[n] = node
			got = append(got, n)
		}
	}
	return got, nil
}

func (b *sharedBook) ExtendAgents(context.Context, string, []string, time.Time) error { return nil }

func (b *sharedBook) ReleaseAgents(ctx context.Context, node string, names []string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, n := range names {
		if b.holder[n] == node {
			delete(b.holder, n)
		}
	}
	return nil
}

func (b *sharedBook) WrapUpAgents(context.Context, string, []string, time.Time) error { return nil }

func (b *sharedBook) ClaimedAgents(context.Context, time.Time) (map[string]store.AgentClaim, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := map[string]store.AgentClaim{}
	for agent, node := range b.holder {
		out[agent] = store.AgentClaim{Node: node}
	}
	return out, nil
}

// Two nodes sharing claims never ring one agent at once: an agent rung
// or talking on one node is not the other's until that call lets go.
func TestSharedClaimsKeepAnAgentToOneNode(t *testing.T) {
	book := &sharedBook{holder: map[string]string{}}
	dir := openDirectory(t)
	a := New(Options{Directory: dir, Shared: book, Node: "a"})
	b := New(Options{Directory: dir, Shared: book, Node: "b"})
	ca, got := a.Claim([]string{"alice", "bob"})
	if len(got) != 2 {
		t.Fatalf("node a claimed %v", got)
	}
	cb, got := b.Claim([]string{"alice", "bob"})
	if len(got) != 0 {
		t.Errorf("node b claimed %v while node a rings them", got)
	}
	cb.Done()
	ca.Answered("alice") // bob is free again, everywhere
	// A queue on node b counts alice busy: she talks on node a.
	b.SharedChanged()
	if ms, err := b.Members(context.Background(), "support"); err != nil || memberState(ms, "alice") != "busy" || memberState(ms, "bob") != "available" {
		t.Errorf("node b's members: %+v, %v", ms, err)
	}
	cb, got = b.Claim([]string{"alice", "bob"})
	if !slices.Equal(got, []string{"bob"}) {
		t.Errorf("node b claimed %v; alice talks on node a", got)
	}
	cb.Done()
	ca.Done()
	if _, got = b.Claim([]string{"alice"}); !slices.Equal(got, []string{"alice"}) {
		t.Errorf("after node a's call: node b claimed %v", got)
	}
}

func memberState(ms []applets.AgentInfo, name string) string {
	for _, m := range ms {
		if m.Name == name {
			return m.State
		}
	}
	return ""
}
