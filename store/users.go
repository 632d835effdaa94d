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
	"strings"
	"sync"

	"github.com/mattn/go-sqlite3"
	"golang.org/x/crypto/bcrypt"
)

func isUnique(err error) bool {
	var se sqlite3.Error
	return errors.As(err, &se) && se.Code == sqlite3.ErrConstraint &&
		(se.ExtendedCode == sqlite3.ErrConstraintUnique || se.ExtendedCode == sqlite3.ErrConstraintPrimaryKey)
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
		if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO user_workspaces (user_id, workspace) VALUES (?, ?)`, userID, w); err != nil {
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
		res, err := tx.ExecContext(ctx, `INSERT INTO users (name, password, role, created, updated) VALUES (?, ?, ?, ?, ?)`,
			nu.Name, h, string(nu.Role), now, now)
		if err != nil {
			return err
		}
		id, err := res.LastInsertId()
		if err != nil {
			return err
		}
		return s.setWorkspaces(ctx, tx, id, nu.Workspaces)
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

// SetPassword replaces a user's password.
func (s *Store) SetPassword(ctx context.Context, name, password string) error {
	h, err := s.hash(password)
	if err != nil {
		return err
	}
	res, err := s.w.ExecContext(ctx, `UPDATE users SET password = ?, updated = ? WHERE name = ?`, h, s.now().UnixNano(), name)
	if err != nil {
		return fmt.Errorf("store: set password: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("%w: user %q", ErrNotFound, name)
	}
	return nil
}

// SetRole changes a user's role.
func (s *Store) SetRole(ctx context.Context, name string, role Role) error {
	if !role.Valid() {
		return fmt.Errorf("%w: role %q", ErrInvalid, role)
	}
	res, err := s.w.ExecContext(ctx, `UPDATE users SET role = ?, updated = ? WHERE name = ?`, string(role), s.now().UnixNano(), name)
	if err != nil {
		return fmt.Errorf("store: set role: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("%w: user %q", ErrNotFound, name)
	}
	return nil
}

// SetUserWorkspaces replaces the workspaces a user belongs to.
func (s *Store) SetUserWorkspaces(ctx context.Context, name string, workspaces []string) error {
	err := s.immediate(ctx, func(tx *sql.Tx) error {
		id, err := s.userID(ctx, tx, name)
		if err != nil {
			return err
		}
		return s.setWorkspaces(ctx, tx, id, workspaces)
	})
	if err != nil && !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("store: set workspaces: %w", err)
	}
	return err
}

// dummyHash is compared against when the user does not exist, so that
// a wrong name costs as long as a wrong password.
var dummyHash = sync.OnceValue(func() []byte {
	h, _ := bcrypt.GenerateFromPassword([]byte("no such user"), bcrypt.DefaultCost)
	return h
})

// VerifyPassword returns the user when the password matches, else
// ErrBadCredentials (whether the name or the password was wrong).
func (s *Store) VerifyPassword(ctx context.Context, name, password string) (User, error) {
	var hash string
	err := s.r.QueryRowContext(ctx, `SELECT password FROM users WHERE name = ?`, name).Scan(&hash)
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
	return s.GetUser(ctx, name)
}

const userQuery = `SELECT u.id, u.name, u.role, u.created, COALESCE(GROUP_CONCAT(w.workspace, char(10)), '')
FROM users u LEFT JOIN user_workspaces w ON w.user_id = u.id`

func scanUser(sc interface{ Scan(...any) error }) (User, error) {
	var (
		u       User
		role    string
		created sql.NullInt64
		ws      string
	)
	if err := sc.Scan(&u.ID, &u.Name, &role, &created, &ws); err != nil {
		return u, err
	}
	u.Role, u.Created = Role(role), ft(created)
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
		res, err := tx.ExecContext(ctx, `INSERT INTO api_tokens (user_id, label, prefix, hash, created) VALUES (?, ?, ?, ?, ?)`,
			uid, label, t.Prefix, tokenHash(plain), now.UnixNano())
		if err != nil {
			return err
		}
		t.ID, err = res.LastInsertId()
		return err
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
	var name string
	err := s.r.QueryRowContext(ctx, `SELECT u.name FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE t.hash = ?`, tokenHash(token)).Scan(&name)
	if errors.Is(err, sql.ErrNoRows) {
		return User{}, ErrBadCredentials
	}
	if err != nil {
		return User{}, fmt.Errorf("store: verify token: %w", err)
	}
	return s.GetUser(ctx, name)
}

// ListTokens lists a user's tokens ("" for every user's).
func (s *Store) ListTokens(ctx context.Context, user string) ([]Token, error) {
	q := `SELECT t.id, u.name, t.label, t.prefix, t.created FROM api_tokens t JOIN users u ON u.id = t.user_id`
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
			t       Token
			created sql.NullInt64
		)
		if err := rows.Scan(&t.ID, &t.User, &t.Label, &t.Prefix, &created); err != nil {
			return nil, fmt.Errorf("store: list tokens: %w", err)
		}
		t.Created = ft(created)
		out = append(out, t)
	}
	return out, rows.Err()
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
