package agi

import (
	"bufio"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/callflow/callflow/applets/call"
)

// Request is the agi_ environment Asterisk sends when a session starts,
// parsed, with the route it names.
//
// Routes: agi://host:4573/ runs the flow that owns the dialled number
// (Number); agi://host:4573/flow/NAME runs the flow named NAME
// (URL-escaped, FlowName). Number is set in both cases.
type Request struct {
	URL          string // agi_request
	Script       string // agi_network_script: the URL's path without "/"
	Channel      string
	Type         string // channel technology
	UniqueID     string
	Language     string
	CallerID     string // "" when Asterisk says "unknown"
	CallerIDName string // "" when Asterisk says "unknown"
	DNID         string // dialled number; "" when "unknown"
	RDNIS        string // redirecting number; "" when "unknown"
	Context      string
	Extension    string
	Priority     string
	AccountCode  string
	Version      string   // Asterisk's version
	Args         []string // agi_arg_1, agi_arg_2, ...: AGI(url,arg1,arg2)
	// Env holds every agi_ variable exactly as received.
	Env map[string]string

	// FlowName is the flow named by /flow/NAME; "" for the number route.
	FlowName string
	// Number is the dialled number: agi_dnid, else agi_extension.
	Number string
}

// readEnv reads "agi_name: value" lines up to the empty line that ends them.
func readEnv(br *bufio.Reader) (map[string]string, error) {
	env := make(map[string]string, 24)
	for {
		line, err := readLine(br)
		if err != nil {
			return nil, fmt.Errorf("reading agi environment: %w", err)
		}
		if line == "" {
			if len(env) == 0 {
				return nil, errors.New("empty agi environment")
			}
			return env, nil
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok || !strings.HasPrefix(name, "agi_") {
			return nil, fmt.Errorf("%w: environment line %q", ErrProtocol, clip(line))
		}
		if len(env) >= maxEnv {
			return nil, fmt.Errorf("%w: more than %d environment lines", ErrProtocol, maxEnv)
		}
		// Asterisk writes "name: value"; the value keeps its own spaces.
		env[name] = strings.TrimPrefix(value, " ")
	}
}

// ParseRequest reads the route and the call's details from the agi_
// environment.
func ParseRequest(env map[string]string) (Request, error) {
	known := func(k string) string {
		if v := env[k]; v != "unknown" {
			return v
		}
		return ""
	}
	r := Request{
		URL:          env["agi_request"],
		Script:       env["agi_network_script"],
		Channel:      env["agi_channel"],
		Type:         env["agi_type"],
		UniqueID:     env["agi_uniqueid"],
		Language:     env["agi_language"],
		CallerID:     known("agi_callerid"),
		CallerIDName: known("agi_calleridname"),
		DNID:         known("agi_dnid"),
		RDNIS:        known("agi_rdnis"),
		Context:      env["agi_context"],
		Extension:    env["agi_extension"],
		Priority:     env["agi_priority"],
		AccountCode:  env["agi_accountcode"],
		Version:      env["agi_version"],
		Env:          env,
	}
	for i := 1; ; i++ {
		v, ok := env["agi_arg_"+strconv.Itoa(i)]
		if !ok {
			break
		}
		r.Args = append(r.Args, v)
	}
	dialled := r.DNID
	if dialled == "" {
		dialled = r.Extension
	}
	r.FlowName, r.Number = call.Route(r.Args, dialled)

	path, err := requestPath(r.URL, r.Script)
	if err != nil {
		return r, err
	}
	switch {
	case path == "" || path == "/":
		if r.Number == "" && r.FlowName == "" {
			return r, errors.New("no dialled number (agi_dnid, agi_extension) to find a flow by")
		}
	case strings.HasPrefix(path, "/flow/"):
		name, err := url.PathUnescape(path[len("/flow/"):])
		if err != nil {
			return r, fmt.Errorf("flow name in %q: %w", r.URL, err)
		}
		name = strings.TrimSpace(name)
		if name == "" {
			return r, fmt.Errorf("empty flow name in %q", r.URL)
		}
		r.FlowName = name
	default:
		return r, fmt.Errorf("unknown route %q: use agi://host:port/ or agi://host:port/flow/NAME", r.URL)
	}
	return r, nil
}

// requestPath is the escaped path of the AGI URL, falling back on
// agi_network_script (which Asterisk derives from the same URL).
func requestPath(raw, script string) (string, error) {
	if raw != "" {
		u, err := url.Parse(raw)
		if err != nil {
			return "", fmt.Errorf("agi_request %q: %w", raw, err)
		}
		return u.EscapedPath(), nil
	}
	script, _, _ = strings.Cut(script, "?")
	return "/" + script, nil
}

// clip shortens s for messages and logs.
func clip(s string) string {
	const n = 120
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// route is what the call handler is told of the call.
func (r Request) route() call.Inbound {
	return call.Inbound{Transport: call.TransportAGI, FlowName: r.FlowName, Number: r.Number}
}
