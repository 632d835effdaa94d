package web

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/callflow/callflow/presence"
	"github.com/callflow/callflow/store"
)

// agentData is the agent page: the signed-in agent's own presence and,
// for admins, every agent's.
type agentData struct {
	Me      *presence.Status // nil: the user is no agent
	Agents  []agentRow
	Admin   bool
	Message string
	Error   string
}

type agentRow struct {
	presence.Status
	Endpoints []string
}

// agentPage is a compact page, made for a phone: an agent sees their
// state and changes it with one tap (available, pause with a reason, log
// out); an admin sees every agent and can change anyone's.
func (s *Server) agentPage(w http.ResponseWriter, r *http.Request) {
	if s.opts.Presence == nil {
		s.fail(w, r, http.StatusNotFound, "agents are not served here")
		return
	}
	s.renderAgent(w, r, http.StatusOK, agentMessages[r.URL.Query().Get("msg")], "")
}

var agentMessages = map[string]string{"set": "Your state is changed.", "other": "The agent's state is changed."}

func (s *Server) renderAgent(w http.ResponseWriter, r *http.Request, code int, msg, errMsg string) {
	a := auth(r)
	d := agentData{Admin: a.isAdmin(), Message: msg, Error: errMsg}
	if _, err := s.st.GetAgent(r.Context(), a.user.Name); err == nil {
		st := s.opts.Presence.Status(a.user.Name)
		d.Me = &st
	} else if !errors.Is(err, store.ErrNotFound) {
		s.storeError(w, r, err)
		return
	}
	if d.Admin {
		agents, err := s.st.ListAgents(r.Context())
		if err != nil {
			s.storeError(w, r, err)
			return
		}
		for _, ag := range agents {
			d.Agents = append(d.Agents, agentRow{Status: s.opts.Presence.Status(ag.Name), Endpoints: ag.Endpoints})
		}
	}
	s.render(w, r, code, "agent", "Agent", d)
}

// agentForm sets a presence from the agent page (the form's agent: the
// user's own, or for an admin anyone's).
func (s *Server) agentForm(w http.ResponseWriter, r *http.Request) {
	if s.opts.Presence == nil {
		s.fail(w, r, http.StatusNotFound, "agents are not served here")
		return
	}
	a := auth(r)
	name := strings.TrimSpace(r.PostFormValue("agent"))
	if name == "" {
		name = a.user.Name
	}
	if name != a.user.Name && !a.isAdmin() {
		s.renderAgent(w, r, http.StatusForbidden, "", "Only an admin changes another agent's state.")
		return
	}
	st := presence.State(r.PostFormValue("state"))
	if !st.Chosen() {
		s.renderAgent(w, r, http.StatusBadRequest, "", "Choose available, paused or logged out.")
		return
	}
	if err := s.opts.Presence.Set(r.Context(), name, st, strings.TrimSpace(r.PostFormValue("reason"))); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			s.renderAgent(w, r, http.StatusNotFound, "", name+" is no agent.")
			return
		}
		s.storeError(w, r, err)
		return
	}
	s.log.Info().Str("agent", name).Str("state", string(st)).Str("user", a.user.Name).Msg("web: agent presence set")
	msg := "set"
	if name != a.user.Name {
		msg = "other"
	}
	http.Redirect(w, r, "/agent?msg="+url.QueryEscape(msg), http.StatusSeeOther)
}
