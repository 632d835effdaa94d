package cli

import (
	"fmt"
	"io"
	"strings"

	"github.com/callflow/callflow/applets"
)

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
