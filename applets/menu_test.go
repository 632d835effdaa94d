package applets_test

import (
	"testing"

	"github.com/callflow/callflow/applets/scripted"
)

// A menu with keys alone plays again after a wrong key or silence (after
// its invalid or timeout prompt), up to retries, then takes max_retries
// to its route or the next step. (Explicit `on` routes, which count the
// failures across every visit, are TestAppletOutcomes' menu cases.)
func TestMenuRepromptsByItself(t *testing.T) {
	cases := []struct {
		flow, name, input string
		want              string // step:outcome of every step
	}{
		{"menu-keys-only", "wrong-key-then-right", "5,1", "menu:invalid menu:1 one:hangup"},
		{"menu-keys-only", "silence-then-key", "timeout,2", "menu:timeout menu:2 two:hangup"},
		{"menu-keys-only", "silent-caller-falls-through", "", "menu:timeout menu:timeout menu:max_retries operator:hangup"},
		{"menu-keys-only", "wrong-keys-fall-through", "7,8,9", "menu:invalid menu:invalid menu:max_retries operator:hangup"},
		{"menu-next", "silence-then-key", "timeout,1", "menu:timeout menu:1 one:hangup"},
		{"menu-next", "max-retries-takes-next", "timeout,9", "menu:timeout menu:max_retries operator:hangup"},
	}
	set := loadFlows(t, "menu-keys-only.toml", "menu-next.toml")
	for _, c := range cases {
		t.Run(c.flow+"/"+c.name, func(t *testing.T) {
			sim, trace := simulate(t, set, c.flow, scripted.Script{Inputs: keys(c.input)}, nil)
			if got := stepOutcomes(sim.Record); got != c.want {
				t.Errorf("steps %s, want %s", got, c.want)
			}
			golden(t, goldenFile(c.flow, c.name), trace)
		})
	}
}
