package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mattn/go-sqlite3"
	"golang.org/x/crypto/bcrypt"
)

func isUnique(err error) bool {
	var se sqlite3.Error
	return errors.As(err, &se) && se.Code == sqlite3.ErrConstraint &&
		(se.ExtendedCode == sqlite3.ErrConstraintUnique || se.ExtendedCode == sqlite3.ErrConstraintPrimaryKey) ||
		pgCode(err) == "23505" // unique_violation
}

// CreateWorkspace adds a workspace.
func (s *Store) CreateWorkspace(ctx context.Context, name, title string) (Workspace, error) {
	name = strings.TrimSpace(name)
	if name == "" {
		return Workspace{}, fmt.Errorf("%w: workspace without a name", ErrInvalid)
	}
	now := s.now()
	_, err := s.w.ExecContext(ctx, `INSERT INTO workspaces (name, title, created) VALUES (?, ?, ?)`, name, title, now.UnixNano())
	if isUnique(err) {
		return Workspace{}, fmt.Errorf("%w: workspace %q", ErrExists, name)
	}
	if err != nil {
		return Workspace{}, fmt.Errorf("store: create workspace: %w", err)
	}
	return Workspace{Name: name, Title: title, Created: now}, nil
}

// ListWorkspaces lists workspaces by name.
func (s *Store) ListWorkspaces(ctx context.Context) ([]Workspace, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT name, title, created FROM workspaces ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("store: list workspaces: %w", err)
	}
	defer rows.Close()
	var out []Workspace
	for rows.Next() {
		var (
			w       Workspace
			created sql.NullInt64
		)
		if err := rows.Scan(&w.Name, &w.Title, &created); err != nil {
			return nil, fmt.Errorf("store: list workspaces: %w", err)
		}
		w.Created = ft(created)
		out = append(out, w)
	}
	return out, rows.Err()
}

func (s *Store) hash(password string) (string, error) {
	if password == "" {
		return "", fmt.Errorf("%w: empty password", ErrInvalid)
	}
	h, err := bcrypt.GenerateFromPassword([]byte(password), s.opts.BcryptCost)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return string(h), nil
}

// setWorkspaces replaces a user's workspaces; unknown workspaces are created.
func (s *Store) setWorkspaces(ctx context.Context, tx *sql.Tx, userID int64, ws []string) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM user_workspaces WHERE user_id = ?`, userID); err != nil {
		return err
	}
	for _, w := range ws {
		if w = strings.TrimSpace(w); w == "" {
			continue
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO workspaces (name, created) VALUES (?, ?) ON CONFLICT(name) DO NOTHING`, w, s.now().UnixNano()); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO user_workspaces (user_id, workspace) VALUES (?, ?) ON CONFLICT DO NOTHING`, userID, w); err != nil {
			return err
		}
	}
	return nil
}

// CreateUser adds a user with a bcrypt hash of the password.
func (s *Store) CreateUser(ctx context.Context, nu NewUser) (User, error) {
	nu.Name = strings.TrimSpace(nu.Name)
	if nu.Name == "" {
		return User{}, fmt.Errorf("%w: user without a name", ErrInvalid)
	}
	if !nu.Role.Valid() {
		return User{}, fmt.Errorf("%w: role %q", ErrInvalid, nu.Role)
	}
	h, err := s.hash(nu.Password)
	if err != nil {
		return User{}, err
	}
	now := s.now().UnixNano()
	err = s.immediate(ctx, func(tx *sql.Tx) error {
		var id int64
		err := tx.QueryRowContext(ctx, `INSERT INTO users (name, password, role, created, updated, updated_by) VALUES (?, ?, ?, ?, ?, ?) RETURNING id`,
			nu.Name, h, string(nu.Role), now, now, nu.By).Scan(&id)
		if err != nil {
			return err
		}
		if err := s.setWorkspaces(ctx, tx, id, nu.Workspaces); err != nil {
			return err
		}
		return s.audit(ctx, tx, nu.By, "create user", nu.Name, "role "+string(nu.Role)+"; workspaces "+listOrNone(nu.Workspaces))
	})
	if isUnique(err) {
		return User{}, fmt.Errorf("%w: user %q", ErrExists, nu.Name)
	}
	if err != nil {
		return User{}, fmt.Errorf("store: create user: %w", err)
	}
	return s.GetUser(ctx, nu.Name)
}

func (s *Store) userID(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, name string) (int64, error) {
	var id int64
	err := q.QueryRowContext(ctx, `SELECT id FROM users WHERE name = ?`, name).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("%w: user %q", ErrNotFound, name)
	}
	return id, err
}

// SetPassword replaces a user's password, ending the user's sessions and
// revoking their API tokens (UpdateUser).
func (s *Store) SetPassword(ctx context.Context, name, password string) error {
	_, err := s.UpdateUser(ctx, name, UserChange{Password: &password}, "")
	return err
}

// SetRole changes a user's role; a lower one ends the user's sessions and
// revokes their API tokens (UpdateUser).
func (s *Store) SetRole(ctx context.Context, name string, role Role) error {
	_, err := s.UpdateUser(ctx, name, UserChange{Role: &role}, "")
	return err
}

// SetUserWorkspaces replaces the workspaces a user belongs to.
func (s *Store) SetUserWorkspaces(ctx context.Context, name string, workspaces []string) error {
	_, err := s.UpdateUser(ctx, name, UserChange{Workspaces: &workspaces}, "")
	return err
}

// UpdateUser applies a change to a user, in one transaction, and records
// it in the audit as done by `by` ("" from the command line). A new
// password, a lower role or disabling ends every session of the user (its
// generation moves on) and revokes their API tokens: whoever had the old
// password or rights keeps nothing. Taking the last enabled admin's role
// or disabling it is refused (ErrInvalid): someone must be able to undo.
func (s *Store) UpdateUser(ctx context.Context, name string, ch UserChange, by string) (UserUpdate, error) {
	var hash string
	if ch.Password != nil {
		h, err := s.hash(*ch.Password)
		if err != nil {
			return UserUpdate{}, err
		}
		hash = h
	}
	if ch.Role != nil && !ch.Role.Valid() {
		return UserUpdate{}, fmt.Errorf("%w: role %q", ErrInvalid, *ch.Role)
	}
	if ch.TimeZone != nil && *ch.TimeZone != "" {
		if _, err := time.LoadLocation(*ch.TimeZone); err != nil || len(*ch.TimeZone) > 64 {
			return UserUpdate{}, fmt.Errorf("%w: time zone %q", ErrInvalid, *ch.TimeZone)
		}
	}
	var out UserUpdate
	err := s.immediate(ctx, func(tx *sql.Tx) error {
		u, err := scanUser(tx.QueryRowContext(ctx, userQuery+` WHERE u.name = ? GROUP BY u.id`, name))
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: user %q", ErrNotFound, name)
		}
		if err != nil {
			return err
		}
		var (
			sets   []string
			args   []any
			notes  []string
			revoke bool
		)
		set := func(col string, v any, note string) {
			sets = append(sets, col+" = ?")
			args = append(args, v)
			notes = append(notes, note)
		}
		if ch.Password != nil {
			set("password", hash, "password changed")
			revoke = true
		}
		losesAdmin := false
		if ch.Role != nil && *ch.Role != u.Role {
			set("role", string(*ch.Role), "role "+string(u.Role)+" → "+string(*ch.Role))
			revoke = revoke || ch.Role.rank() < u.Role.rank()
			losesAdmin = u.Role == RoleAdmin
		}
		if ch.Disabled != nil && *ch.Disabled != u.Disabled {
			set("disabled", b2i(*ch.Disabled), map[bool]string{true: "disabled", false: "enabled"}[*ch.Disabled])
			revoke = revoke || *ch.Disabled
			losesAdmin = losesAdmin || (*ch.Disabled && u.Role == RoleAdmin)
		}
		if ch.TimeZone != nil && *ch.TimeZone != u.TimeZone {
			set("time_zone", *ch.TimeZone, "time zone "+or(*ch.TimeZone, "the browser's"))
		}
		if ch.Workspaces != nil && listOrNone(cleanList(*ch.Workspaces)) != listOrNone(u.Workspaces) {
			if err := s.setWorkspaces(ctx, tx, u.ID, *ch.Workspaces); err != nil {
				return err
			}
			notes = append(notes, "workspaces "+listOrNone(u.Workspaces)+" → "+listOrNone(cleanList(*ch.Workspaces)))
		}
		if losesAdmin && !u.Disabled {
			var others int
			if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM users WHERE role = 'admin' AND disabled = 0 AND id != ?`, u.ID).Scan(&others); err != nil {
				return err
			}
			if others == 0 {
				return fmt.Errorf("%w: %s is the last admin", ErrInvalid, u.Name)
			}
		}
		if len(notes) == 0 {
			out.User = u
			return nil
		}
		if revoke {
			sets = append(sets, "generation = generation + 1")
			res, err := tx.ExecContext(ctx, `DELETE FROM api_tokens WHERE user_id = ?`, u.ID)
			if err != nil {
				return err
			}
			n, _ := res.RowsAffected()
			out.SessionsEnded, out.TokensRevoked = true, int(n)
			notes = append(notes, fmt.Sprintf("sessions ended, %s revoked", countOf(int(n), "token")))
		}
		sets = append(sets, "updated = ?", "updated_by = ?")
		args = append(args, s.now().UnixNano(), by, u.ID)
		if _, err := tx.ExecContext(ctx, `UPDATE users SET `+strings.Join(sets, ", ")+` WHERE id = ?`, args...); err != nil {
			return err
		}
		if err := s.audit(ctx, tx, by, "update user", u.Name, strings.Join(notes, "; ")); err != nil {
			return err
		}
		out.User, err = scanUser(tx.QueryRowContext(ctx, userQuery+` WHERE u.id = ? GROUP BY u.id`, u.ID))
		return err
	})
	if err != nil {
		if errors.Is(err, ErrNotFound) || errors.Is(err, ErrInvalid) {
			return UserUpdate{}, err
		}
		return UserUpdate{}, fmt.Errorf("store: update user: %w", err)
	}
	return out, nil
}

func cleanList(l []string) []string {
	seen := map[string]bool{}
	out := []string{}
	for _, v := range l {
		if v = strings.TrimSpace(v); v != "" && !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	sort.Strings(out)
	return out
}

func listOrNone(l []string) string {
	if len(l) == 0 {
		return "none"
	}
	return strings.Join(l, ", ")
}

func countOf(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// audit records a change inside the transaction that makes it.
func (s *Store) audit(ctx context.Context, tx *sql.Tx, actor, action, subject, detail string) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO audit (at, actor, action, subject, detail) VALUES (?, ?, ?, ?, ?)`,
		s.now().UnixNano(), actor, action, subject, detail)
	return err
}

// Audit lists the recorded changes to a subject (a user's name; "" for
// every subject), newest first, at most limit (0: 100).
func (s *Store) Audit(ctx context.Context, subject string, n int) ([]AuditEntry, error) {
	w := &where{}
	if subject != "" {
		w.add("subject = ?", subject)
	}
	rows, err := s.r.QueryContext(ctx, `SELECT at, actor, action, subject, detail FROM audit`+w.String()+` ORDER BY at DESC, id DESC LIMIT ?`,
		append(w.args, limit(n))...)
	if err != nil {
		return nil, fmt.Errorf("store: audit: %w", err)
	}
	defer rows.Close()
	var out []AuditEntry
	for rows.Next() {
		var (
			e  AuditEntry
			at sql.NullInt64
		)
		if err := rows.Scan(&at, &e.Actor, &e.Action, &e.Subject, &e.Detail); err != nil {
			return nil, fmt.Errorf("store: audit: %w", err)
		}
		e.At = ft(at)
		out = append(out, e)
	}
	return out, rows.Err()
}

// dummyHash is compared against when the user does not exist, so that
// a wrong name costs as long as a wrong password.
var dummyHash = sync.OnceValue(func() []byte {
	h, _ := bcrypt.GenerateFromPassword([]byte("no such user"), bcrypt.DefaultCost)
	return h
})

// VerifyPassword returns the user when the password matches, else
// ErrBadCredentials (whether the name or the password was wrong), or
// ErrDisabled for the right password of a disabled user.
func (s *Store) VerifyPassword(ctx context.Context, name, password string) (User, error) {
	var (
		hash     string
		disabled bool
	)
	err := s.r.QueryRowContext(ctx, `SELECT password, disabled FROM users WHERE name = ?`, name).Scan(&hash, &disabled)
	if errors.Is(err, sql.ErrNoRows) {
		bcrypt.CompareHashAndPassword(dummyHash(), []byte(password))
		return User{}, ErrBadCredentials
	}
	if err != nil {
		return User{}, fmt.Errorf("store: verify password: %w", err)
	}
	if bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) != nil {
		return User{}, ErrBadCredentials
	}
	if disabled {
		// Said only to whoever knows the password.
		return User{}, ErrDisabled
	}
	return s.GetUser(ctx, name)
}

const userQuery = `SELECT u.id, u.name, u.role, u.created, u.updated, u.updated_by, u.disabled, u.time_zone, u.generation,
	COALESCE(GROUP_CONCAT(w.workspace, char(10)), '')
FROM users u LEFT JOIN user_workspaces w ON w.user_id = u.id`

func scanUser(sc interface{ Scan(...any) error }) (User, error) {
	var (
		u                User
		role             string
		created, updated sql.NullInt64
		ws               string
	)
	if err := sc.Scan(&u.ID, &u.Name, &role, &created, &updated, &u.UpdatedBy, &u.Disabled, &u.TimeZone, &u.Generation, &ws); err != nil {
		return u, err
	}
	u.Role, u.Created, u.Updated = Role(role), ft(created), ft(updated)
	u.Workspaces = []string{}
	if ws != "" {
		u.Workspaces = strings.Split(ws, "\n")
		sort.Strings(u.Workspaces)
	}
	return u, nil
}

// GetUser returns a user by name.
func (s *Store) GetUser(ctx context.Context, name string) (User, error) {
	u, err := scanUser(s.r.QueryRowContext(ctx, userQuery+` WHERE u.name = ? GROUP BY u.id`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return User{}, fmt.Errorf("%w: user %q", ErrNotFound, name)
	}
	if err != nil {
		return User{}, fmt.Errorf("store: get user: %w", err)
	}
	return u, nil
}

// ListUsers lists users by name.
func (s *Store) ListUsers(ctx context.Context) ([]User, error) {
	rows, err := s.r.QueryContext(ctx, userQuery+` GROUP BY u.id ORDER BY u.name`)
	if err != nil {
		return nil, fmt.Errorf("store: list users: %w", err)
	}
	defer rows.Close()
	var out []User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, fmt.Errorf("store: list users: %w", err)
		}
		out = append(out, u)
	}
	return out, rows.Err()
}

// DeleteUser removes a user and its tokens.
func (s *Store) DeleteUser(ctx context.Context, name string) error {
	res, err := s.w.ExecContext(ctx, `DELETE FROM users WHERE name = ?`, name)
	if err != nil {
		return fmt.Errorf("store: delete user: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("%w: user %q", ErrNotFound, name)
	}
	return nil
}

// tokenPrefix marks callflow API tokens (secret scanners can match it).
const tokenPrefix = "cft_"

func tokenHash(tok string) string {
	h := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(h[:])
}

// CreateToken makes an API token for a user. The plaintext is returned
// once; only its SHA-256 is kept (the token is 256 random bits, so a slow
// hash adds nothing and a fast one can be looked up).
func (s *Store) CreateToken(ctx context.Context, user, label string) (string, Token, error) {
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", Token{}, err
	}
	plain := tokenPrefix + base64.RawURLEncoding.EncodeToString(raw[:])
	now := s.now()
	t := Token{User: user, Label: label, Prefix: plain[:len(tokenPrefix)+6], Created: now}
	err := s.immediate(ctx, func(tx *sql.Tx) error {
		uid, err := s.userID(ctx, tx, user)
		if err != nil {
			return err
		}
		return tx.QueryRowContext(ctx, `INSERT INTO api_tokens (user_id, label, prefix, hash, created) VALUES (?, ?, ?, ?, ?) RETURNING id`,
			uid, label, t.Prefix, tokenHash(plain), now.UnixNano()).Scan(&t.ID)
	})
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return "", Token{}, err
		}
		return "", Token{}, fmt.Errorf("store: create token: %w", err)
	}
	return plain, t, nil
}

// VerifyToken returns the token's user, or ErrBadCredentials.
func (s *Store) VerifyToken(ctx context.Context, token string) (User, error) {
	if !strings.HasPrefix(token, tokenPrefix) {
		return User{}, ErrBadCredentials
	}
	var (
		id       int64
		name     string
		lastUsed sql.NullInt64
	)
	err := s.r.QueryRowContext(ctx, `SELECT t.id, u.name, t.last_used FROM api_tokens t JOIN users u ON u.id = t.user_id
WHERE t.hash = ? AND u.disabled = 0`, tokenHash(token)).Scan(&id, &name, &lastUsed)
	if errors.Is(err, sql.ErrNoRows) {
		return User{}, ErrBadCredentials
	}
	if err != nil {
		return User{}, fmt.Errorf("store: verify token: %w", err)
	}
	// Last use is kept to the minute: a script calling many times a
	// second must not turn every read into a write.
	now := s.now()
	if !lastUsed.Valid || now.Sub(ft(lastUsed)) >= time.Minute {
		if _, err := s.w.ExecContext(ctx, `UPDATE api_tokens SET last_used = ? WHERE id = ?`, now.UnixNano(), id); err != nil {
			s.log.Warn().Err(err).Int64("token", id).Msg("store: noting a token's use")
		}
	}
	return s.GetUser(ctx, name)
}

// ListTokens lists a user's tokens ("" for every user's).
func (s *Store) ListTokens(ctx context.Context, user string) ([]Token, error) {
	q := `SELECT t.id, u.name, t.label, t.prefix, t.created, t.last_used FROM api_tokens t JOIN users u ON u.id = t.user_id`
	var args []any
	if user != "" {
		q += ` WHERE u.name = ?`
		args = append(args, user)
	}
	rows, err := s.r.QueryContext(ctx, q+` ORDER BY t.id`, args...)
	if err != nil {
		return nil, fmt.Errorf("store: list tokens: %w", err)
	}
	defer rows.Close()
	var out []Token
	for rows.Next() {
		var (
			t                 Token
			created, lastUsed sql.NullInt64
		)
		if err := rows.Scan(&t.ID, &t.User, &t.Label, &t.Prefix, &created, &lastUsed); err != nil {
			return nil, fmt.Errorf("store: list tokens: %w", err)
		}
		t.Created, t.LastUsed = ft(created), ft(lastUsed)
		out = append(out, t)
	}
	return out, rows.Err()
}

// UserTokens lists one user's API tokens (label, prefix, created, last
// used), oldest first; ErrNotFound when there is no such user.
func (s *Store) UserTokens(ctx context.Context, user string) ([]Token, error) {
	if _, err := s.userID(ctx, s.r, user); err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil, err
		}
		return nil, fmt.Errorf("store: user tokens: %w", err)
	}
	return s.ListTokens(ctx, user)
}

// RevokeUserToken deletes one of a user's API tokens, named by its ID,
// its prefix (cft_ and six characters, as listed) or its label when no
// other token of the user has that label, and records who did it (""
// from the command line). It returns the token revoked: ErrNotFound when
// the user has no such token, ErrInvalid when a label names several.
func (s *Store) RevokeUserToken(ctx context.Context, user, token, by string) (Token, error) {
	token = strings.TrimSpace(token)
	var out Token
	err := s.immediate(ctx, func(tx *sql.Tx) error {
		uid, err := s.userID(ctx, tx, user)
		if err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, `SELECT id, label, prefix, created FROM api_tokens WHERE user_id = ? ORDER BY id`, uid)
		if err != nil {
			return err
		}
		var byID, byPrefix, byLabel []Token
		for rows.Next() {
			var (
				t       Token
				created sql.NullInt64
			)
			if err := rows.Scan(&t.ID, &t.Label, &t.Prefix, &created); err != nil {
				rows.Close()
				return err
			}
			t.User, t.Created = user, ft(created)
			switch {
			case strconv.FormatInt(t.ID, 10) == token:
				byID = append(byID, t)
			case t.Prefix == token:
				byPrefix = append(byPrefix, t)
			case t.Label == token:
				byLabel = append(byLabel, t)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		var match []Token
		for _, m := range [][]Token{byID, byPrefix, byLabel} {
			if len(m) > 0 {
				match = m
				break
			}
		}
		switch {
		case token == "" || len(match) == 0:
			return fmt.Errorf("%w: user %s has no token %q", ErrNotFound, user, token)
		case len(match) > 1:
			return fmt.Errorf("%w: %d tokens of %s are labelled %q: give the ID or the prefix", ErrInvalid, len(match), user, token)
		}
		out = match[0]
		if _, err := tx.ExecContext(ctx, `DELETE FROM api_tokens WHERE id = ?`, out.ID); err != nil {
			return err
		}
		return s.audit(ctx, tx, by, "revoke token", user, fmt.Sprintf("token %d (%s, %s)", out.ID, or(out.Label, "no label"), out.Prefix))
	})
	if err != nil {
		if errors.Is(err, ErrNotFound) || errors.Is(err, ErrInvalid) {
			return Token{}, err
		}
		return Token{}, fmt.Errorf("store: revoke token: %w", err)
	}
	return out, nil
}

// RevokeToken deletes a token.
func (s *Store) RevokeToken(ctx context.Context, id int64) error {
	res, err := s.w.ExecContext(ctx, `DELETE FROM api_tokens WHERE id = ?`, id)
	if err != nil {
		return fmt.Errorf("store: revoke token: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("%w: token %d", ErrNotFound, id)
	}
	return nil
}
