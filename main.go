// Command callflow runs call flows for an Asterisk PBX: `serve` takes calls
// over ARI and FastAGI, `check` lints flow files, `simulate` walks a flow
// without a phone, `graph` draws one. Each command lives in internal/cli.
package main

import (
	"os"

	"github.com/callflow/callflow/internal/cli"
)

func main() {
	os.Exit(cli.Run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
