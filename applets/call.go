package applets

import "github.com/callflow/callflow/applets/call"

// The call as applets see it is defined in applets/call, so that the
// transports depend on that small package alone; these names keep applet
// code short.
type (
	Call          = call.Call
	Media         = call.Media
	PlaySpec      = call.PlaySpec
	GatherSpec    = call.GatherSpec
	HoldSpec      = call.HoldSpec
	RecordSpec    = call.RecordSpec
	Recording     = call.Recording
	DialSpec      = call.DialSpec
	DialStatus    = call.DialStatus
	DialResult    = call.DialResult
	Message       = call.Message
	Originator    = call.Originator
	OriginateSpec = call.OriginateSpec
)

// Dial statuses and the key set of PlaySpec.BargeIn.
const (
	Answered = call.Answered
	NoAnswer = call.NoAnswer
	Busy     = call.Busy
	Failed   = call.Failed
	AnyKey   = call.AnyKey
)

// Sentinel errors every transport returns, wrapped with %w.
var (
	ErrHangup  = call.ErrHangup
	ErrTimeout = call.ErrTimeout
)
