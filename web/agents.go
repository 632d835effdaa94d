package web

import (
	"context"
	"encoding/json"
	"mime"
	"net/http"

	"github.com/callflow/callflow/presence"
)

// Presence is the agents' presence tracker of the running server.
type Presence interface {
	Status(agent string) presence.Status
	Set(ctx context.Context, agent string, s presence.State, reason string) error
}

// apiAgents lists the agents with their endpoints and presence now.
func (s *Server) apiAgents(w http.ResponseWriter, r *http.Request) {
	if s.opts.Presence == nil {
		s.fail(w, r, http.StatusNotFound, "agents are not served here")
		return
	}
	agents, err := s.st.ListAgents(r.Context())
	if err != nil {
		s.storeError(w, r, err)
		return
	}
	type agentJSON struct {
		presence.Status
		Endpoints []string `json:"endpoints"`
	}
	out := make([]agentJSON, 0, len(agents))
	for _, a := range agents {
		out = append(out, agentJSON{Status: s.opts.Presence.Status(a.Name), Endpoints: a.Endpoints})
	}
	writeJSON(w, http.StatusOK, map[string]any{"agents": out})
}

// apiAgentPresence sets an agent's presence: agents their own, admins
// anyone's. The body is JSON {"state": "paused", "reason": "lunch"} or
// the same as a form.
func (s *Server) apiAgentPresence(w http.ResponseWriter, r *http.Request) {
	if s.opts.Presence == nil {
		s.fail(w, r, http.StatusNotFound, "agents are not served here")
		return
	}
	a, name := auth(r), r.PathValue("name")
	if a.user.Name != name && !a.isAdmin() {
		s.fail(w, r, http.StatusForbidden, "only an admin sets another agent's presence")
		return
	}
	var body struct {
		State  string `json:"state"`
		Reason string `json:"reason"`
	}
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct == "application/json" {
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			s.fail(w, r, http.StatusBadRequest, "bad JSON body: "+err.Error())
			return
		}
	} else {
		body.State, body.Reason = r.FormValue("state"), r.FormValue("reason")
	}
	st := presence.State(body.State)
	if !st.Chosen() {
		s.fail(w, r, http.StatusBadRequest, "state: available, paused or logged_out")
		return
	}
	if err := s.opts.Presence.Set(r.Context(), name, st, body.Reason); err != nil {
		s.storeError(w, r, err)
		return
	}
	s.log.Info().Str("agent", name).Str("state", body.State).Str("user", a.user.Name).Msg("web: agent presence set")
	writeJSON(w, http.StatusOK, s.opts.Presence.Status(name))
}
