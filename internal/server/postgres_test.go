package server

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/callflow/callflow/applets"
	"github.com/callflow/callflow/ari/aritest"
	"github.com/callflow/callflow/config"
	"github.com/callflow/callflow/internal/pgtest"
	"github.com/callflow/callflow/store"
)

// The serve path on PostgreSQL: calls through the fake Asterisk are
// recorded with their steps, a voicemail reaches the inbox, and a second
// server on the same database (another node) reads them.
func TestServeOnPostgreSQL(t *testing.T) {
	dsn := pgtest.Database(t, "serve")
	h := startWith(t, harnessOptions{
		ast: aritest.Options{SystemName: "box1"},
		// the store's own voicemail sink, not a capture
		services: func(h *harness) applets.Services { return applets.Services{Mail: h.mail} },
		tweak: []func(*config.Config){func(c *config.Config) {
			c.Database = dsn
			c.DataDir = t.TempDir()
			c.Node.Name = "node-a"
		}},
	})
	for _, ep := range agentEndpoints {
		h.ast.SetAgent(ep, aritest.AgentBehavior{Mode: aritest.AgentAnswer, RingFor: 100 * time.Millisecond, HangupAfter: 200 * time.Millisecond})
	}
	h.ast.SetAgent("PJSIP/billing1", aritest.AgentBehavior{Mode: aritest.AgentBusy})
	ctx := ctxT(t)
	var ids []string
	for _, key := range []string{"1", "2"} {
		caller := h.call(aritest.CallSpec{Exten: support, Talk: time.Second})
		if err := caller.WaitPlayback(ctx, "sound:custom/acme-menu"); err != nil {
			t.Fatal(err)
		}
		caller.Press(key)
		ended(t, caller)
		h.record(caller.ID())
		ids = append(ids, caller.ID())
	}
	st := h.srv.Store()
	ctx = ctxT(t) // what is left of the test, after the calls
	if err := st.Flush(ctx); err != nil {
		t.Fatal(err)
	}

	// Another node on the same database sees what this one wrote.
	cfg := *h.cfg
	cfg.DataDir = t.TempDir()
	other, err := store.Open(context.Background(), dsn, StoreOptions(&cfg))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	for i, id := range ids {
		c, err := other.GetCall(ctx, id, store.AllWorkspaces())
		if err != nil {
			t.Fatalf("call %s on the other node: %v", id, err)
		}
		if len(c.Steps) < 3 || c.Outcome == "" || c.Node != "node-a" {
			t.Errorf("call %d: outcome %q, %d steps, node %q", i, c.Outcome, len(c.Steps), c.Node)
		}
	}
	if n := h.srv.Health()["node"].(map[string]any)["name"]; n != "node-a" {
		t.Errorf("/healthz node %v", n)
	}
	if n := h.srv.Health()["ari"].(map[string]any)["asterisk_system_name"]; n != "box1" {
		t.Errorf("/healthz Asterisk's systemname %v", n)
	}
	if !strings.HasPrefix(ids[0], "box1-") {
		t.Errorf("call id %s: Asterisk's systemname first", ids[0])
	}
	var vm store.Voicemail
	waitUntil(t, "the voicemail in the shared inbox", func() bool {
		vms, _, err := other.ListVoicemails(ctx, store.VoicemailFilter{Scope: store.AllWorkspaces()})
		if err == nil && len(vms) == 1 {
			vm = vms[0]
		}
		return err == nil && len(vms) == 1 && vm.Mailbox == "billing" && vm.CallID == ids[1]
	})
	// Its audio too, copied as soon as it was saved: the other node,
	// which has neither the file nor that Asterisk, plays it.
	waitUntil(t, "the message's audio in the database", func() bool {
		have, err := other.HasAudio(ctx, vm.Recording)
		return err == nil && have
	})
	recorded := h.srv.voicemailAudio()
	recorded.st = nil // what Asterisk recorded, not the database's copy
	want, _, err := recorded.open(ctx, vm)
	if err != nil {
		t.Fatal(err)
	}
	wantBytes, _ := io.ReadAll(want)
	want.Close()
	rc, _, err := voicemailAudio{dir: t.TempDir(), st: other}.open(ctx, vm)
	if err != nil {
		t.Fatalf("the other node opening the message: %v", err)
	}
	got, _ := io.ReadAll(rc)
	rc.Close()
	if len(got) < 1000 || !bytes.Equal(got, wantBytes) {
		t.Errorf("the other node played %d bytes, want the %d recorded", len(got), len(wantBytes))
	}
}

// Two nodes on one PostgreSQL database: a flow published through one is
// taking calls on the other within a second (the other's poll sees the
// database change and reloads).
func TestFlowPublishedOnOneNodeIsLiveOnAnother(t *testing.T) {
	dsn := pgtest.Database(t, "nodes")
	onDB := func(name string) func(*config.Config) {
		return func(c *config.Config) {
			c.Database, c.DataDir, c.Node.Name = dsn, t.TempDir(), name
		}
	}
	a := startWith(t, harnessOptions{tweak: []func(*config.Config){onDB("node-a")}})
	b := startWith(t, harnessOptions{tweak: []func(*config.Config){onDB("node-b")}})
	ctx := ctxT(t)
	src := "name = \"Night Line\"\nnumbers = [\"+914430005555\"]\n[[steps]]\nid = \"bye\"\napplet = \"hangup\"\n"
	routed := func(h *harness) bool {
		f, ok := h.srv.registry.Current().ByNumber("+914430005555")
		return ok && f.Name == "Night Line"
	}
	start := time.Now()
	if _, _, err := a.srv.Store().SaveFlow(ctx, store.FlowInput{Name: "Night Line", Source: src, Status: "published", Author: "ann"}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.srv.Store().AssignNumbers(ctx, "Night Line", []string{"+914430005555"}, "ann"); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the flow live on node b", func() bool { return routed(b) })
	t.Logf("published on node-a, live on node-b after %s (notified; the poll is every %s)", time.Since(start).Round(time.Millisecond), flowsPoll)
	// Each node says which version of the file flows it runs.
	nodes, err := a.srv.Store().NodeFlows(ctx, "Basic Support Flow")
	if err != nil || len(nodes) != 2 || nodes[0].Node != "node-a" || nodes[1].Node != "node-b" || nodes[0].Version == "" || nodes[0].Version != nodes[1].Version {
		t.Errorf("the file flow on the nodes: %+v, %v", nodes, err)
	}
	caller := b.call(aritest.CallSpec{Exten: "+914430005555"})
	ended(t, caller)
	if rec := b.record(caller.ID()); rec.Flow != "Night Line" {
		t.Errorf("the call on node-b ran %q", rec.Flow)
	}
}
