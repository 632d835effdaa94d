package applets_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/callflow/callflow/applets"
	"github.com/callflow/callflow/applets/scripted"
	"github.com/callflow/callflow/flows"
	"github.com/rs/zerolog"
)

// routingDefs are the routing applets tested next to this file.
var routingDefs = []applets.Definition{
	applets.RingInOrderDef,
	applets.RoundRobinDef,
	applets.ScheduleDef,
	applets.ZipRouteDef,
	applets.TagRouteDef,
	applets.PassthruDef,
	applets.SMSDef,
	applets.BidDef,
}

// routingRegistry is Builtin plus the routing applets it does not hold yet.
func routingRegistry() *applets.Registry {
	b := applets.Builtin()
	var defs []applets.Definition
	for _, n := range b.Names() {
		d, _ := b.Lookup(n)
		defs = append(defs, d)
	}
	for _, d := range routingDefs {
		if _, ok := b.Lookup(d.Name); !ok {
			defs = append(defs, d)
		}
	}
	return applets.NewRegistry(defs...)
}

const appletFlows = "../testdata/applets"

// Flows of applets that Builtin does not register yet wait in pending/:
// TestAppletOutcomes loads appletFlows with Builtin alone.
const pendingFlows = appletFlows + "/pending"

// loadFlows loads testdata flows by file name; any error fails the test.
func loadFlows(t *testing.T, files ...string) *flows.Set {
	t.Helper()
	paths := make([]string, len(files))
	for i, f := range files {
		paths[i] = filepath.Join(appletFlows, f)
		if _, err := os.Stat(paths[i]); err != nil {
			paths[i] = filepath.Join(pendingFlows, f)
		}
	}
	all, probs := flows.LoadFiles(paths, routingRegistry(), flows.ParseOptions{}, flows.LintOptions{})
	if probs.HasErrors() {
		t.Fatalf("testdata flows: %v", probs)
	}
	return flows.NewSet(1, all, nil)
}

// lintSource writes src (and extra files next to it) as a flow file and
// returns every problem loading it reports.
func lintSource(t *testing.T, src string, extra map[string]string) flows.Problems {
	t.Helper()
	dir := t.TempDir()
	for name, body := range extra {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	file := filepath.Join(dir, "flow.toml")
	if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	_, probs := flows.LoadFiles([]string{file}, routingRegistry(), flows.ParseOptions{}, flows.LintOptions{})
	return probs
}

// setFromSource loads one flow from source; any error fails the test.
func setFromSource(t *testing.T, src string) *flows.Set {
	t.Helper()
	file := filepath.Join(t.TempDir(), "flow.toml")
	if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	all, probs := flows.LoadFiles([]string{file}, routingRegistry(), flows.ParseOptions{}, flows.LintOptions{})
	if probs.HasErrors() {
		t.Fatalf("flow: %v", probs)
	}
	return flows.NewSet(1, all, nil)
}

// hasProblem reports whether probs hold one of severity sev containing all parts.
func hasProblem(probs flows.Problems, sev flows.Severity, parts ...string) bool {
	for _, p := range probs {
		if p.Severity != sev {
			continue
		}
		ok := true
		for _, s := range parts {
			ok = ok && strings.Contains(p.Msg, s)
		}
		if ok {
			return true
		}
	}
	return false
}

// defaultAt is a Friday morning in New York (10:00 EST).
var defaultAt = time.Date(2026, 12, 18, 15, 0, 0, 0, time.UTC)

// simulate runs flow for script (From, To and Start defaulted) and returns
// the simulation and its trace as the golden files hold it.
func simulate(t *testing.T, set *flows.Set, flow string, script scripted.Script, svc *applets.Services) (*flows.Simulation, string) {
	t.Helper()
	if script.From == "" {
		script.From = "+15557654321"
	}
	if script.To == "" {
		script.To = "+15550001000"
	}
	if script.Start.IsZero() {
		script.Start = defaultAt
	}
	sim, err := flows.Simulate(context.Background(), set, flow, flows.SimOptions{Script: script, Log: zerolog.Nop(), Services: svc})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	flows.WriteTrace(&out, sim.Record)
	for _, m := range sim.Call.Sent() {
		fmt.Fprintf(&out, "text to %s from %s: %s\n", m.To, m.From, m.Body)
	}
	for _, vm := range sim.Stored {
		out.WriteString("stored voicemail in " + vm.Mailbox + "\n")
	}
	return sim, out.String()
}

func goldenFile(applet, name string) string {
	return filepath.Join("../testdata/golden/applets", applet+"-"+name+".golden")
}

// stepOutcomes lists "step:outcome" of every step of a call.
func stepOutcomes(rec *flows.CallRecord) string {
	var s []string
	for _, st := range rec.Steps {
		s = append(s, st.Step+":"+st.Outcome)
	}
	return strings.Join(s, " ")
}

// hostClient sends requests for made-up host names to local servers, so
// that flow files name stable URLs while the tests' servers move around.
func hostClient(t *testing.T, hosts map[string]string) *http.Client {
	d := &net.Dialer{}
	tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, _, _ := net.SplitHostPort(addr)
		to, ok := hosts[host]
		if !ok {
			return nil, errors.New("no test server for " + host)
		}
		return d.DialContext(ctx, network, to)
	}}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// deadAddr is an address nothing listens on.
func deadAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// verifySignature checks a request's signature as a receiver would:
// HMAC-SHA256 over "<timestamp>.<payload>", timestamp within 5 minutes.
func verifySignature(r *http.Request, secret string, payload []byte) error {
	ts := r.Header.Get("X-Callflow-Timestamp")
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("bad timestamp %q", ts)
	}
	if d := time.Since(time.Unix(sec, 0)); d > 5*time.Minute || d < -5*time.Minute {
		return fmt.Errorf("stale timestamp %s", ts)
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts + "."))
	mac.Write(payload)
	want := "sha256=" + hex.EncodeToString(mac.Sum(nil))
	if got := r.Header.Get("X-Callflow-Signature"); !hmac.Equal([]byte(got), []byte(want)) {
		return fmt.Errorf("signature %q, want %q", got, want)
	}
	return nil
}
