package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/callflow/callflow/presence"
)

const agentUsage = `Usage:
  callflow agent set USER DIAL...          make a user an agent at these endpoints, tried in order
                                           (PJSIP/1001, a mobile as PJSIP/+15551234567@trunk)
  callflow agent clear USER                the user takes no more calls
  callflow agent list                      agents, their endpoints and the presence they chose
  callflow agent login|logout USER
  callflow agent pause USER [REASON]
  callflow team add NAME [--workspace W]
  callflow team rm NAME
  callflow team join|leave NAME USER...
  callflow team list
`

// cmdAgents runs "agent" and "team" (cmd says which).
func cmdAgents(cmd string, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, agentUsage)
		return flag.ErrHelp
	}
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "config file")
	workspace := fs.String("workspace", "", "workspace of a new team (default: the configured one)")
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
	atLeast := func(n int) error {
		if len(pos) < n {
			return fmt.Errorf("%s %s: wrong arguments\n%s", cmd, args[0], agentUsage)
		}
		return nil
	}
	tracker := presence.New(presence.Options{Directory: st})
	setPresence := func(s presence.State, reason string) error {
		if err := atLeast(1); err != nil {
			return err
		}
		if err := tracker.Set(ctx, pos[0], s, reason); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s is %s\n", pos[0], s)
		return nil
	}
	switch cmd + " " + args[0] {
	case "agent set":
		if err := atLeast(2); err != nil {
			return err
		}
		if err := st.SetAgentEndpoints(ctx, pos[0], pos[1:]); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "agent %s rings at %s\n", pos[0], strings.Join(pos[1:], ", "))
	case "agent clear":
		if err := atLeast(1); err != nil {
			return err
		}
		if err := st.SetAgentEndpoints(ctx, pos[0], nil); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s takes no more calls\n", pos[0])
	case "agent list":
		agents, err := st.ListAgents(ctx)
		if err != nil {
			return err
		}
		if err := tracker.Load(ctx); err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "agent\tendpoints\tpresence")
		for _, a := range agents {
			s := tracker.Status(a.Name)
			state := string(s.State)
			if s.Reason != "" {
				state += " (" + s.Reason + ")"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\n", a.Name, strings.Join(a.Endpoints, ", "), state)
		}
		return tw.Flush()
	case "agent login":
		return setPresence(presence.Available, "")
	case "agent logout":
		return setPresence(presence.LoggedOut, "")
	case "agent pause":
		return setPresence(presence.Paused, strings.Join(pos[min(1, len(pos)):], " "))
	case "team add":
		if err := atLeast(1); err != nil {
			return err
		}
		ws := *workspace
		if ws == "" {
			ws = cfg.Workspace
		}
		if err := st.CreateTeam(ctx, pos[0], ws); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "team %s added\n", pos[0])
	case "team rm":
		if err := atLeast(1); err != nil {
			return err
		}
		if err := st.DeleteTeam(ctx, pos[0]); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "team %s removed\n", pos[0])
	case "team join", "team leave":
		if err := atLeast(2); err != nil {
			return err
		}
		for _, u := range pos[1:] {
			if args[0] == "join" {
				err = st.AddTeamMember(ctx, pos[0], u)
			} else {
				err = st.RemoveTeamMember(ctx, pos[0], u)
			}
			if err != nil {
				return err
			}
		}
		fmt.Fprintf(stdout, "team %s: %s %s\n", pos[0], strings.Join(pos[1:], ", "), map[string]string{"join": "joined", "leave": "left"}[args[0]])
	case "team list":
		teams, err := st.ListTeams(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "team\tworkspace\tagents")
		for _, t := range teams {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", t.Name, t.Workspace, strings.Join(t.Members, ", "))
		}
		return tw.Flush()
	default:
		return fmt.Errorf("%s: unknown command %q\n%s", cmd, args[0], agentUsage)
	}
	return nil
}
