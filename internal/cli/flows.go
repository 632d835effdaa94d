package cli

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/user"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/callflow/callflow/config"
	"github.com/callflow/callflow/flows"
	"github.com/callflow/callflow/internal/server"
	"github.com/callflow/callflow/store"
)

const userUsage = `Usage:
  callflow user add NAME --role admin|workspace_admin|staff [--workspace W,...] [--password P]
  callflow user passwd NAME [--password P]  (ends the user's sessions and revokes their tokens)
  callflow user list
  callflow user rm NAME
  callflow user token NAME [--label L]     print a new API token (shown once)
  callflow user tokens NAME                list a user's tokens: label, prefix, created, last used
  callflow user revoke NAME TOKEN          revoke a token, named by its id, prefix or label
Without --password the password is read from standard input (one line).
`

const flowsUsage = `Usage:
  callflow flows list
  callflow flows import FILE... [--publish] [--replace]
                                           add flow files to the database; a file's id says which
                                           flow it updates (without one its name must be free,
                                           or --replace updates the flow of that name)
  callflow flows export NAME|ID            the TOML with the flow's own id, name, status and numbers
  callflow flows duplicate NAME|ID         "Copy of NAME": a draft without numbers (file flows too)
  callflow flows publish NAME | unpublish NAME
  callflow flows history NAME|ID           revisions; for a file flow, the versions that took calls
  callflow flows rollback NAME REVISION
  callflow flows assign NUMBER... NAME     give numbers to a flow (bulk)
  callflow flows delete NAME [--force]     refused while numbers point at it unless forced
`

// openStore opens the configured database for a command.
func openStore(ctx context.Context, cfgPath string) (*config.Config, *store.Store, error) {
	cfg, err := loadConfig(cfgPath)
	if err != nil {
		return nil, nil, err
	}
	st, err := store.Open(ctx, cfg.Database, server.StoreOptions(cfg))
	if err != nil {
		return nil, nil, fmt.Errorf("database %s: %w", cfg.DatabaseShown(), err)
	}
	return cfg, st, nil
}

func author() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username + " (cli)"
	}
	return "cli"
}

func readPassword(stdin io.Reader, given string) (string, error) {
	if given != "" {
		return given, nil
	}
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	pw := strings.TrimRight(line, "\r\n")
	if len(pw) < 8 {
		return "", errors.New("password: at least 8 characters (give --password or one line on standard input)")
	}
	return pw, nil
}

func cmdUser(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, userUsage)
		return flag.ErrHelp
	}
	fs := flag.NewFlagSet("user", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "config file")
	role := fs.String("role", "staff", "admin, workspace_admin or staff")
	workspaces := fs.String("workspace", "", "workspaces, comma-separated")
	password := fs.String("password", "", "password (default: read from standard input)")
	label := fs.String("label", "api", "token label")
	pos, err := parseInterleaved(fs, args[1:])
	if err != nil {
		return err
	}
	ctx := context.Background()
	_, st, err := openStore(ctx, *cfgPath)
	if err != nil {
		return err
	}
	defer st.Close()
	need := func(n int) error {
		if len(pos) != n {
			return fmt.Errorf("user %s: wrong arguments\n%s", args[0], userUsage)
		}
		return nil
	}
	switch args[0] {
	case "add":
		if err := need(1); err != nil {
			return err
		}
		pw, err := readPassword(stdin, *password)
		if err != nil {
			return err
		}
		var ws []string
		for _, w := range strings.Split(*workspaces, ",") {
			if w = strings.TrimSpace(w); w != "" {
				ws = append(ws, w)
			}
		}
		u, err := st.CreateUser(ctx, store.NewUser{Name: pos[0], Password: pw, Role: store.Role(*role), Workspaces: ws})
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "user %s added (%s; workspaces %s)\n", u.Name, u.Role, strings.Join(u.Workspaces, ", "))
	case "passwd":
		if err := need(1); err != nil {
			return err
		}
		pw, err := readPassword(stdin, *password)
		if err != nil {
			return err
		}
		if err := st.SetPassword(ctx, pos[0], pw); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "password of %s changed\n", pos[0])
	case "list":
		users, err := st.ListUsers(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "name\trole\tworkspaces\tcreated")
		for _, u := range users {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", u.Name, u.Role, strings.Join(u.Workspaces, ","), u.Created.Format("2006-01-02"))
		}
		return tw.Flush()
	case "rm":
		if err := need(1); err != nil {
			return err
		}
		if err := st.DeleteUser(ctx, pos[0]); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "user %s removed\n", pos[0])
	case "token":
		if err := need(1); err != nil {
			return err
		}
		tok, _, err := st.CreateToken(ctx, pos[0], *label)
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, tok)
	case "tokens":
		if err := need(1); err != nil {
			return err
		}
		toks, err := st.UserTokens(ctx, pos[0])
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "id\tlabel\tprefix\tcreated\tlast used")
		for _, t := range toks {
			last := "never"
			if !t.LastUsed.IsZero() {
				last = t.LastUsed.Format("2006-01-02 15:04")
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", t.ID, t.Label, t.Prefix, t.Created.Format("2006-01-02 15:04"), last)
		}
		return tw.Flush()
	case "revoke":
		if err := need(2); err != nil {
			return err
		}
		t, err := st.RevokeUserToken(ctx, pos[0], pos[1], author())
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "token %s (%s) of %s revoked\n", t.Prefix, t.Label, pos[0])
	default:
		return fmt.Errorf("user: unknown command %q\n%s", args[0], userUsage)
	}
	return nil
}

func cmdFlows(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, flowsUsage)
		return flag.ErrHelp
	}
	fs := flag.NewFlagSet("flows", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "config file")
	publish := fs.Bool("publish", false, "publish after import")
	force := fs.Bool("force", false, "delete even while numbers point at the flow")
	replace := fs.Bool("replace", false, "import: a file without an id updates the flow of its name")
	pos, err := parseInterleaved(fs, args[1:])
	if err != nil {
		return err
	}
	ctx := context.Background()
	cfg, st, err := openStore(ctx, *cfgPath)
	if err != nil {
		return err
	}
	defer st.Close()
	who := author()
	need := func(n int) error {
		if len(pos) != n {
			return fmt.Errorf("flows %s: wrong arguments\n%s", args[0], flowsUsage)
		}
		return nil
	}
	report := func(row store.FlowRow, what string) {
		fmt.Fprintf(stdout, "%s: %s (revision %d, %s, numbers %s)\n", row.Name, what, row.Revision, row.Status, strings.Join(row.Numbers, ", "))
	}
	switch args[0] {
	case "list":
		rows, err := st.ListFlows(ctx, store.AllWorkspaces())
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "name\tid\tworkspace\tstatus\trevision\tnumbers\tupdated")
		for _, r := range rows {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s by %s\n", r.Name, r.ID, r.Workspace, r.Status, r.Revision, strings.Join(r.Numbers, ","), r.Updated.Format("2006-01-02 15:04"), r.UpdatedBy)
		}
		return tw.Flush()
	case "import":
		if len(pos) == 0 {
			return fmt.Errorf("flows import: FILE...\n%s", flowsUsage)
		}
		im := importer{cfg: cfg, st: st, author: who, publish: *publish, replace: *replace, stderr: stderr}
		rows, err := im.run(ctx, pos)
		if err != nil {
			return err
		}
		for _, r := range rows {
			report(r.row, r.what)
		}
	case "export":
		if err := need(1); err != nil {
			return err
		}
		src, err := exportFlow(ctx, cfg, st, pos[0], stderr)
		if err != nil {
			return err
		}
		_, err = stdout.Write(src)
		return err
	case "duplicate", "publish", "unpublish":
		if err := need(1); err != nil {
			return err
		}
		var row store.FlowRow
		switch args[0] {
		case "duplicate":
			row, err = duplicateFlow(ctx, cfg, st, pos[0], who)
		case "publish":
			row, err = st.PublishFlow(ctx, pos[0], who)
		default:
			row, err = st.UnpublishFlow(ctx, pos[0], who)
		}
		if err != nil {
			return err
		}
		report(row, map[string]string{"duplicate": "duplicated", "publish": "published", "unpublish": "unpublished"}[args[0]])
	case "history":
		if err := need(1); err != nil {
			return err
		}
		return flowHistory(ctx, cfg, st, pos[0], stdout)
	case "rollback":
		if err := need(2); err != nil {
			return err
		}
		rev, err := strconv.Atoi(pos[1])
		if err != nil {
			return fmt.Errorf("revision %q: %w", pos[1], err)
		}
		row, err := st.RollbackFlow(ctx, pos[0], rev, who)
		if err != nil {
			return err
		}
		report(row, fmt.Sprintf("rolled back to revision %d", rev))
	case "assign":
		if len(pos) < 2 {
			return fmt.Errorf("flows assign: NUMBER... NAME\n%s", flowsUsage)
		}
		name := pos[len(pos)-1]
		var nums []string
		for _, n := range pos[:len(pos)-1] {
			e164, err := flows.NormalizeNumber(n, cfg.DefaultCountry)
			if err != nil {
				return err
			}
			nums = append(nums, e164)
		}
		row, err := st.AssignNumbers(ctx, name, nums, who)
		if err != nil {
			return err
		}
		report(row, "numbers assigned")
	case "delete":
		if err := need(1); err != nil {
			return err
		}
		if err := st.DeleteFlow(ctx, pos[0], who, *force); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s: deleted\n", pos[0])
	default:
		return fmt.Errorf("flows: unknown command %q\n%s", args[0], flowsUsage)
	}
	return nil
}

// haveDatabase reports whether the configured database is there to read:
// a PostgreSQL server always is (an error says otherwise), a SQLite file
// once created.
func haveDatabase(cfg *config.Config) bool {
	if cfg.IsPostgres() {
		return true
	}
	_, err := os.Stat(cfg.Database)
	return err == nil
}
