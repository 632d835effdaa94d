package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/callflow/callflow/config"
)

const usage = `callflow runs call flows for an Asterisk PBX.

Usage:
  callflow serve    [--config FILE]                 take calls (ARI Stasis app, FastAGI, web inbox)
  callflow check    [--config FILE] [PATH...]       lint flow files (default: the flows directory)
  callflow simulate [--flows DIR] FLOW|NUMBER [--from N] [--at TIME] [--input KEYS] [--agents OUTCOMES] [--json]
  callflow graph    [--flows DIR] FLOW              print a flow as Graphviz DOT
  callflow applets                                  list the applets
  callflow user add|passwd|list|rm|token|tokens|revoke ... staff and admin accounts of the web inbox
  callflow flows list|import|export|duplicate|publish|unpublish|history|rollback|assign|delete ...
                                                    flows kept in the database
  callflow migrate [--dry-run]                      bring the database's schema up to date
  callflow copy-db --from FILE.db --to postgres://...  move a SQLite database into PostgreSQL
  callflow agent set|clear|list|login|logout|pause ... users who take calls, and their presence
  callflow team add|rm|join|leave|list ...          teams of agents that flows dial as "team:NAME"

Configuration: --config FILE, or $CALLFLOW_CONFIG, or ./callflow.toml if present;
every key can be overridden by CALLFLOW_<SECTION>_<KEY> (see callflow.example.toml).
`

// Run runs one command line (without the program name) and returns the
// process's exit status: 0 done, 1 failed, 2 misused.
func Run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
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
		err = cmdUser(rest, stdin, stdout, stderr)
	case "migrate":
		err = cmdMigrate(rest, stdout, stderr)
	case "copy-db":
		err = cmdCopyDB(rest, stdout, stderr)
	case "flows":
		err = cmdFlows(rest, stdout, stderr)
	case "agent", "team":
		err = cmdAgents(cmd, rest, stdout, stderr)
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
