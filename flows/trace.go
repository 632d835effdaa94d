package flows

import (
	"time"

	"github.com/callflow/callflow/applets"
)

// CallRecord is what a call did: who called, which flow version ran, every
// step with its outcome, and how it ended.
type CallRecord struct {
	ID          string
	Transport   string // "ari", "agi", "simulate"
	Flow        string
	FlowVersion string
	Workspace   string
	Caller      string
	Called      string
	Started     time.Time
	Answered    time.Time // when an agent answered (zero if none)
	Ended       time.Time
	// Outcome is how the call ended: completed, hangup (the caller hung
	// up), step_budget, max_duration, error.
	Outcome    string
	TalkTime   time.Duration
	Qualified  bool
	Abandoned  bool
	LastStep   string
	Tags       []string
	Vars       map[string]string
	Steps      []StepTrace
	Voicemails []applets.Voicemail
	Dials      []applets.DialResult
	Error      string
	// Resumed: picked up again after callflow restarted mid-call (the
	// flow started over).
	Resumed bool
	// Notify is where the flow the call started in wants to hear of it.
	Notify Notify
}

// Notify is a flow's post-call and abandoned-call settings.
type Notify struct {
	PostCallWebhook  string
	AbandonedWebhook string
	AbandonedEmail   []string
}

// StepTrace is one step of a call.
type StepTrace struct {
	Seq     int
	Flow    string
	Step    string
	Applet  string
	Outcome string
	Next    string // the step it led to, "" when the call ended
	Started time.Time
	Ended   time.Time
	Actions []string       // what it did: played, dialled, recorded
	Details map[string]any // what the applet noted
	Error   string
}

// TraceSink receives every finished call. It must not block: the store
// queues the write.
type TraceSink interface {
	RecordCall(rec *CallRecord)
}

// CallStartSink is a TraceSink that also hears of each call as it starts,
// before its first step, so a crash mid-call leaves a trace of the call.
type CallStartSink interface {
	CallStarted(rec *CallRecord)
}

// TraceSinkFunc adapts a function.
type TraceSinkFunc func(rec *CallRecord)

func (f TraceSinkFunc) RecordCall(rec *CallRecord) { f(rec) }
