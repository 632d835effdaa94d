package server

import (
	"context"

	"github.com/callflow/callflow/agi"
	"github.com/callflow/callflow/applets/call"
	"github.com/callflow/callflow/ari"
)

// ariHandler hands Stasis calls to the call handler.
type ariHandler struct{ h call.Handler }

func (a ariHandler) HandleCall(ctx context.Context, c *ari.Call, in ari.Inbound) {
	flow, number := call.Route(in.Args, in.Exten)
	a.h.HandleCall(ctx, c, call.Inbound{Transport: call.TransportARI, FlowName: flow, Number: number, Resumed: in.Resumed})
}

// agiHandler hands FastAGI calls to the call handler.
type agiHandler struct{ h call.Handler }

func (a agiHandler) HandleCall(ctx context.Context, c *agi.Call, req agi.Request) {
	a.h.HandleCall(ctx, c, call.Inbound{Transport: call.TransportAGI, FlowName: req.FlowName, Number: req.Number})
}
