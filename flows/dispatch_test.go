package flows

import (
	"context"
	"strings"
	"testing"

	"github.com/callflow/callflow/applets/call"
	"github.com/callflow/callflow/applets/scripted"
	"github.com/rs/zerolog"
)

func TestDispatcherRoutesByNameThenNumber(t *testing.T) {
	pub := mustParse(t, "pub", `
name = "Support"
numbers = ["(555) 000-2222"]
[[steps]]
id = "bye"
applet = "hangup"
`)
	draft := mustParse(t, "draft", `
name = "Draft"
status = "draft"
numbers = ["+15550003333"]
[[steps]]
id = "bye"
applet = "hangup"
`)
	reg := NewRegistry()
	reg.Swap(NewSet(1, []*Flow{pub, draft}, nil))
	var got []*CallRecord
	d := &Dispatcher{Registry: reg, Runner: &Runner{Log: zerolog.Nop(), Sink: TraceSinkFunc(func(r *CallRecord) { got = append(got, r) })}, Country: "1", Log: zerolog.Nop()}
	cases := []struct {
		name    string
		route   call.Inbound
		flow    string
		outcome string
	}{
		{"national number is normalised", call.Inbound{Number: "5550002222"}, "Support", "completed"},
		{"E.164 number", call.Inbound{Number: "+15550002222"}, "Support", "completed"},
		{"flow name, any case", call.Inbound{FlowName: "support"}, "Support", "completed"},
		{"a draft takes no calls", call.Inbound{Number: "+15550003333"}, "", "not_in_service"},
		{"unknown number", call.Inbound{Number: "+15559999999"}, "", "not_in_service"},
		{"garbage number", call.Inbound{Number: "s"}, "", "not_in_service"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			call := scripted.New(scripted.Script{})
			rec := d.Handle(context.Background(), call, c.route)
			if rec.Flow != c.flow || rec.Outcome != c.outcome {
				t.Errorf("flow %q outcome %q", rec.Flow, rec.Outcome)
			}
			if !call.HungUp() {
				t.Error("call left up")
			}
			if c.outcome == "not_in_service" && !strings.Contains(strings.Join(call.Log(), " "), "play sound:ss-noservice") {
				t.Errorf("caller heard nothing: %v", call.Log())
			}
		})
	}
	if len(got) != len(cases) {
		t.Errorf("%d records sunk, want %d", len(got), len(cases))
	}
}
