package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/callflow/callflow/config"
	"github.com/callflow/callflow/internal/server"
	"github.com/callflow/callflow/store"
)

// cmdMigrate brings the configured database's schema up to this program's
// (serve does it too at start); --dry-run lists what would run.
func cmdMigrate(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "config file")
	dry := fs.Bool("dry-run", false, "list the migrations the database lacks; change nothing")
	if _, err := parseInterleaved(fs, args); err != nil {
		return err
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	ctx := context.Background()
	opts := server.StoreOptions(cfg)
	pending, err := store.Pending(ctx, cfg.Database, opts)
	if err != nil {
		return fmt.Errorf("database %s: %w", cfg.DatabaseShown(), err)
	}
	if len(pending) == 0 {
		fmt.Fprintf(stdout, "database %s is at schema version %d: nothing to do\n", cfg.DatabaseShown(), store.SchemaVersion())
		return nil
	}
	verb := "would apply"
	if !*dry {
		st, err := store.Open(ctx, cfg.Database, opts)
		if err != nil {
			return fmt.Errorf("database %s: %w", cfg.DatabaseShown(), err)
		}
		if err := st.Close(); err != nil {
			return err
		}
		verb = "applied"
	}
	for _, m := range pending {
		fmt.Fprintf(stdout, "%s migration %s\n", verb, m)
	}
	return nil
}

// cmdCopyDB copies a SQLite file's rows into another database (a
// PostgreSQL one, to move a box onto it), then compares the counts.
func cmdCopyDB(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("copy-db", flag.ContinueOnError)
	fs.SetOutput(stderr)
	from := fs.String("from", "", "the SQLite database file to copy (stop callflow on it first)")
	to := fs.String("to", "", "the database to copy into: postgres://... (or another SQLite file)")
	dataDir := fs.String("data-dir", "", "directory for the destination's spool (default: the --from file's directory)")
	recordings := fs.String("recordings", "", "Asterisk's recordings directory on this box, where voicemail audio may be (default: none)")
	if _, err := parseInterleaved(fs, args); err != nil {
		return err
	}
	if *from == "" || *to == "" || store.IsPostgres(*from) {
		return errors.New("usage: callflow copy-db --from FILE.db --to postgres://... [--data-dir DIR]")
	}
	if _, err := os.Stat(*from); err != nil {
		return err
	}
	dst := config.Default()
	dst.Database, dst.DataDir = *to, *dataDir
	if *dataDir == "" {
		dst.DataDir = filepath.Dir(*from)
	}
	ctx := context.Background()
	src, err := store.Open(ctx, *from, store.Options{})
	if err != nil {
		return fmt.Errorf("database %s: %w", *from, err)
	}
	defer src.Close()
	out, err := store.Open(ctx, dst.Database, server.StoreOptions(dst))
	if err != nil {
		return fmt.Errorf("database %s: %w", dst.DatabaseShown(), err)
	}
	defer out.Close()
	counts, err := src.CopyTo(ctx, out)
	short := false
	for _, c := range counts {
		mark := ""
		if c.To < c.From {
			mark, short = "  MISSING ROWS", true
		}
		fmt.Fprintf(stdout, "%-16s %8d rows -> %8d%s\n", c.Table, c.From, c.To, mark)
	}
	if err != nil {
		return err
	}
	if short {
		return errors.New("copy-db: the copy has fewer rows than the original")
	}
	if !out.SharesAudio() {
		fmt.Fprintf(stdout, "copied %s into %s; voicemail audio stays in its files\n", *from, dst.DatabaseShown())
		return nil
	}
	dirs := []string{filepath.Join(filepath.Dir(*from), "voicemail")}
	if *recordings != "" {
		dirs = append(dirs, *recordings)
	}
	copied, missing, err := copyAudio(ctx, src, out, dirs)
	fmt.Fprintf(stdout, "voicemail audio: %d copied into the database, %d not found here (%s)\n", copied, len(missing), strings.Join(dirs, ", "))
	for _, m := range missing {
		fmt.Fprintf(stdout, "  no audio for %s\n", m)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "copied %s into %s\n", *from, dst.DatabaseShown())
	return nil
}

// copyAudio puts each voicemail's audio file (its recorded path, or a
// file of that name in dirs) into dst; it lists the messages whose audio
// is in none of them.
func copyAudio(ctx context.Context, src, dst *store.Store, dirs []string) (copied int, missing []string, err error) {
	vms, _, err := src.ListVoicemails(ctx, store.VoicemailFilter{Scope: store.AllWorkspaces(), IncludeDeleted: true, Limit: 1 << 30})
	if err != nil {
		return 0, nil, err
	}
	for _, vm := range vms {
		if have, err := dst.HasAudio(ctx, vm.Recording); err != nil || have {
			if err != nil {
				return copied, missing, err
			}
			continue
		}
		candidates := []string{}
		if filepath.IsAbs(vm.Path) {
			candidates = append(candidates, vm.Path)
		}
		for _, d := range dirs {
			candidates = append(candidates, filepath.Join(d, filepath.Base(vm.Recording)+".wav"))
		}
		found := false
		for _, c := range candidates {
			f, err := os.Open(c)
			if err != nil {
				continue
			}
			err = dst.PutAudio(ctx, vm.Recording, f)
			f.Close()
			if err != nil {
				return copied, missing, err
			}
			copied, found = copied+1, true
			break
		}
		if !found {
			missing = append(missing, vm.Recording)
		}
	}
	return copied, missing, nil
}
