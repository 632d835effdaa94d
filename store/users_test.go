package store

import (
	"context"
	"errors"
	"strings"
	"testing"
)

func TestUserPasswordsAndTokens(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, testOptions())
	ann, err := s.CreateUser(ctx, NewUser{Name: "ann", Password: "correct horse", Role: RoleStaff, Workspaces: []string{"acme", "globex"}})
	if err != nil {
		t.Fatal(err)
	}
	if ann.Role != RoleStaff || strings.Join(ann.Workspaces, ",") != "acme,globex" {
		t.Errorf("user = %+v", ann)
	}
	if _, err := s.CreateUser(ctx, NewUser{Name: "ann", Password: "x", Role: RoleStaff}); !errors.Is(err, ErrExists) {
		t.Errorf("duplicate user: %v", err)
	}
	for _, bad := range []NewUser{{Name: "", Password: "x", Role: RoleStaff}, {Name: "b", Password: "", Role: RoleStaff}, {Name: "b", Password: "x", Role: "root"}} {
		if _, err := s.CreateUser(ctx, bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("CreateUser(%+v) = %v, want ErrInvalid", bad, err)
		}
	}
	var hash string
	s.r.QueryRow(`SELECT password FROM users WHERE name = 'ann'`).Scan(&hash)
	if !strings.HasPrefix(hash, "$2") || strings.Contains(hash, "horse") {
		t.Errorf("stored password is not a bcrypt hash: %q", hash)
	}

	cases := []struct {
		name, user, password string
		ok                   bool
	}{
		{"right password", "ann", "correct horse", true},
		{"wrong password", "ann", "Correct horse", false},
		{"unknown user", "nobody", "correct horse", false},
		{"empty password", "ann", "", false},
	}
	for _, tc := range cases {
		u, err := s.VerifyPassword(ctx, tc.user, tc.password)
		if tc.ok && (err != nil || u.Name != "ann") {
			t.Errorf("%s: %+v, %v", tc.name, u, err)
		}
		if !tc.ok && !errors.Is(err, ErrBadCredentials) {
			t.Errorf("%s: %v, want ErrBadCredentials", tc.name, err)
		}
	}
	if err := s.SetPassword(ctx, "ann", "battery staple"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.VerifyPassword(ctx, "ann", "correct horse"); !errors.Is(err, ErrBadCredentials) {
		t.Error("old password still accepted")
	}
	if _, err := s.VerifyPassword(ctx, "ann", "battery staple"); err != nil {
		t.Errorf("new password: %v", err)
	}

	plain, tok, err := s.CreateToken(ctx, "ann", "crm")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(plain, tok.Prefix) || tok.ID == 0 {
		t.Errorf("token %q, %+v", plain, tok)
	}
	if n := count(t, s, `SELECT COUNT(*) FROM api_tokens WHERE hash = ? OR prefix = ?`, plain, plain); n != 0 {
		t.Error("token stored in plaintext")
	}
	if u, err := s.VerifyToken(ctx, plain); err != nil || u.Name != "ann" || u.Scope().Allows("acme") != true {
		t.Errorf("VerifyToken = %+v, %v", u, err)
	}
	for _, bad := range []string{"", plain + "x", "cft_" + strings.Repeat("A", 43), strings.TrimPrefix(plain, "cft_")} {
		if _, err := s.VerifyToken(ctx, bad); !errors.Is(err, ErrBadCredentials) {
			t.Errorf("VerifyToken(%q) = %v", bad, err)
		}
	}
	if _, _, err := s.CreateToken(ctx, "nobody", ""); !errors.Is(err, ErrNotFound) {
		t.Errorf("token for a missing user: %v", err)
	}
	toks, _ := s.ListTokens(ctx, "ann")
	if len(toks) != 1 || toks[0].Label != "crm" {
		t.Errorf("tokens = %+v", toks)
	}
	if err := s.RevokeToken(ctx, tok.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.VerifyToken(ctx, plain); !errors.Is(err, ErrBadCredentials) {
		t.Error("revoked token accepted")
	}

	if _, err := s.CreateUser(ctx, NewUser{Name: "root", Password: "pw", Role: RoleAdmin}); err != nil {
		t.Fatal(err)
	}
	s.SetUserWorkspaces(ctx, "ann", []string{"acme"})
	s.SetRole(ctx, "ann", RoleWorkspaceAdmin)
	users, err := s.ListUsers(ctx)
	if err != nil || len(users) != 2 || users[0].Name != "ann" || users[0].Role != RoleWorkspaceAdmin ||
		strings.Join(users[0].Workspaces, ",") != "acme" || !users[1].Scope().All {
		t.Errorf("users = %+v, %v", users, err)
	}
	plain2, _, _ := s.CreateToken(ctx, "ann", "")
	if err := s.DeleteUser(ctx, "ann"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.VerifyToken(ctx, plain2); !errors.Is(err, ErrBadCredentials) {
		t.Error("token of a deleted user accepted")
	}
	if err := s.DeleteUser(ctx, "ann"); !errors.Is(err, ErrNotFound) {
		t.Errorf("second delete: %v", err)
	}

	ws, _ := s.ListWorkspaces(ctx)
	if len(ws) != 3 || ws[0].Name != "acme" || ws[1].Name != "default" {
		t.Errorf("workspaces = %+v", ws)
	}
	if _, err := s.CreateWorkspace(ctx, "acme", "Acme"); !errors.Is(err, ErrExists) {
		t.Errorf("duplicate workspace: %v", err)
	}
	if _, err := s.CreateWorkspace(ctx, "initech", "Initech"); err != nil {
		t.Error(err)
	}
}
