package applets

import "context"

// Transfer sends the call on to another flow, by its name. The call keeps
// its variables, tags and step budget.
//
//	applet = "transfer"
//	flow = "After-Hours Flow"
var TransferDef = Definition{
	Name:    "transfer",
	Group:   "transfer & end",
	Summary: "Continue the call in another flow.",
	Params:  TransferParams{},
	New:     newTransfer,
}

// TransferParams are transfer's parameters.
type TransferParams struct {
	Flow string `toml:"flow" doc:"flow the call goes on in" target:"flow"`
}

type transfer struct{ p TransferParams }

func newTransfer(p Params) (Applet, error) {
	var t transfer
	var errs problems
	errs.add(p.Decode(&t.p))
	if t.p.Flow == "" && !p.Has("flow") {
		errs.add(p.Errorf("", "transfer needs the `flow` to go to"))
	}
	return &t, errs.err()
}

func (t *transfer) Facts() Facts { return Facts{Ends: true, Transfer: t.p.Flow} }

func (t *transfer) Run(ctx context.Context, env *Env) (Result, error) {
	return Result{Outcome: "transferred", Transfer: t.p.Flow}, nil
}
