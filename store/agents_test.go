package store

import (
	"context"
	"errors"
	"reflect"
	"testing"
)

func TestTeamsResolveToAgentsInJoinOrder(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, testOptions())
	for _, u := range []string{"alice", "bob", "carol"} {
		if _, err := s.CreateUser(ctx, NewUser{Name: u, Password: "password1", Role: RoleStaff}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SetAgentEndpoints(ctx, "alice", []string{"PJSIP/1001", "PJSIP/+15550001@trunk"}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetAgentEndpoints(ctx, "bob", []string{"PJSIP/1002"}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetAgentEndpoints(ctx, "bob", []string{"PJSIP/a b"}); !errors.Is(err, ErrInvalid) {
		t.Errorf("bad dial string: %v, want ErrInvalid", err)
	}
	if err := s.CreateTeam(ctx, "support", ""); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateTeam(ctx, "support", ""); !errors.Is(err, ErrExists) {
		t.Errorf("second team: %v, want ErrExists", err)
	}
	for _, u := range []string{"bob", "alice", "carol", "bob"} {
		if err := s.AddTeamMember(ctx, "support", u); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.TeamAgents(ctx, "support")
	if err != nil {
		t.Fatal(err)
	}
	want := []Agent{{Name: "bob", Endpoints: []string{"PJSIP/1002"}}, {Name: "alice", Endpoints: []string{"PJSIP/1001", "PJSIP/+15550001@trunk"}}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("team agents = %+v, want %+v (carol has no endpoints)", got, want)
	}
	if _, err := s.TeamAgents(ctx, "sales"); !errors.Is(err, ErrNotFound) {
		t.Errorf("no such team: %v", err)
	}
	if _, err := s.GetAgent(ctx, "carol"); !errors.Is(err, ErrNotFound) {
		t.Errorf("user without endpoints: %v", err)
	}
	teams, err := s.ListTeams(ctx)
	if err != nil || len(teams) != 1 || !reflect.DeepEqual(teams[0].Members, []string{"bob", "alice", "carol"}) {
		t.Errorf("teams = %+v, %v", teams, err)
	}
	if err := s.RemoveTeamMember(ctx, "support", "bob"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteUser(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.TeamAgents(ctx, "support"); len(got) != 0 {
		t.Errorf("after removing bob and deleting alice: %+v", got)
	}
	if err := s.SetPresence(ctx, Presence{Agent: "bob", State: "paused", Reason: "lunch"}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetPresence(ctx, Presence{Agent: "bob", State: "available"}); err != nil {
		t.Fatal(err)
	}
	ps, err := s.Presences(ctx)
	if err != nil || len(ps) != 1 || ps[0].State != "available" || ps[0].Reason != "" {
		t.Errorf("presences = %+v, %v", ps, err)
	}
}
