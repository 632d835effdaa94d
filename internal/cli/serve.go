package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/callflow/callflow/config"
	"github.com/callflow/callflow/internal/server"
)

// serve takes calls until SIGINT or SIGTERM, then drains them.
func cmdServe(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "config file")
	flowsDir := fs.String("flows", "", "flows directory (overrides the config)")
	if _, err := parseInterleaved(fs, args); err != nil {
		return err
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	if *flowsDir != "" {
		cfg.FlowsDir = *flowsDir
	}
	log, err := newLogger(cfg.Log, stdout)
	if err != nil {
		return err
	}
	// Every line names the node, for logs gathered from several.
	log = log.With().Str("node", cfg.NodeName()).Logger()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv, err := server.New(cfg, server.Deps{Log: log})
	if err != nil {
		return err
	}
	return srv.Run(ctx)
}

func newLogger(c config.Log, w io.Writer) (zerolog.Logger, error) {
	level, err := zerolog.ParseLevel(c.Level)
	if err != nil {
		return zerolog.Nop(), fmt.Errorf("log level: %w", err)
	}
	if c.Format == "console" {
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.RFC3339}
	}
	return zerolog.New(w).Level(level).With().Timestamp().Logger(), nil
}
