package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/callflow/callflow/applets"
	"github.com/callflow/callflow/applets/scripted"
	"github.com/callflow/callflow/config"
	"github.com/callflow/callflow/flows"
	"github.com/callflow/callflow/internal/server"
	"github.com/callflow/callflow/store"
	"github.com/callflow/callflow/webhooks"
	"github.com/rs/zerolog"
)

// loadSet loads the flows simulate and graph see, as serve would: the
// flows directory and, when the configured database exists, the flows
// kept in it. Problems go to stderr.
func loadSet(dir string, cfg *config.Config, stderr io.Writer) (*flows.Set, error) {
	popts := flows.ParseOptions{Country: cfg.DefaultCountry}
	l := &flows.Loader{Dir: dir, Applets: applets.Builtin(), Parse: popts}
	if haveDatabase(cfg) {
		st, err := store.Open(context.Background(), cfg.Database, server.StoreOptions(cfg))
		if err != nil {
			fmt.Fprintf(stderr, "callflow: database %s: %v (its flows are not loaded)\n", cfg.DatabaseShown(), err)
		} else {
			defer st.Close()
			l.Extra = server.DatabaseFlows(st, popts, flows.LintOptions{})
		}
	}
	set, probs := l.Load()
	for _, p := range probs {
		if p.Severity == flows.Error {
			fmt.Fprintln(stderr, p.String())
		}
	}
	if len(set.Flows()) == 0 {
		return nil, fmt.Errorf("no usable flows in %s", dir)
	}
	return set, nil
}

func cmdSimulate(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("simulate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "config file (its database's flows are simulated too)")
	dir := fs.String("flows", "", "flows directory (default: config flows_dir)")
	from := fs.String("from", "+15551234567", "caller's number")
	at := fs.String("at", "", `when the call happens: "2026-12-25 10:00", "2026-12-25T10:00:00-05:00"; without an offset, in the time zone of the flow's schedule (default: now)`)
	input := fs.String("input", "", `what the caller does at each prompt, in order: keys or "timeout", e.g. "1,timeout,42#"`)
	agents := fs.String("agents", "", `what each successive dial gets: answered, no_answer, busy, failed (default no_answer); a first after=20s keeps queue agents busy that long`)
	messages := fs.String("messages", "", `length of each voicemail the caller leaves, e.g. "20s,0s" (default 10s; 0s is empty)`)
	talk := fs.Duration("talk", 2*time.Minute, "talk time of answered dials")
	hangupAt := fs.Int("hangup-at", 0, "caller hangs up during the Nth call action (0: never)")
	httpFile := fs.String("http", "", "canned answers to the HTTP requests of passthru and bid steps (TOML [[answer]] tables)")
	liveHTTP := fs.Bool("live-http", false, "send HTTP requests that have no canned answer for real (default: none is sent)")
	rrPosition := fs.Int("rr-position", 1, "the destination every round robin starts with (1: its first)")
	asJSON := fs.Bool("json", false, "print the steps as JSON")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return fmt.Errorf("simulate needs one flow name or number (got %d)", len(pos))
	}
	if *rrPosition < 1 {
		return fmt.Errorf("--rr-position: %d: positions count from 1", *rrPosition)
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	if *dir == "" {
		*dir = cfg.FlowsDir
	}
	script := scripted.Script{From: *from, TalkTime: *talk, HangupAt: *hangupAt}
	if script.Inputs, err = scripted.ParseInputs(*input); err != nil {
		return fmt.Errorf("--input: %w", err)
	}
	if script.Agents, script.AgentsFreeAfter, err = scripted.ParseAgentScript(*agents); err != nil {
		return fmt.Errorf("--agents: %w", err)
	}
	for _, m := range strings.Split(*messages, ",") {
		if m = strings.TrimSpace(m); m == "" {
			continue
		}
		d, err := time.ParseDuration(m)
		if err != nil {
			return fmt.Errorf("--messages: %w", err)
		}
		script.Messages = append(script.Messages, d)
	}
	opts := flows.SimOptions{Country: cfg.DefaultCountry, Log: zerolog.Nop(), RRPosition: *rrPosition, Outbox: &flows.Outbox{},
		SMS: applets.SMSDefaults{Technology: cfg.SMS.Technology, Endpoint: cfg.SMS.Endpoint, From: cfg.SMS.From}}
	if *httpFile != "" {
		src, err := os.ReadFile(*httpFile)
		if err != nil {
			return fmt.Errorf("--http: %w", err)
		}
		if opts.HTTP, err = flows.ParseSimAnswers(*httpFile, src); err != nil {
			return fmt.Errorf("--http: %w", err)
		}
	}
	if *liveHTTP {
		opts.LiveHTTP = http.DefaultTransport
		fmt.Fprintln(stderr, "callflow: --live-http: HTTP requests without a canned answer are sent for real")
	}
	set, err := loadSet(*dir, cfg, stderr)
	if err != nil {
		return err
	}
	flow, ok := set.Find(pos[0], cfg.DefaultCountry)
	if !ok {
		return fmt.Errorf("no flow named or numbered %q", pos[0])
	}
	if n, err := flows.NormalizeNumber(pos[0], cfg.DefaultCountry); err == nil && slices.Contains(flow.Numbers, n) {
		script.To = n // the number dialled, not just the flow's first
	}
	if *at != "" {
		loc, ok := flows.ScheduleLocation(flow)
		if !ok {
			loc = time.Local
		}
		if script.Start, err = parseAt(*at, loc); err != nil {
			return err
		}
	}
	opts.Script = script

	// The webhooks are queued by the server's own sender, which delivers
	// them to the outbox: what the simulation shows is what serve sends.
	hooks := webhooks.New(webhooks.Options{Client: &http.Client{Transport: opts.Outbox}, Mail: opts.Outbox,
		Secret: cfg.Webhooks.HMACSecret, Log: zerolog.Nop(), Workers: 1})
	defer hooks.Close()
	opts.Sink = hooks
	ctx := context.Background()
	sim, err := flows.Simulate(ctx, set, flow.Name, opts)
	if err != nil {
		return err
	}
	fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := hooks.Flush(fctx); err != nil {
		return fmt.Errorf("webhooks: %w", err)
	}
	if *asJSON {
		return flows.WriteTraceJSON(stdout, sim.Record)
	}
	return flows.WriteSimulation(stdout, sim)
}

// parseAt reads --at (see flows.ParseAt).
func parseAt(s string, loc *time.Location) (time.Time, error) {
	t, err := flows.ParseAt(s, loc)
	if err != nil {
		return t, fmt.Errorf("--at %w", err)
	}
	return t, nil
}
