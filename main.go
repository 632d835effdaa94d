// Command callflow runs call flows for an Asterisk PBX: `serve` takes calls
// over ARI and FastAGI, `check` lints flow files, `simulate` walks a flow
// without a phone, `graph` draws one.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/callflow/callflow/applets"
	"github.com/callflow/callflow/applets/scripted"
	"github.com/callflow/callflow/config"
	"github.com/callflow/callflow/flows"
	"github.com/callflow/callflow/speech"
	"github.com/callflow/callflow/store"
	"github.com/rs/zerolog"
)

const usage = `callflow runs call flows for an Asterisk PBX.

Usage:
  callflow serve    [--config FILE]                 take calls (ARI Stasis app, FastAGI, web inbox)
  callflow check    [--config FILE] [PATH...]       lint flow files (default: the flows directory)
  callflow simulate [--flows DIR] FLOW|NUMBER [--from N] [--at TIME] [--input KEYS] [--agents OUTCOMES] [--json]
  callflow graph    [--flows DIR] FLOW              print a flow as Graphviz DOT
  callflow applets                                  list the applets
  callflow user add|passwd|list|rm|token ...        staff and admin accounts of the web inbox
  callflow flows list|import|export|duplicate|publish|unpublish|history|rollback|assign|delete ...
                                                    flows kept in the database
  callflow loadtest [--concurrency N] [--rate R] [--duration D]
                                                    scripted callers on a fake Asterisk against callflow serve
                                                    in a process of its own: calls lost, latency, CPU and memory per call

Configuration: --config FILE, or $CALLFLOW_CONFIG, or ./callflow.toml if present;
every key can be overridden by CALLFLOW_<SECTION>_<KEY> (see callflow.example.toml).
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch cmd, rest := args[0], args[1:]; cmd {
	case "check":
		return cmdCheck(rest, stdout, stderr)
	case "simulate":
		err = cmdSimulate(rest, stdout, stderr)
	case "graph":
		err = cmdGraph(rest, stdout, stderr)
	case "applets":
		err = cmdApplets(stdout)
	case "serve":
		err = cmdServe(rest, stdout, stderr)
	case "user":
		err = cmdUser(rest, os.Stdin, stdout, stderr)
	case "flows":
		err = cmdFlows(rest, stdout, stderr)
	case "loadtest":
		err = cmdLoadtest(rest, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "callflow: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "callflow: %v\n", err)
		return 1
	}
	return 0
}

// parseInterleaved lets flags follow positional arguments
// (`simulate --flows d NAME --from x`), which package flag stops at.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// loadConfig reads --config, $CALLFLOW_CONFIG or ./callflow.toml.
func loadConfig(path string) (*config.Config, error) {
	if path == "" {
		path = os.Getenv(config.EnvConfig)
	}
	if path == "" {
		if _, err := os.Stat("callflow.toml"); err == nil {
			path = "callflow.toml"
		}
	}
	return config.Load(path)
}

func cmdCheck(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "config file")
	sounds := fs.String("sounds", "", "sounds directory to look for audio files (default: config sounds_dir)")
	paths, err := parseInterleaved(fs, args)
	if err != nil {
		return 2
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		fmt.Fprintf(stderr, "callflow: %v\n", err)
		return 2
	}
	if len(paths) == 0 {
		paths = []string{cfg.FlowsDir}
	}
	lopts := flows.LintOptions{SoundsDir: cfg.SoundsDir, DefaultMaxSteps: cfg.Calls.MaxSteps, CheckWAV: checkTelephonyWAV}
	if *sounds != "" {
		lopts.SoundsDir = *sounds
	}
	popts := flows.ParseOptions{Country: cfg.DefaultCountry}
	var dbFlows []*flows.Flow
	var dbProbs flows.Problems
	if _, err := os.Stat(cfg.Database); err == nil {
		// flows kept in the database share the registry, so the linter
		// sees them too (a name or number in both is a conflict)
		if st, err := store.Open(context.Background(), cfg.Database, store.Options{}); err == nil {
			dbFlows, dbProbs = databaseFlows(st, popts, lopts)()
			st.Close()
		} else {
			fmt.Fprintf(stderr, "callflow: database %s: %v (its flows are not checked)\n", cfg.Database, err)
		}
	}
	all, probs := flows.LoadFiles(paths, applets.Builtin(), popts, lopts, dbFlows...)
	probs = append(dbProbs, probs...)
	for _, p := range probs {
		fmt.Fprintln(stdout, p.String())
	}
	errs, warns := 0, 0
	for _, p := range probs {
		if p.Severity == flows.Error {
			errs++
		} else {
			warns++
		}
	}
	fmt.Fprintf(stderr, "%d flows checked: %d errors, %d warnings\n", len(all), errs, warns)
	if errs > 0 {
		return 1
	}
	return 0
}

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

func cmdGraph(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("graph", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "config file")
	dir := fs.String("flows", "", "flows directory (default: config flows_dir)")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return fmt.Errorf("graph needs one flow name or number")
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	if *dir == "" {
		*dir = cfg.FlowsDir
	}
	set, err := loadSet(*dir, cfg, stderr)
	if err != nil {
		return err
	}
	f, ok := set.Find(pos[0], cfg.DefaultCountry)
	if !ok {
		return fmt.Errorf("no flow named or numbered %q", pos[0])
	}
	return flows.WriteDOT(stdout, f)
}

func cmdApplets(stdout io.Writer) error {
	reg := applets.Builtin()
	for _, name := range reg.Names() {
		d, _ := reg.Lookup(name)
		outcomes := strings.Join(d.Outcomes, ", ")
		if outcomes == "" {
			outcomes = "(ends the call)"
		}
		fmt.Fprintf(stdout, "%-12s %s\n             outcomes: %s\n", name, d.Summary, outcomes)
	}
	return nil
}

// signalContext is cancelled on SIGINT or SIGTERM.
func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

// checkTelephonyWAV flags an uploaded WAV Asterisk would have to resample
// or cannot play (Exotel's rule: 8000 Hz mono), with the command that
// converts it.
func checkTelephonyWAV(path string) error {
	info, err := speech.CheckWAV(path)
	if err != nil {
		return err
	}
	if !info.Telephony() {
		return fmt.Errorf("is %s, not 8000 Hz mono 16-bit: convert it with `sox %s -r 8000 -c 1 -b 16 out.wav`", info, filepath.Base(path))
	}
	return nil
}
