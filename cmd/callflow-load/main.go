// Command callflow-load places scripted calls through a fake Asterisk
// against a real `callflow serve` and reports what they cost. It links the
// fake Asterisk; the product binary never does.
package main

import (
	"os"

	"github.com/callflow/callflow/internal/loadtest"
)

func main() {
	os.Exit(loadtest.Main(os.Args[1:], os.Stdout, os.Stderr))
}
