package call

import (
	"context"
	"strings"
)

// Transports name themselves in Inbound.Transport and call records.
const (
	TransportARI = "ari"
	TransportAGI = "agi"
)

// Inbound is what a transport knows of a call it hands over: everything a
// dispatcher needs to choose the call's flow.
type Inbound struct {
	Transport string // TransportARI or TransportAGI
	// FlowName is the flow the dialplan named (flow=NAME,
	// agi://host/flow/NAME); "" to find the flow by Number.
	FlowName string
	// Number is the dialled number as the dialplan gave it, before
	// normalisation.
	Number string
	// Resumed: a call picked up again after a restart (an answered caller
	// found waiting in the Stasis application); its flow starts over.
	Resumed bool
}

// Handler runs inbound calls: one HandleCall per call, in a goroutine of
// the transport's. ctx ends when the caller hangs up, or at shutdown after
// the drain time.
type Handler interface {
	HandleCall(ctx context.Context, c Call, in Inbound)
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, c Call, in Inbound)

// HandleCall calls f.
func (f HandlerFunc) HandleCall(ctx context.Context, c Call, in Inbound) { f(ctx, c, in) }

// Route reads the routing arguments the dialplan passes to Stasis() or
// AGI(), the one place they are parsed: "flow=NAME" names the flow and
// "number=N" the dialled number; without number=, the dialled extension
// (or DNID) when it looks like a number, else the first positional
// argument that does (Stasis(callflow,inbound,${EXTEN}) from the "s"
// extension), else the extension as it is.
func Route(args []string, dialled string) (flowName, number string) {
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, "number="); ok {
			number = strings.TrimSpace(v)
		} else if v, ok := strings.CutPrefix(a, "flow="); ok {
			flowName = strings.TrimSpace(v)
		}
	}
	if number != "" {
		return flowName, number
	}
	if looksLikeNumber(dialled) {
		return flowName, dialled
	}
	for _, a := range args {
		if !strings.Contains(a, "=") && looksLikeNumber(a) {
			return flowName, a
		}
	}
	return flowName, dialled
}

// looksLikeNumber: digits, an optional leading '+', and the separators
// people write (space - . ( )). Whether it is a number of this country is
// for the dispatcher to say.
func looksLikeNumber(s string) bool {
	s = strings.TrimSpace(s)
	digits := 0
	for i, c := range s {
		switch {
		case c >= '0' && c <= '9':
			digits++
		case c == '+' && i == 0, c == ' ', c == '-', c == '.', c == '(', c == ')':
		default:
			return false
		}
	}
	return digits > 0
}
