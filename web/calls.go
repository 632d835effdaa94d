package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/callflow/callflow/flows"
	"github.com/callflow/callflow/store"
)

// Outcomes a call can end with (flows.CallRecord.Outcome), offered in the
// filter.
var callOutcomes = []string{"completed", "hangup", "step_budget", "max_duration", "error", "not_in_service", "in_progress", "interrupted"}

var transports = []string{"ari", "agi"}

type callForm struct {
	Flow, Number, Outcome, Transport, From, To string
}

// callFilter reads the calls filter; days are in loc.
func (s *Server) callFilter(a *authInfo, q url.Values, loc *time.Location) (store.CallFilter, callForm, error) {
	form := callForm{Flow: strings.TrimSpace(q.Get("flow")), Number: strings.TrimSpace(q.Get("number")),
		Outcome: strings.TrimSpace(q.Get("outcome")), Transport: strings.TrimSpace(q.Get("transport")), From: q.Get("from"), To: q.Get("to")}
	f := store.CallFilter{Scope: a.scope(), Flow: form.Flow}
	var err error
	if f.Number, err = numberParam(q, "number"); err != nil {
		return f, form, err
	}
	if f.Outcome, err = oneOf(q, "outcome", callOutcomes); err != nil {
		return f, form, err
	}
	if f.Transport, err = oneOf(q, "transport", transports); err != nil {
		return f, form, err
	}
	f.From, f.To, err = dateRange(q, loc)
	return f, form, err
}

type callsData struct {
	Items      []store.CallRecord
	Pager      pager
	Form       callForm
	Flows      []string
	Outcomes   []string
	Transports []string
}

func (s *Server) callsPage(w http.ResponseWriter, r *http.Request) {
	a := auth(r)
	q := r.URL.Query()
	loc, _ := s.zone(r)
	f, form, err := s.callFilter(a, q, loc)
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, err.Error())
		return
	}
	page := pageOf(q)
	f.Limit, f.Offset = pageSize, (page-1)*pageSize
	items, total, err := s.st.ListCalls(r.Context(), f)
	if err != nil {
		s.internal(w, r, err)
		return
	}
	s.render(w, r, http.StatusOK, "calls", "Calls", callsData{Items: items, Pager: makePager(r, page, total), Form: form,
		Flows: flowNames(s.scopedFlows(a)), Outcomes: callOutcomes, Transports: transports})
}

// stepView is one step of a call's timeline.
type stepView struct {
	Seq                         int
	Flow, Step, Applet, Outcome string
	Next, Error                 string
	Actions                     []string
	Details                     []keyValue
	At, Took                    time.Duration
	Started                     time.Time
	OtherFlow                   bool
	Events                      []eventView
}

type keyValue struct{ Key, Value string }

type eventView struct {
	Kind string
	At   time.Duration
	Data []keyValue
}

type callData struct {
	Call        store.CallRecord
	Steps       []stepView
	Events      []eventView // not tied to a step
	Duration    time.Duration
	Diagram     template.HTML
	DiagramNote string
	FlowLoaded  bool
	Voicemails  []store.Voicemail
	Recordings  []store.Recording
}

func (s *Server) loadCall(w http.ResponseWriter, r *http.Request) (store.CallRecord, bool) {
	c, err := s.st.GetCall(r.Context(), r.PathValue("id"), auth(r).scope())
	if errors.Is(err, store.ErrNotFound) {
		s.fail(w, r, http.StatusNotFound, "call not found")
		return c, false
	}
	if err != nil {
		s.internal(w, r, err)
		return c, false
	}
	return c, true
}

func (s *Server) callPage(w http.ResponseWriter, r *http.Request) {
	a := auth(r)
	c, ok := s.loadCall(w, r)
	if !ok {
		return
	}
	d := callData{Call: c}
	if !c.Ended.IsZero() {
		d.Duration = c.Ended.Sub(c.Started)
	}
	bySeq := map[string][]eventView{}
	for _, e := range c.Events {
		ev := eventView{Kind: e.Kind, At: e.At.Sub(c.Started), Data: kvs(e.Data)}
		if e.Step != "" {
			bySeq[e.Step] = append(bySeq[e.Step], ev)
		} else {
			d.Events = append(d.Events, ev)
		}
	}
	for _, st := range c.Steps {
		v := stepView{Seq: st.Seq, Flow: st.Flow, Step: st.Step, Applet: st.Applet, Outcome: st.Outcome,
			At: st.Started.Sub(c.Started), Started: st.Started, OtherFlow: st.Flow != "" && st.Flow != c.Flow}
		if !st.Ended.IsZero() {
			v.Took = st.Ended.Sub(st.Started)
		}
		sd := splitStepDetails(st.Details)
		v.Next, v.Error, v.Actions, v.Details = sd.next, sd.err, sd.actions, kvs(sd.rest)
		if evs := bySeq[st.Step]; len(evs) > 0 {
			v.Events = evs
			delete(bySeq, st.Step) // a step visited twice shows its events once
		}
		d.Steps = append(d.Steps, v)
	}
	for _, evs := range bySeq { // events of steps that left no trace
		d.Events = append(d.Events, evs...)
	}
	sort.SliceStable(d.Events, func(i, j int) bool { return d.Events[i].At < d.Events[j].At })

	if f, ok := s.set().ByName(c.Flow); ok && a.scope().Allows(f.Workspace) {
		d.FlowLoaded = true
		d.Diagram = drawFlow(f, callPath(f, c))
		if c.FlowVersion != "" && c.FlowVersion != f.Version {
			d.DiagramNote = fmt.Sprintf("The diagram shows the flow as loaded now (version %s); this call ran version %s.", f.Version, c.FlowVersion)
		}
	}
	// The messages the call left and its whole-call recordings, to
	// play from here.
	vms, _, err := s.st.ListVoicemails(r.Context(), store.VoicemailFilter{Scope: a.scope(), CallID: c.ID, IncludeDeleted: a.isAdmin(), Limit: 100})
	if err != nil {
		s.internal(w, r, err)
		return
	}
	d.Voicemails = vms
	if d.Recordings, err = s.callRecordings(r, c); err != nil {
		s.internal(w, r, err)
		return
	}
	title := "Call " + or(c.Caller, "unknown") + " → " + or(c.Called, "unknown")
	s.render(w, r, http.StatusOK, "call", title, d)
}

// callRecordings are the call's whole-call recordings.
func (s *Server) callRecordings(r *http.Request, c store.CallRecord) ([]store.Recording, error) {
	return s.st.CallRecordings(r.Context(), c.ID)
}

// callPath is what the call visited in f, to highlight on its diagram.
func callPath(f *flows.Flow, c store.CallRecord) *highlight {
	h := &highlight{steps: map[string][]int{}, edges: map[[2]string]bool{}}
	prev := ""
	for _, st := range c.Steps {
		if st.Flow != "" && st.Flow != f.Name {
			prev = ""
			continue
		}
		if _, ok := f.Step(st.Step); !ok {
			prev = ""
			continue
		}
		h.steps[st.Step] = append(h.steps[st.Step], st.Seq)
		if prev == "" && len(h.edges) == 0 && len(f.Steps) > 0 && f.Steps[0].ID == st.Step {
			h.edges[[2]string{startID, st.Step}] = true
		}
		if prev != "" {
			h.edges[[2]string{prev, st.Step}] = true
		}
		prev = st.Step
		h.last, h.lastOutcome = st.Step, st.Outcome
	}
	if prev == "" {
		h.last, h.lastOutcome = "", ""
	}
	return h
}

func kvs(m map[string]any) []keyValue {
	out := make([]keyValue, 0, len(m))
	for k, v := range m {
		var s string
		switch x := v.(type) {
		case string:
			s = x
		case nil:
			s = ""
		default:
			b, err := json.Marshal(x)
			if err != nil {
				s = fmt.Sprint(x)
			} else {
				s = string(b)
			}
		}
		out = append(out, keyValue{Key: k, Value: s})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// callJSON is a call as the API shows it.
type callJSON struct {
	ID              string            `json:"id"`
	Transport       string            `json:"transport,omitempty"`
	Node            string            `json:"node,omitempty"`
	Flow            string            `json:"flow"`
	FlowVersion     string            `json:"flow_version,omitempty"`
	Workspace       string            `json:"workspace"`
	Called          string            `json:"called"`
	Caller          string            `json:"caller"`
	Started         time.Time         `json:"started"`
	Answered        time.Time         `json:"answered,omitzero"`
	Ended           time.Time         `json:"ended,omitzero"`
	DurationSeconds float64           `json:"duration_seconds"`
	Outcome         string            `json:"outcome"`
	TalkSeconds     float64           `json:"talk_seconds"`
	Qualified       bool              `json:"qualified"`
	Abandoned       bool              `json:"abandoned"`
	LastStep        string            `json:"last_step,omitempty"`
	Tags            []string          `json:"tags,omitempty"`
	Vars            map[string]string `json:"vars,omitempty"`
	Recording       string            `json:"recording,omitempty"`
	Recorded        bool              `json:"recorded"`
	Voicemails      int               `json:"voicemails"`
	Recordings      []recordingJSON   `json:"recordings,omitempty"`
	Steps           []stepJSON        `json:"steps,omitempty"`
	Events          []store.CallEvent `json:"events,omitempty"`
}

// recordingJSON is a whole-call recording as the API shows it.
type recordingJSON struct {
	Name            string    `json:"name"`
	DurationSeconds float64   `json:"duration_seconds"`
	Created         time.Time `json:"created"`
	AudioURL        string    `json:"audio_url"`
	DownloadURL     string    `json:"download_url"`
}

func (s *Server) recordingJSON(rec store.Recording) recordingJSON {
	audio := s.opts.BaseURL + "/api/calls/" + url.PathEscape(rec.CallID) + "/recordings/" + url.PathEscape(rec.Name) + "/audio"
	return recordingJSON{Name: rec.Name, DurationSeconds: rec.Duration.Seconds(), Created: rec.Created, AudioURL: audio, DownloadURL: audio + "?download=1"}
}

type stepJSON struct {
	Seq        int            `json:"seq"`
	Flow       string         `json:"flow,omitempty"`
	Step       string         `json:"step"`
	Applet     string         `json:"applet"`
	Outcome    string         `json:"outcome"`
	Next       string         `json:"next,omitempty"`
	Started    time.Time      `json:"started"`
	Ended      time.Time      `json:"ended,omitzero"`
	DurationMS int64          `json:"duration_ms"`
	Actions    []string       `json:"actions,omitempty"`
	Error      string         `json:"error,omitempty"`
	Details    map[string]any `json:"details,omitempty"`
}

func toCallJSON(c store.CallRecord) callJSON {
	out := callJSON{ID: c.ID, Transport: c.Transport, Node: c.Node, Flow: c.Flow, FlowVersion: c.FlowVersion, Workspace: c.Workspace,
		Called: c.Called, Caller: c.Caller, Started: c.Started, Answered: c.Answered, Ended: c.Ended, Outcome: c.Outcome,
		TalkSeconds: c.TalkTime.Seconds(), Qualified: c.Qualified, Abandoned: c.Abandoned, LastStep: c.LastStep,
		Tags: c.Tags, Vars: c.Vars, Recording: c.Recording, Recorded: c.Recording != "", Voicemails: c.Voicemails, Events: c.Events}
	if !c.Ended.IsZero() {
		out.DurationSeconds = c.Ended.Sub(c.Started).Seconds()
	}
	for _, st := range c.Steps {
		sj := stepJSON{Seq: st.Seq, Flow: st.Flow, Step: st.Step, Applet: st.Applet, Outcome: st.Outcome, Started: st.Started, Ended: st.Ended}
		if !st.Ended.IsZero() {
			sj.DurationMS = st.Ended.Sub(st.Started).Milliseconds()
		}
		sd := splitStepDetails(st.Details)
		sj.Next, sj.Error, sj.Actions = sd.next, sd.err, sd.actions
		if len(sd.rest) > 0 {
			sj.Details = sd.rest
		}
		out.Steps = append(out.Steps, sj)
	}
	return out
}

func (s *Server) apiCalls(w http.ResponseWriter, r *http.Request) {
	a := auth(r)
	q := r.URL.Query()
	f, _, err := s.callFilter(a, q, s.loc)
	if err == nil {
		f.Limit, f.Offset, err = limitOffset(q)
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	items, total, err := s.st.ListCalls(r.Context(), f)
	if err != nil {
		s.internal(w, r, err)
		return
	}
	out := listJSON[callJSON]{Items: []callJSON{}, Total: total, Limit: f.Limit, Offset: f.Offset}
	for _, c := range items {
		out.Items = append(out.Items, toCallJSON(c))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) apiCall(w http.ResponseWriter, r *http.Request) {
	c, ok := s.loadCall(w, r)
	if !ok {
		return
	}
	recs, err := s.callRecordings(r, c)
	if err != nil {
		s.internal(w, r, err)
		return
	}
	out := toCallJSON(c)
	for _, rec := range recs {
		out.Recordings = append(out.Recordings, s.recordingJSON(rec))
	}
	writeJSON(w, http.StatusOK, out)
}

// stepDetails are a traced step's details as the call page and the API show
// them: where it went, its error and its actions apart from the rest.
type stepDetails struct {
	next, err string
	actions   []string
	rest      map[string]any
}

func splitStepDetails(details map[string]any) stepDetails {
	d := stepDetails{rest: map[string]any{}}
	for k, v := range details {
		switch k {
		case "next":
			d.next = fmt.Sprint(v)
		case "error":
			d.err = fmt.Sprint(v)
		case "actions":
			if list, ok := v.([]any); ok {
				for _, x := range list {
					d.actions = append(d.actions, fmt.Sprint(x))
				}
			} else {
				d.actions = append(d.actions, fmt.Sprint(v))
			}
		default:
			d.rest[k] = v
		}
	}
	return d
}
