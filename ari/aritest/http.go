package aritest

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// reply is a REST response.
type reply struct {
	code        int
	body        any
	file        string
	contentType string
	location    string
}

func errReply(code int, msg string) *reply {
	return &reply{code: code, body: map[string]string{"message": msg}}
}

// allocFailed is ast_ari_response_alloc_failed: a 500 with "error", not "message".
func allocFailed() *reply {
	return &reply{code: 500, body: map[string]string{"error": "Allocation failed"}}
}

func okReply(body any) *reply { return &reply{code: 200, body: body} }

func noContent() *reply { return &reply{code: 204} }

// request is a parsed REST request. Parameters come from the query string,
// a form body, or the fields of a JSON body object, which override them,
// as in Asterisk's generated handlers.
type request struct {
	s       *Server
	r       *http.Request
	vars    map[string]string
	form    url.Values
	body    any
	bodyObj map[string]any
}

func (q *request) pathVar(name string) string { return q.vars[name] }

func jsonString(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case bool:
		return strconv.FormatBool(x)
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	default:
		return string(jsonBytes(x))
	}
}

func (q *request) has(name string) bool {
	if _, ok := q.bodyObj[name]; ok {
		return true
	}
	_, ok := q.form[name]
	return ok
}

func (q *request) param(name string) string {
	if v, ok := q.bodyObj[name]; ok {
		if arr, ok := v.([]any); ok {
			var parts []string
			for _, e := range arr {
				parts = append(parts, jsonString(e))
			}
			return strings.Join(parts, ",")
		}
		return jsonString(v)
	}
	return q.form.Get(name)
}

// list returns a parameter that allows multiple values: repeated, comma
// separated, or a JSON array.
func (q *request) list(name string) []string {
	var raw []string
	if v, ok := q.bodyObj[name]; ok {
		if arr, ok := v.([]any); ok {
			for _, e := range arr {
				raw = append(raw, jsonString(e))
			}
		} else {
			raw = []string{jsonString(v)}
		}
	} else {
		raw = q.form[name]
	}
	var out []string
	for _, r := range raw {
		out = append(out, strings.Split(r, ",")...)
	}
	return out
}

// intParam parses like atoi: garbage reads as 0.
func (q *request) intParam(name string, def int) int {
	if !q.has(name) {
		return def
	}
	v := strings.TrimSpace(q.param(name))
	n, err := strconv.Atoi(leadingInt(v))
	if err != nil {
		return 0
	}
	return n
}

// boolParam parses like ast_true.
func (q *request) boolParam(name string) bool {
	switch strings.ToLower(strings.TrimSpace(q.param(name))) {
	case "yes", "true", "y", "t", "1", "on":
		return true
	}
	return false
}

type handlerFunc func(q *request) *reply

// node is one path segment of the route tree. Like Asterisk, a literal
// segment wins over a wildcard and there is no backtracking.
type node struct {
	children map[string]*node
	wild     *node
	wildName string
	methods  map[string]handlerFunc
}

func (n *node) insert(pattern, method string, h handlerFunc) {
	cur := n
	if pattern != "" {
		for _, seg := range strings.Split(pattern, "/") {
			if strings.HasPrefix(seg, "{") {
				if cur.wild == nil {
					cur.wild = &node{}
					cur.wildName = strings.Trim(seg, "{}")
				}
				cur = cur.wild
				continue
			}
			if cur.children == nil {
				cur.children = map[string]*node{}
			}
			nx := cur.children[seg]
			if nx == nil {
				nx = &node{}
				cur.children[seg] = nx
			}
			cur = nx
		}
	}
	if cur.methods == nil {
		cur.methods = map[string]handlerFunc{}
	}
	if h != nil || cur.methods[method] == nil {
		cur.methods[method] = h
	}
}

func (n *node) lookup(segs []string) (*node, map[string]string) {
	vars := map[string]string{}
	cur := n
	for _, seg := range segs {
		if nx := cur.children[seg]; nx != nil {
			cur = nx
			continue
		}
		if cur.wild != nil {
			vars[cur.wildName] = seg
			cur = cur.wild
			continue
		}
		return nil, nil
	}
	return cur, vars
}

func (s *Server) authOK(r *http.Request, query url.Values) bool {
	check := func(user, pass string) bool {
		return user == s.opts.Username && pass == s.opts.Password
	}
	if h := r.Header.Get("Authorization"); strings.HasPrefix(h, "Basic ") {
		if raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(h, "Basic ")); err == nil {
			user, pass, _ := strings.Cut(string(raw), ":")
			return check(user, pass)
		}
		return false
	}
	for _, key := range query["api_key"] {
		user, pass, ok := strings.Cut(key, ":")
		if ok && check(user, pass) {
			return true
		}
	}
	return false
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if !s.handlers.enter() {
		http.Error(w, "server closed", http.StatusServiceUnavailable)
		return
	}
	defer s.handlers.leave()

	path := r.URL.Path
	if path != "/ari" && !strings.HasPrefix(path, "/ari/") {
		http.NotFound(w, r)
		return
	}
	// Segments are split before unescaping, so that an id may hold "%2F".
	rest := strings.TrimPrefix(strings.TrimPrefix(r.URL.EscapedPath(), "/ari"), "/")
	query := r.URL.Query()

	if rest == "events" && r.Method == http.MethodGet {
		if !s.authOK(r, query) {
			writeReply(w, errReply(401, "Authentication required"))
			return
		}
		s.serveEvents(w, r, query["app"])
		return
	}

	raw, _ := io.ReadAll(io.LimitReader(r.Body, 16<<20))
	logEntry := Request{Method: r.Method, Path: path, Query: r.URL.RawQuery, Body: string(raw), Time: time.Now()}
	rep := s.handleREST(r, rest, query, raw)
	logEntry.Status = rep.code
	if !s.opts.NoRequestLog {
		s.mu.Lock()
		s.requests = append(s.requests, logEntry)
		s.mu.Unlock()
	}
	if rep.code == 401 {
		w.Header().Set("WWW-Authenticate", `Basic realm="Asterisk REST Interface"`)
	}
	writeReply(w, rep)
}

func (s *Server) handleREST(r *http.Request, rest string, query url.Values, raw []byte) *reply {
	var arrived time.Time
	if s.opts.OnCommandLatency != nil || s.opts.OnDialLatency != nil {
		arrived = time.Now()
	}
	form := url.Values{}
	var body any
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch {
	case ct == "application/x-www-form-urlencoded" && len(raw) > 0:
		posted, err := url.ParseQuery(string(raw))
		if err != nil {
			return errReply(400, "Error parsing request body")
		}
		for k, v := range posted {
			form[k] = append(form[k], v...)
		}
	case ct == "application/json" && len(strings.TrimSpace(string(raw))) > 0:
		if err := json.Unmarshal(raw, &body); err != nil {
			return errReply(400, "Error parsing request body")
		}
	}
	for k, v := range query {
		form[k] = append(form[k], v...)
	}
	if !s.authOK(r, form) {
		return errReply(401, "Authentication required")
	}
	if strings.HasSuffix(rest, "/") {
		plain, _ := url.PathUnescape(strings.TrimRight(rest, "/"))
		return errReply(404, fmt.Sprintf("ARI URLs do not end with a slash. Try /ari/%s", plain))
	}
	var segs []string
	if rest != "" {
		for _, seg := range strings.Split(rest, "/") {
			if u, err := url.PathUnescape(seg); err == nil {
				seg = u
			}
			segs = append(segs, seg)
		}
	}
	n, vars := routes.lookup(segs)
	if n == nil {
		return errReply(404, "Resource not found")
	}
	h, ok := n.methods[r.Method]
	if !ok {
		return errReply(405, "Invalid method")
	}
	if h == nil {
		return errReply(501, "Not implemented by the fake Asterisk")
	}
	q := &request{s: s, r: r, vars: vars, form: form, body: body}
	q.bodyObj, _ = body.(map[string]any)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return errReply(503, "Asterisk not booted")
	}
	if s.opts.OnCommandLatency != nil {
		s.noteCommandLocked(arrived, segs, q)
	}
	if s.opts.OnDialLatency != nil {
		s.noteDialLocked(arrived, segs, q)
	}
	rep := h(q)
	if s.opts.OnCommandLatency != nil {
		s.linkCommandLocked(segs, q, rep)
	}
	s.mu.Unlock()
	return rep
}

func writeReply(w http.ResponseWriter, rep *reply) {
	if rep.location != "" {
		w.Header().Set("Location", rep.location)
	}
	if rep.file != "" {
		data, err := os.ReadFile(rep.file)
		if err != nil {
			writeReply(w, errReply(403, "Recording could not be opened"))
			return
		}
		w.Header().Set("Content-Type", rep.contentType)
		w.Header().Set("Content-Length", strconv.Itoa(len(data)))
		w.WriteHeader(rep.code)
		_, _ = w.Write(data)
		return
	}
	if rep.body == nil {
		w.WriteHeader(rep.code)
		return
	}
	data := jsonBytes(rep.body)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	w.WriteHeader(rep.code)
	_, _ = w.Write(data)
}

// specRoutes are all the (method, path) pairs of the Asterisk 20 ARI
// specification; those the fake does not implement answer 501.
var specRoutes = [][2]string{
	{"GET", "applications"},
	{"GET", "applications/{applicationName}"},
	{"POST", "applications/{applicationName}/subscription"},
	{"DELETE", "applications/{applicationName}/subscription"},
	{"PUT", "applications/{applicationName}/eventFilter"},
	{"GET", "asterisk/config/dynamic/{configClass}/{objectType}/{id}"},
	{"PUT", "asterisk/config/dynamic/{configClass}/{objectType}/{id}"},
	{"DELETE", "asterisk/config/dynamic/{configClass}/{objectType}/{id}"},
	{"GET", "asterisk/info"},
	{"GET", "asterisk/ping"},
	{"GET", "asterisk/modules"},
	{"GET", "asterisk/modules/{moduleName}"},
	{"POST", "asterisk/modules/{moduleName}"},
	{"DELETE", "asterisk/modules/{moduleName}"},
	{"PUT", "asterisk/modules/{moduleName}"},
	{"GET", "asterisk/logging"},
	{"POST", "asterisk/logging/{logChannelName}"},
	{"DELETE", "asterisk/logging/{logChannelName}"},
	{"PUT", "asterisk/logging/{logChannelName}/rotate"},
	{"GET", "asterisk/variable"},
	{"POST", "asterisk/variable"},
	{"GET", "bridges"},
	{"POST", "bridges"},
	{"POST", "bridges/{bridgeId}"},
	{"GET", "bridges/{bridgeId}"},
	{"DELETE", "bridges/{bridgeId}"},
	{"GET", "bridges/{bridgeId}/variable"},
	{"POST", "bridges/{bridgeId}/variable"},
	{"GET", "bridges/{bridgeId}/variables"},
	{"POST", "bridges/{bridgeId}/variables"},
	{"POST", "bridges/{bridgeId}/addChannel"},
	{"POST", "bridges/{bridgeId}/removeChannel"},
	{"POST", "bridges/{bridgeId}/videoSource/{channelId}"},
	{"DELETE", "bridges/{bridgeId}/videoSource"},
	{"POST", "bridges/{bridgeId}/moh"},
	{"DELETE", "bridges/{bridgeId}/moh"},
	{"POST", "bridges/{bridgeId}/play"},
	{"POST", "bridges/{bridgeId}/play/{playbackId}"},
	{"POST", "bridges/{bridgeId}/record"},
	{"GET", "channels"},
	{"POST", "channels"},
	{"POST", "channels/create"},
	{"GET", "channels/{channelId}"},
	{"POST", "channels/{channelId}"},
	{"DELETE", "channels/{channelId}"},
	{"POST", "channels/{channelId}/continue"},
	{"POST", "channels/{channelId}/move"},
	{"POST", "channels/{channelId}/redirect"},
	{"POST", "channels/{channelId}/answer"},
	{"POST", "channels/{channelId}/ring"},
	{"DELETE", "channels/{channelId}/ring"},
	{"POST", "channels/{channelId}/progress"},
	{"POST", "channels/{channelId}/dtmf"},
	{"POST", "channels/{channelId}/mute"},
	{"DELETE", "channels/{channelId}/mute"},
	{"POST", "channels/{channelId}/hold"},
	{"DELETE", "channels/{channelId}/hold"},
	{"POST", "channels/{channelId}/moh"},
	{"DELETE", "channels/{channelId}/moh"},
	{"POST", "channels/{channelId}/silence"},
	{"DELETE", "channels/{channelId}/silence"},
	{"POST", "channels/{channelId}/play"},
	{"POST", "channels/{channelId}/play/{playbackId}"},
	{"POST", "channels/{channelId}/record"},
	{"GET", "channels/{channelId}/variable"},
	{"POST", "channels/{channelId}/variable"},
	{"GET", "channels/{channelId}/variables"},
	{"POST", "channels/{channelId}/variables"},
	{"POST", "channels/{channelId}/snoop"},
	{"POST", "channels/{channelId}/snoop/{snoopId}"},
	{"POST", "channels/{channelId}/dial"},
	{"GET", "channels/{channelId}/rtp_statistics"},
	{"POST", "channels/externalMedia"},
	{"POST", "channels/{channelId}/transfer_progress"},
	{"GET", "deviceStates"},
	{"GET", "deviceStates/{deviceName}"},
	{"PUT", "deviceStates/{deviceName}"},
	{"DELETE", "deviceStates/{deviceName}"},
	{"GET", "endpoints"},
	{"PUT", "endpoints/sendMessage"},
	{"POST", "endpoints/refer"},
	{"GET", "endpoints/{tech}"},
	{"GET", "endpoints/{tech}/{resource}"},
	{"PUT", "endpoints/{tech}/{resource}/sendMessage"},
	{"POST", "endpoints/{tech}/{resource}/refer"},
	{"GET", "events"},
	{"POST", "events/user/{eventName}"},
	{"POST", "events/claim"},
	{"GET", "mailboxes"},
	{"GET", "mailboxes/{mailboxName}"},
	{"PUT", "mailboxes/{mailboxName}"},
	{"DELETE", "mailboxes/{mailboxName}"},
	{"GET", "playbacks/{playbackId}"},
	{"DELETE", "playbacks/{playbackId}"},
	{"POST", "playbacks/{playbackId}/control"},
	{"GET", "recordings/stored"},
	{"GET", "recordings/stored/{recordingName}"},
	{"DELETE", "recordings/stored/{recordingName}"},
	{"GET", "recordings/stored/{recordingName}/file"},
	{"POST", "recordings/stored/{recordingName}/copy"},
	{"GET", "recordings/live/{recordingName}"},
	{"DELETE", "recordings/live/{recordingName}"},
	{"POST", "recordings/live/{recordingName}/stop"},
	{"POST", "recordings/live/{recordingName}/pause"},
	{"DELETE", "recordings/live/{recordingName}/pause"},
	{"POST", "recordings/live/{recordingName}/mute"},
	{"DELETE", "recordings/live/{recordingName}/mute"},
	{"GET", "sounds"},
	{"GET", "sounds/{soundId}"},
}

var routes = buildRoutes()

func buildRoutes() *node {
	root := &node{}
	for _, r := range specRoutes {
		root.insert(r[1], r[0], nil)
	}
	for _, r := range implemented() {
		root.insert(r.pattern, r.method, r.h)
	}
	return root
}

type route struct {
	method, pattern string
	h               handlerFunc
}
