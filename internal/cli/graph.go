package cli

import (
	"flag"
	"fmt"
	"io"

	"github.com/callflow/callflow/flows"
)

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
