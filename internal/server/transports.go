package server

import (
	"context"
	"strings"

	"github.com/callflow/callflow/agi"
	"github.com/callflow/callflow/ari"
	"github.com/callflow/callflow/flows"
)

// ariHandler runs Stasis calls.
type ariHandler struct {
	d       *flows.Dispatcher
	country string
}

func (h ariHandler) HandleCall(ctx context.Context, call *ari.Call, in ari.Inbound) {
	h.d.Handle(ctx, call, flows.Route{FlowName: in.FlowName, Number: calledNumber(in, h.country), Resumed: in.Resumed}, "ari")
}

// calledNumber is the dialled number: number=, else the extension, else a
// positional Stasis argument that is a number (Stasis(app,inbound,${EXTEN})).
func calledNumber(in ari.Inbound, country string) string {
	if _, err := flows.NormalizeNumber(in.Number, country); err == nil {
		return in.Number
	}
	for _, a := range in.Args {
		if strings.Contains(a, "=") {
			continue
		}
		if _, err := flows.NormalizeNumber(a, country); err == nil {
			return a
		}
	}
	return in.Number
}

// agiHandler runs FastAGI calls.
type agiHandler struct{ d *flows.Dispatcher }

func (h agiHandler) HandleCall(ctx context.Context, call *agi.Call, req agi.Request) {
	h.d.Handle(ctx, call, flows.Route{FlowName: req.FlowName, Number: req.Number}, "agi")
}
