package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/callflow/callflow/applets"
	"github.com/callflow/callflow/applets/scripted"
	"github.com/callflow/callflow/config"
	"github.com/callflow/callflow/flows"
	"github.com/rs/zerolog"
)

// loadSet loads the flows directory for simulate and graph, reporting
// problems on stderr.
func loadSet(dir string, cfg *config.Config, stderr io.Writer) (*flows.Set, error) {
	l := &flows.Loader{Dir: dir, Applets: applets.Builtin(), Parse: flows.ParseOptions{Country: cfg.DefaultCountry}}
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
	cfgPath := fs.String("config", "", "config file")
	dir := fs.String("flows", "", "flows directory (default: config flows_dir)")
	from := fs.String("from", "+15551234567", "caller's number")
	at := fs.String("at", "", "when the call happens, RFC 3339 (default: now)")
	input := fs.String("input", "", `what the caller does at each prompt, in order: keys or "timeout", e.g. "1,timeout,42#"`)
	agents := fs.String("agents", "", `what each successive dial gets: answered, no_answer, busy, failed (default no_answer)`)
	messages := fs.String("messages", "", `length of each voicemail the caller leaves, e.g. "20s,0s" (default 10s; 0s is empty)`)
	talk := fs.Duration("talk", 2*time.Minute, "talk time of answered dials")
	hangupAt := fs.Int("hangup-at", 0, "caller hangs up during the Nth call action (0: never)")
	asJSON := fs.Bool("json", false, "print the steps as JSON")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return fmt.Errorf("simulate needs one flow name or number (got %d)", len(pos))
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	if *dir == "" {
		*dir = cfg.FlowsDir
	}
	script := scripted.Script{From: *from, TalkTime: *talk, HangupAt: *hangupAt}
	if *at != "" {
		t, err := time.Parse(time.RFC3339, *at)
		if err != nil {
			return fmt.Errorf("--at: %w", err)
		}
		script.Start = t
	}
	if script.Inputs, err = scripted.ParseInputs(*input); err != nil {
		return fmt.Errorf("--input: %w", err)
	}
	if script.Agents, err = scripted.ParseAgents(*agents); err != nil {
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
	set, err := loadSet(*dir, cfg, stderr)
	if err != nil {
		return err
	}
	sim, err := flows.Simulate(context.Background(), set, pos[0], flows.SimOptions{Script: script, Country: cfg.DefaultCountry, Log: zerolog.Nop()})
	if err != nil {
		return err
	}
	if *asJSON {
		return flows.WriteTraceJSON(stdout, sim.Record)
	}
	return flows.WriteTrace(stdout, sim.Record)
}
