package store

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// Agent is a user who takes calls: its endpoints are tried in order.
type Agent struct {
	Name      string
	Endpoints []string
}

// Team is a named group of agents in one workspace.
type Team struct {
	Name      string
	Workspace string
	Members   []string // user names, in the order they joined
}

// Presence is the state an agent last chose.
type Presence struct {
	Agent  string
	State  string
	Reason string
	Since  time.Time
}

// checkDial accepts TECH/resource dial strings (the store does not know
// the applets' rules, only what would break an Asterisk Dial).
func checkDial(d string) error {
	tech, res, ok := strings.Cut(d, "/")
	if !ok || tech == "" || res == "" || strings.ContainsAny(d, "&,|\n\r ") {
		return fmt.Errorf("%w: endpoint %q is not a dial string such as \"PJSIP/1001\"", ErrInvalid, d)
	}
	return nil
}

// SetAgentEndpoints replaces the endpoints of user; none makes the user no
// longer an agent (team memberships stay, and ring nobody).
func (s *Store) SetAgentEndpoints(ctx context.Context, user string, dials []string) error {
	for _, d := range dials {
		if err := checkDial(d); err != nil {
			return err
		}
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: agent %q: %w", user, err)
	}
	defer tx.Rollback()
	id, err := s.userID(ctx, tx, user)
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM agent_endpoints WHERE user_id = ?`, id); err != nil {
		return fmt.Errorf("store: agent %q: %w", user, err)
	}
	for i, d := range dials {
		if _, err := tx.ExecContext(ctx, `INSERT INTO agent_endpoints (user_id, position, dial) VALUES (?, ?, ?)`, id, i, d); err != nil {
			return fmt.Errorf("store: agent %q: %w", user, err)
		}
	}
	if err := s.audit(ctx, tx, "", "agent.endpoints", user, strings.Join(dials, " ")); err != nil {
		return err
	}
	return tx.Commit()
}

// GetAgent returns a user's endpoints; ErrNotFound when the user has none.
func (s *Store) GetAgent(ctx context.Context, name string) (Agent, error) {
	agents, err := s.agents(ctx, `SELECT u.name, e.dial FROM agent_endpoints e JOIN users u ON u.id = e.user_id
WHERE u.name = ? AND u.disabled = 0 ORDER BY e.position`, name)
	if err != nil {
		return Agent{}, err
	}
	if len(agents) == 0 {
		return Agent{}, fmt.Errorf("%w: agent %q", ErrNotFound, name)
	}
	return agents[0], nil
}

// ListAgents returns every enabled user with endpoints, by name.
func (s *Store) ListAgents(ctx context.Context) ([]Agent, error) {
	return s.agents(ctx, `SELECT u.name, e.dial FROM agent_endpoints e JOIN users u ON u.id = e.user_id
WHERE u.disabled = 0 ORDER BY u.name, e.position`)
}

// TeamAgents returns the agents of a team in the order they joined;
// members without endpoints are left out. ErrNotFound for no such team.
func (s *Store) TeamAgents(ctx context.Context, team string) ([]Agent, error) {
	var n int
	if err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM teams WHERE name = ?`, team).Scan(&n); err != nil {
		return nil, fmt.Errorf("store: team %q: %w", team, err)
	}
	if n == 0 {
		return nil, fmt.Errorf("%w: team %q", ErrNotFound, team)
	}
	return s.agents(ctx, `SELECT u.name, e.dial FROM team_members m
JOIN users u ON u.id = m.user_id JOIN agent_endpoints e ON e.user_id = m.user_id
WHERE m.team = ? AND u.disabled = 0 ORDER BY m.added, u.name, e.position`, team)
}

// agents groups (name, dial) rows, which arrive grouped by name.
func (s *Store) agents(ctx context.Context, q string, args ...any) ([]Agent, error) {
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("store: agents: %w", err)
	}
	defer rows.Close()
	var out []Agent
	for rows.Next() {
		var name, dial string
		if err := rows.Scan(&name, &dial); err != nil {
			return nil, fmt.Errorf("store: agents: %w", err)
		}
		if len(out) == 0 || out[len(out)-1].Name != name {
			out = append(out, Agent{Name: name})
		}
		out[len(out)-1].Endpoints = append(out[len(out)-1].Endpoints, dial)
	}
	return out, rows.Err()
}

// CreateTeam adds an empty team to a workspace.
func (s *Store) CreateTeam(ctx context.Context, name, workspace string) error {
	if name == "" || strings.ContainsAny(name, " :/\n\r\t") {
		return fmt.Errorf("%w: team name %q: no spaces, ':' or '/'", ErrInvalid, name)
	}
	if workspace == "" {
		workspace = "default"
	}
	res, err := s.w.ExecContext(ctx, `INSERT INTO teams (name, workspace, created) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`,
		name, workspace, s.now().UnixNano())
	if err != nil {
		return fmt.Errorf("store: team %q: %w", name, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("%w: team %q", ErrExists, name)
	}
	return nil
}

// DeleteTeam removes a team and its memberships.
func (s *Store) DeleteTeam(ctx context.Context, name string) error {
	res, err := s.w.ExecContext(ctx, `DELETE FROM teams WHERE name = ?`, name)
	if err != nil {
		return fmt.Errorf("store: team %q: %w", name, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("%w: team %q", ErrNotFound, name)
	}
	return nil
}

// AddTeamMember puts a user in a team; already a member is no error.
func (s *Store) AddTeamMember(ctx context.Context, team, user string) error {
	return s.teamMember(ctx, team, user, true)
}

// RemoveTeamMember takes a user out of a team.
func (s *Store) RemoveTeamMember(ctx context.Context, team, user string) error {
	return s.teamMember(ctx, team, user, false)
}

func (s *Store) teamMember(ctx context.Context, team, user string, add bool) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: team %q: %w", team, err)
	}
	defer tx.Rollback()
	id, err := s.userID(ctx, tx, user)
	if err != nil {
		return err
	}
	var exists int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM teams WHERE name = ?`, team).Scan(&exists); err != nil {
		return fmt.Errorf("store: team %q: %w", team, err)
	}
	if exists == 0 {
		return fmt.Errorf("%w: team %q", ErrNotFound, team)
	}
	if add {
		_, err = tx.ExecContext(ctx, `INSERT INTO team_members (team, user_id, added) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`,
			team, id, s.now().UnixNano())
	} else {
		_, err = tx.ExecContext(ctx, `DELETE FROM team_members WHERE team = ? AND user_id = ?`, team, id)
	}
	if err != nil {
		return fmt.Errorf("store: team %q: %w", team, err)
	}
	return tx.Commit()
}

// ListTeams returns every team with its members, by name.
func (s *Store) ListTeams(ctx context.Context) ([]Team, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT t.name, t.workspace, COALESCE(u.name, '') FROM teams t
LEFT JOIN team_members m ON m.team = t.name LEFT JOIN users u ON u.id = m.user_id
ORDER BY t.name, m.added, u.name`)
	if err != nil {
		return nil, fmt.Errorf("store: teams: %w", err)
	}
	defer rows.Close()
	var out []Team
	for rows.Next() {
		var name, ws, member string
		if err := rows.Scan(&name, &ws, &member); err != nil {
			return nil, fmt.Errorf("store: teams: %w", err)
		}
		if len(out) == 0 || out[len(out)-1].Name != name {
			out = append(out, Team{Name: name, Workspace: ws})
		}
		if member != "" {
			out[len(out)-1].Members = append(out[len(out)-1].Members, member)
		}
	}
	return out, rows.Err()
}

// SetPresence records the state an agent chose.
func (s *Store) SetPresence(ctx context.Context, p Presence) error {
	id, err := s.userID(ctx, s.w, p.Agent)
	if err != nil {
		return err
	}
	since := p.Since
	if since.IsZero() {
		since = s.now()
	}
	_, err = s.w.ExecContext(ctx, `INSERT INTO agent_presence (user_id, state, reason, since) VALUES (?, ?, ?, ?)
ON CONFLICT (user_id) DO UPDATE SET state = excluded.state, reason = excluded.reason, since = excluded.since`,
		id, p.State, p.Reason, since.UTC().UnixNano())
	if err != nil {
		return fmt.Errorf("store: presence of %q: %w", p.Agent, err)
	}
	s.announce(ctx, PresenceChannel)
	return nil
}

// Presences returns the recorded presence of every agent that has one.
func (s *Store) Presences(ctx context.Context) ([]Presence, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT u.name, p.state, p.reason, p.since FROM agent_presence p
JOIN users u ON u.id = p.user_id ORDER BY u.name`)
	if err != nil {
		return nil, fmt.Errorf("store: presence: %w", err)
	}
	defer rows.Close()
	var out []Presence
	for rows.Next() {
		var p Presence
		var since int64
		if err := rows.Scan(&p.Agent, &p.State, &p.Reason, &since); err != nil {
			return nil, fmt.Errorf("store: presence: %w", err)
		}
		p.Since = time.Unix(0, since).UTC()
		out = append(out, p)
	}
	return out, rows.Err()
}
