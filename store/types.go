package store

import (
	"time"
)

// Scope limits a query to workspaces. The zero Scope sees nothing, so a
// forgotten scope hides data instead of exposing it.
type Scope struct {
	All        bool
	Workspaces []string
}

// AllWorkspaces is the scope of an admin.
func AllWorkspaces() Scope { return Scope{All: true} }

// InWorkspaces limits a query to the named workspaces.
func InWorkspaces(ws ...string) Scope { return Scope{Workspaces: ws} }

// Allows reports whether ws is inside the scope.
func (s Scope) Allows(ws string) bool {
	if s.All {
		return true
	}
	for _, w := range s.Workspaces {
		if w == ws {
			return true
		}
	}
	return false
}

// empty reports whether the scope can match nothing.
func (s Scope) empty() bool { return !s.All && len(s.Workspaces) == 0 }

// CallRecord is one call as it is logged when it ends.
type CallRecord struct {
	ID          string            `json:"id"`
	Transport   string            `json:"transport,omitempty"` // "ari" or "agi"
	Flow        string            `json:"flow,omitempty"`
	FlowVersion string            `json:"flow_version,omitempty"` // hash of the flow version the call ran on
	Workspace   string            `json:"workspace,omitempty"`
	Called      string            `json:"called,omitempty"`
	Caller      string            `json:"caller,omitempty"`
	Started     time.Time         `json:"started"`
	Answered    time.Time         `json:"answered,omitzero"`
	Ended       time.Time         `json:"ended,omitzero"`
	Outcome     string            `json:"outcome,omitempty"`
	TalkTime    time.Duration     `json:"talk_time,omitempty"`
	Qualified   bool              `json:"qualified,omitempty"`
	Abandoned   bool              `json:"abandoned,omitempty"`
	LastStep    string            `json:"last_step,omitempty"`
	Tags        []string          `json:"tags,omitempty"`
	Vars        map[string]string `json:"vars,omitempty"`
	Recording   string            `json:"recording,omitempty"` // whole-call recording name
	Node        string            `json:"node,omitempty"`      // the callflow node that handled it
	// Voicemails counts the messages the call left (not deleted); filled
	// by ListCalls and GetCall, never written.
	Voicemails int `json:"voicemails,omitempty"`
	// Steps is the call's trace in the order the steps ran; the store
	// numbers them 1, 2, ... (StepRecord.Seq is filled on read).
	Steps []StepRecord `json:"steps,omitempty"`
	// Events are what the call sent or won (text messages, emails, bids),
	// numbered like Steps.
	Events []CallEvent `json:"events,omitempty"`
}

// StepRecord is one step of a call's trace.
type StepRecord struct {
	Seq     int            `json:"seq,omitempty"`
	Flow    string         `json:"flow,omitempty"`
	Step    string         `json:"step"`
	Applet  string         `json:"applet,omitempty"`
	Outcome string         `json:"outcome,omitempty"`
	Started time.Time      `json:"started"`
	Ended   time.Time      `json:"ended,omitzero"`
	Details map[string]any `json:"details,omitempty"`
}

// Event kinds kept in call_events; Data is free-form JSON for each.
const (
	EventSMS   = "sms"   // Data: to, from, body, status
	EventEmail = "email" // Data: to, subject, status
	EventBid   = "bid"   // Data: buyer, amount, won
	EventHTTP  = "http"  // Data: url, status
)

// CallEvent is something a call did besides walking steps.
type CallEvent struct {
	Seq  int            `json:"seq,omitempty"`
	Kind string         `json:"kind"`
	Step string         `json:"step,omitempty"`
	At   time.Time      `json:"at"`
	Data map[string]any `json:"data,omitempty"`
}

// Voicemail is a message left by a caller. Recording (the stored
// recording's name) identifies it: saving the same recording twice keeps
// one row.
type Voicemail struct {
	ID        int64         `json:"id,omitempty"`
	CallID    string        `json:"call_id,omitempty"`
	Mailbox   string        `json:"mailbox"`
	Workspace string        `json:"workspace,omitempty"`
	Caller    string        `json:"caller,omitempty"`
	Called    string        `json:"called,omitempty"`
	Flow      string        `json:"flow,omitempty"`
	Step      string        `json:"step,omitempty"`
	Duration  time.Duration `json:"duration,omitempty"`
	Recording string        `json:"recording"`
	Path      string        `json:"path,omitempty"` // local WAV file, when known
	Created   time.Time     `json:"created"`
	Heard     bool          `json:"heard,omitempty"`
	HeardBy   string        `json:"heard_by,omitempty"`
	HeardAt   time.Time     `json:"heard_at,omitzero"`
	Deleted   bool          `json:"deleted,omitempty"`
	DeletedBy string        `json:"deleted_by,omitempty"`
	DeletedAt time.Time     `json:"deleted_at,omitzero"`
	// Recovered marks a voicemail found on disk by ReconcileVoicemails
	// rather than saved by the call.
	Recovered bool `json:"recovered,omitempty"`
}

// Recording is a whole-call recording.
type Recording struct {
	CallID   string        `json:"call_id"`
	Name     string        `json:"name"`
	Path     string        `json:"path,omitempty"`
	Duration time.Duration `json:"duration,omitempty"`
	Created  time.Time     `json:"created"`
}

// CallFilter selects calls. Zero fields do not filter; From is inclusive,
// To exclusive (on the call's start).
type CallFilter struct {
	Scope Scope
	Flow  string
	// Number finds calls by their caller or called number as people
	// type it: see numberClause.
	Number    string
	Outcome   string
	Transport string
	From, To  time.Time
	Limit     int // 0: 100
	Offset    int
}

// VoicemailFilter selects voicemails, newest first. From is inclusive, To
// exclusive (on the voicemail's creation).
type VoicemailFilter struct {
	Scope          Scope
	Mailbox        string
	Flow           string
	Caller         string // as people type it: see numberClause
	CallID         string
	From, To       time.Time
	Heard          *bool // nil: heard or not
	IncludeDeleted bool  // for admins
	OnlyDeleted    bool  // the bin
	Limit          int   // 0: 100
	Offset         int
}

// StatsFilter selects the calls counted by Stats.
type StatsFilter struct {
	Scope    Scope
	Flow     string // "": every flow
	From, To time.Time
	// Location is where days begin for PerDay (UTC when nil).
	Location *time.Location
}

// Stats are one flow's figures for a date range.
type Stats struct {
	Flow       string     `json:"flow"`
	Calls      int        `json:"calls"`
	Qualified  int        `json:"qualified"`
	Abandoned  int        `json:"abandoned"`
	Voicemails int        `json:"voicemails"`
	Texts      int        `json:"texts"` // text messages sent by the flow's calls
	PerDay     []DayCount `json:"per_day"`
}

// DayCount is the number of calls that started on Day (YYYY-MM-DD).
type DayCount struct {
	Day   string `json:"day"`
	Calls int    `json:"calls"`
}

// Role is what a user may do.
type Role string

const (
	RoleAdmin          Role = "admin"           // everything, every workspace
	RoleWorkspaceAdmin Role = "workspace_admin" // manages its workspaces' flows and users
	RoleStaff          Role = "staff"           // listens to voicemails, reads calls
)

// Valid reports whether r is a known role.
func (r Role) Valid() bool {
	return r == RoleAdmin || r == RoleWorkspaceAdmin || r == RoleStaff
}

// rank orders roles by what they may do.
func (r Role) rank() int {
	switch r {
	case RoleAdmin:
		return 3
	case RoleWorkspaceAdmin:
		return 2
	case RoleStaff:
		return 1
	}
	return 0
}

// User is a person who logs into the web app or uses the API.
type User struct {
	ID         int64     `json:"id"`
	Name       string    `json:"name"`
	Role       Role      `json:"role"`
	Workspaces []string  `json:"workspaces"`
	Created    time.Time `json:"created"`
	Updated    time.Time `json:"updated"`
	UpdatedBy  string    `json:"updated_by,omitempty"`
	// Disabled users cannot log in; their sessions and tokens are ended.
	Disabled bool `json:"disabled,omitempty"`
	// TimeZone is where the web shows the user's times (an IANA name);
	// "" is the browser's.
	TimeZone string `json:"time_zone,omitempty"`
	// Generation changes whenever the user's sessions must end (a new
	// password, a lower role, disabling); sessions remember the one they
	// began at.
	Generation int64 `json:"generation"`
}

// Scope is what the user may see.
func (u User) Scope() Scope {
	if u.Role == RoleAdmin {
		return AllWorkspaces()
	}
	return InWorkspaces(u.Workspaces...)
}

// NewUser describes a user to create.
type NewUser struct {
	Name       string
	Password   string
	Role       Role
	Workspaces []string
	By         string // who creates it, for the audit ("" from the command line)
}

// UserChange is an edit of a user; nil fields are left alone.
type UserChange struct {
	Password   *string
	Role       *Role
	Workspaces *[]string
	Disabled   *bool
	TimeZone   *string
}

// UserUpdate says what UpdateUser did.
type UserUpdate struct {
	User User
	// SessionsEnded: the user's generation moved on, so every session
	// made before ends; TokensRevoked API tokens were deleted with it.
	SessionsEnded bool
	TokensRevoked int
}

// Token is an API token as listed (never its plaintext).
type Token struct {
	ID       int64     `json:"id"`
	User     string    `json:"user"`
	Label    string    `json:"label"`
	Prefix   string    `json:"prefix"` // first characters, to tell tokens apart
	Created  time.Time `json:"created"`
	LastUsed time.Time `json:"last_used,omitzero"` // to the minute
}

// AuditEntry is one recorded change: who did what to whom, and when.
type AuditEntry struct {
	At      time.Time `json:"at"`
	Actor   string    `json:"actor"`
	Action  string    `json:"action"`
	Subject string    `json:"subject"`
	Detail  string    `json:"detail,omitempty"`
}

// VoicemailSummary counts the voicemails in a scope (the bin left out).
type VoicemailSummary struct {
	Total   int   `json:"total"`
	Unheard int   `json:"unheard"`
	Newest  int64 `json:"newest"` // highest ID, 0 when there is none
}

// Workspace groups flows, numbers, voicemails and users.
type Workspace struct {
	Name    string    `json:"name"`
	Title   string    `json:"title"`
	Created time.Time `json:"created"`
}

// Flow statuses.
const (
	FlowDraft     = "draft"     // lint and simulate only
	FlowPublished = "published" // takes calls
)

// FlowRow is a flow kept in the database, at its current revision.
type FlowRow struct {
	ID        string    `json:"id"` // the flow's identity: its name may change
	Name      string    `json:"name"`
	Workspace string    `json:"workspace"`
	Revision  int       `json:"revision"`
	Status    string    `json:"status"`
	Numbers   []string  `json:"numbers"`
	Source    string    `json:"source"` // TOML
	Created   time.Time `json:"created"`
	Updated   time.Time `json:"updated"`
	UpdatedBy string    `json:"updated_by"`
}

// FlowRevision is one saved state of a flow. Every change (source, status,
// numbers, deletion) adds one.
type FlowRevision struct {
	Flow      string    `json:"flow"`
	Revision  int       `json:"revision"`
	Source    string    `json:"source"`
	Status    string    `json:"status"`
	Workspace string    `json:"workspace"`
	Numbers   []string  `json:"numbers"`
	Author    string    `json:"author"`
	Created   time.Time `json:"created"`
	Comment   string    `json:"comment"`
}

// FlowInput is a flow to create or import.
type FlowInput struct {
	Name      string
	Workspace string // "": "default"
	Source    string
	Status    string // "": draft on creation, unchanged on import
	Author    string
	Comment   string
}

// FoundRecording is a recording that exists on disk or in Asterisk.
type FoundRecording struct {
	Name     string        // stored recording name, without extension
	Path     string        // local file, when known (its sidecar is read)
	Duration time.Duration // when known
	Modified time.Time     // the file's modification time, when known
}

// WriterStats describe the asynchronous writer, for metrics.
type WriterStats struct {
	Enqueued uint64 // records accepted
	Written  uint64 // records committed
	Spilled  uint64 // records that overflowed the queue
	Batches  uint64 // transactions committed
	Retries  uint64 // batch attempts that failed and were retried
	Rejected uint64 // records the database refused for good (kept in the rejected file)
	Depth    int    // records accepted and not yet written
}
