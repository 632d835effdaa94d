package store

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestLosingAPasswordOrRightsEndsSessionsAndRevokesTokens(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		role    Role
		change  func(string) UserChange
		revokes bool
	}{
		{"new password", RoleStaff, func(string) UserChange { pw := "new secret"; return UserChange{Password: &pw} }, true},
		{"lower role", RoleWorkspaceAdmin, func(string) UserChange { r := RoleStaff; return UserChange{Role: &r} }, true},
		{"disabled", RoleStaff, func(string) UserChange { d := true; return UserChange{Disabled: &d} }, true},
		{"higher role", RoleStaff, func(string) UserChange { r := RoleWorkspaceAdmin; return UserChange{Role: &r} }, false},
		{"other workspaces", RoleStaff, func(string) UserChange { ws := []string{"globex"}; return UserChange{Workspaces: &ws} }, false},
		{"time zone", RoleStaff, func(string) UserChange { z := "Europe/Paris"; return UserChange{TimeZone: &z} }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := openTest(t, testOptions())
			u, err := s.CreateUser(ctx, NewUser{Name: "ann", Password: "old secret", Role: tc.role, Workspaces: []string{"acme"}, By: "root"})
			if err != nil {
				t.Fatal(err)
			}
			tok, _, _ := s.CreateToken(ctx, "ann", "crm")
			up, err := s.UpdateUser(ctx, "ann", tc.change("ann"), "root")
			if err != nil {
				t.Fatal(err)
			}
			_, tokErr := s.VerifyToken(ctx, tok)
			if tc.revokes {
				if !up.SessionsEnded || up.TokensRevoked != 1 || up.User.Generation != u.Generation+1 {
					t.Errorf("update %+v, generation before %d", up, u.Generation)
				}
				if !errors.Is(tokErr, ErrBadCredentials) {
					t.Errorf("token still accepted: %v", tokErr)
				}
			} else {
				if up.SessionsEnded || up.User.Generation != u.Generation || tokErr != nil {
					t.Errorf("update %+v ended sessions; token: %v", up, tokErr)
				}
			}
			audit, err := s.Audit(ctx, "ann", 0)
			if err != nil || len(audit) != 2 || audit[0].Actor != "root" || audit[0].Action != "update user" || audit[1].Action != "create user" {
				t.Errorf("audit %+v, %v", audit, err)
			}
			if got, _ := s.GetUser(ctx, "ann"); got.UpdatedBy != "root" {
				t.Errorf("updated by %q", got.UpdatedBy)
			}
		})
	}
}

func TestDisabledUsersCannotLogInAndTheLastAdminStays(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, testOptions())
	for _, nu := range []NewUser{{Name: "root", Password: "pw-root", Role: RoleAdmin}, {Name: "ann", Password: "pw-ann", Role: RoleStaff}} {
		if _, err := s.CreateUser(ctx, nu); err != nil {
			t.Fatal(err)
		}
	}
	yes, no := true, false
	if _, err := s.UpdateUser(ctx, "ann", UserChange{Disabled: &yes}, "root"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.VerifyPassword(ctx, "ann", "pw-ann"); !errors.Is(err, ErrDisabled) {
		t.Errorf("disabled user, right password: %v", err)
	}
	if _, err := s.VerifyPassword(ctx, "ann", "wrong"); !errors.Is(err, ErrBadCredentials) {
		t.Errorf("disabled user, wrong password: %v (must not say disabled)", err)
	}
	if _, err := s.UpdateUser(ctx, "ann", UserChange{Disabled: &no}, "root"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.VerifyPassword(ctx, "ann", "pw-ann"); err != nil {
		t.Errorf("enabled again: %v", err)
	}

	staff := RoleStaff
	for name, ch := range map[string]UserChange{"demote": {Role: &staff}, "disable": {Disabled: &yes}} {
		if _, err := s.UpdateUser(ctx, "root", ch, "root"); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s the last admin: %v", name, err)
		}
	}
	admin := RoleAdmin
	if _, err := s.UpdateUser(ctx, "ann", UserChange{Role: &admin}, "root"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateUser(ctx, "root", UserChange{Role: &staff}, "ann"); err != nil {
		t.Errorf("demote an admin while another stays: %v", err)
	}
	bad := "Mars/Olympus"
	if _, err := s.UpdateUser(ctx, "ann", UserChange{TimeZone: &bad}, "ann"); !errors.Is(err, ErrInvalid) {
		t.Errorf("unknown time zone: %v", err)
	}
	if _, err := s.UpdateUser(ctx, "nobody", UserChange{Disabled: &yes}, "root"); !errors.Is(err, ErrNotFound) {
		t.Errorf("no such user: %v", err)
	}
}

func TestUserTokensAreListedWithTheirLastUseAndRevokedOneByOne(t *testing.T) {
	ctx := context.Background()
	clk := &testClock{t: t0}
	opts := testOptions()
	opts.Now = clk.Now
	s := openTest(t, opts)
	if _, err := s.CreateUser(ctx, NewUser{Name: "ann", Password: "pw", Role: RoleStaff}); err != nil {
		t.Fatal(err)
	}
	crm, crmTok, _ := s.CreateToken(ctx, "ann", "crm")
	_, dupA, _ := s.CreateToken(ctx, "ann", "script")
	_, dupB, _ := s.CreateToken(ctx, "ann", "script")

	clk.Add(time.Hour)
	if _, err := s.VerifyToken(ctx, crm); err != nil {
		t.Fatal(err)
	}
	clk.Add(30 * time.Second)
	s.VerifyToken(ctx, crm) // within the minute: not written again
	toks, err := s.UserTokens(ctx, "ann")
	if err != nil || len(toks) != 3 {
		t.Fatalf("tokens %+v, %v", toks, err)
	}
	if !toks[0].LastUsed.Equal(t0.Add(time.Hour)) || !toks[0].Created.Equal(t0) || !toks[1].LastUsed.IsZero() {
		t.Errorf("crm token %+v; unused %+v", toks[0], toks[1])
	}
	if _, err := s.UserTokens(ctx, "nobody"); !errors.Is(err, ErrNotFound) {
		t.Errorf("tokens of nobody: %v", err)
	}

	for _, tc := range []struct {
		name, token string
		want        int64
		err         error
	}{
		{"ambiguous label", "script", 0, ErrInvalid},
		{"by label", "crm", crmTok.ID, nil},
		{"by prefix", dupA.Prefix, dupA.ID, nil},
		{"by ID", strconv.FormatInt(dupB.ID, 10), dupB.ID, nil},
		{"already revoked", "crm", 0, ErrNotFound},
		{"nothing", "", 0, ErrNotFound},
	} {
		got, err := s.RevokeUserToken(ctx, "ann", tc.token, "root")
		if tc.err != nil {
			if !errors.Is(err, tc.err) {
				t.Errorf("%s: %v, want %v", tc.name, err, tc.err)
			}
			continue
		}
		if err != nil || got.ID != tc.want {
			t.Errorf("%s: revoked %+v, %v", tc.name, got, err)
		}
	}
	if _, err := s.VerifyToken(ctx, crm); !errors.Is(err, ErrBadCredentials) {
		t.Error("revoked token still accepted")
	}
	if _, err := s.RevokeUserToken(ctx, "nobody", "crm", "root"); !errors.Is(err, ErrNotFound) {
		t.Errorf("token of nobody: %v", err)
	}
	audit, _ := s.Audit(ctx, "ann", 0)
	if len(audit) != 4 || audit[0].Action != "revoke token" || audit[0].Actor != "root" || !strings.Contains(audit[0].Detail, dupB.Prefix) {
		t.Errorf("audit %+v", audit)
	}
}
