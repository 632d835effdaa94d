package web

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/callflow/callflow/presence"
	"github.com/callflow/callflow/queues"
)

// Queues is what the live queue view reads (the server's queues.Set).
type Queues interface {
	Snapshot() []queues.Status
	Subscribe() (<-chan struct{}, func())
}

// queuesView is /api/queues: every queue of this node, and the agents.
type queuesView struct {
	Queues []queues.Status   `json:"queues"`
	Agents []presence.Status `json:"agents"`
	At     time.Time         `json:"at"`
}

func (s *Server) queuesNow() queuesView {
	v := queuesView{Queues: s.opts.Queues.Snapshot(), Agents: []presence.Status{}, At: s.opts.Now()}
	if p, ok := s.opts.Presence.(interface{ Snapshot() []presence.Status }); ok {
		v.Agents = p.Snapshot()
	}
	return v
}

// apiQueues lists the queues: callers waiting (number, wait, position),
// the day's answered and abandoned calls, waits and service level, and
// the agents' states.
func (s *Server) apiQueues(w http.ResponseWriter, r *http.Request) {
	if s.opts.Queues == nil {
		s.fail(w, r, http.StatusNotFound, "queues are not served here")
		return
	}
	writeJSON(w, http.StatusOK, s.queuesNow())
}

// queueEvents streams /api/queues as server-sent events: one at once,
// then one after each change (at most every queueEventGap), and a comment
// every 15 s so proxies keep the stream open. It ends with the request or
// when the server shuts down.
func (s *Server) queueEvents(w http.ResponseWriter, r *http.Request) {
	if s.opts.Queues == nil {
		s.fail(w, r, http.StatusNotFound, "queues are not served here")
		return
	}
	flusher, ok := w.(http.Flusher)
	if !ok {
		s.fail(w, r, http.StatusInternalServerError, "streaming unsupported")
		return
	}
	changed, stop := s.opts.Queues.Subscribe()
	defer stop()
	var agents <-chan struct{}
	if p, ok := s.opts.Presence.(interface {
		Subscribe() (<-chan struct{}, func())
	}); ok {
		ch, stopAgents := p.Subscribe()
		defer stopAgents()
		agents = ch
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	send := func() bool {
		b, err := json.Marshal(s.queuesNow())
		if err != nil {
			return false
		}
		if _, err := fmt.Fprintf(w, "event: queues\ndata: %s\n\n", b); err != nil {
			return false
		}
		flusher.Flush()
		return true
	}
	if !send() {
		return
	}
	tick := time.NewTicker(time.Second) // waits grow every second
	defer tick.Stop()
	keep := time.NewTicker(15 * time.Second)
	defer keep.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-s.streamsDone:
			return
		case <-changed:
		case <-agents:
		case <-tick.C:
		case <-keep.C:
			if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil {
				return
			}
			flusher.Flush()
			continue
		}
		if !send() {
			return
		}
	}
}

// CloseStreams ends the live streams (the HTTP server's shutdown waits for
// open requests, and a stream never ends by itself).
func (s *Server) CloseStreams() {
	s.streamsOnce.Do(func() { close(s.streamsDone) })
}

type queuesData struct{}

// queuesPage is the live queue view; the page fills itself from
// /api/queues/events.
func (s *Server) queuesPage(w http.ResponseWriter, r *http.Request) {
	if s.opts.Queues == nil {
		s.fail(w, r, http.StatusNotFound, "queues are not served here")
		return
	}
	s.render(w, r, http.StatusOK, "queues", "Queues", queuesData{})
}
