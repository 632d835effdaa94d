package aritest

import (
	"sort"
	"strings"
	"time"
)

// device is one Asterisk device state and the applications subscribed to
// it (eventSource "deviceState:NAME").
type device struct {
	state string
	subs  map[string]int
}

// deviceStates are the values ARI accepts in PUT /deviceStates (UNKNOWN is
// reported, never set).
var deviceStates = map[string]bool{"NOT_INUSE": true, "INUSE": true, "BUSY": true, "INVALID": true,
	"UNAVAILABLE": true, "RINGING": true, "RINGINUSE": true, "ONHOLD": true}

// deviceLocked returns the device of name, making it: like Asterisk, a
// subscription may name a device nothing has reported yet.
func (s *Server) deviceLocked(name string) *device {
	d := s.devices[name]
	if d == nil {
		d = &device{state: "UNKNOWN", subs: map[string]int{}}
		s.devices[name] = d
	}
	return d
}

// controlled reports a device ARI may set: only "Stasis:" custom devices
// (Asterisk answers 409 for any other).
func controlled(name string) bool { return strings.HasPrefix(name, "Stasis:") }

func deviceJSON(name, state string) map[string]any {
	return map[string]any{"name": name, "state": state}
}

// setDeviceLocked changes a state and tells the subscribed applications.
func (s *Server) setDeviceLocked(name, state string) {
	d := s.deviceLocked(name)
	if d.state == state {
		return // Asterisk publishes changes only
	}
	d.state = state
	ev := &event{typ: "DeviceStateChanged", ts: time.Now(), post: []kv{{"device_state", deviceJSON(name, state)}}}
	for _, a := range sortedSubs(d.subs) {
		s.sendToAppLocked(a, ev)
	}
}

// SetDeviceState is a phone's state changing in Asterisk ("PJSIP/1001"
// becoming "INUSE" when its user takes a call callflow did not place).
func (s *Server) SetDeviceState(name, state string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.setDeviceLocked(name, state)
}

// hListDeviceStates lists the devices ARI controls, as Asterisk does: a
// phone's state is read by name, not listed.
func hListDeviceStates(q *request) *reply {
	var names []string
	for n, d := range q.s.devices {
		if controlled(n) && d.state != "UNKNOWN" {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	out := make([]any, 0, len(names))
	for _, n := range names {
		out = append(out, deviceJSON(n, q.s.devices[n].state))
	}
	return okReply(out)
}

func hGetDeviceState(q *request) *reply {
	name := q.pathVar("deviceName")
	state := "UNKNOWN"
	if d := q.s.devices[name]; d != nil {
		state = d.state
	}
	return okReply(deviceJSON(name, state))
}

func hUpdateDeviceState(q *request) *reply {
	name, state := q.pathVar("deviceName"), q.param("deviceState")
	if state == "" {
		return errReply(400, "Missing parameter deviceState")
	}
	if !controlled(name) {
		return errReply(409, "Uncontrolled device specified")
	}
	if !deviceStates[state] {
		return errReply(400, "Invalid value for deviceState")
	}
	q.s.setDeviceLocked(name, state)
	return noContent()
}

func hDeleteDeviceState(q *request) *reply {
	name := q.pathVar("deviceName")
	if !controlled(name) {
		return errReply(409, "Uncontrolled device specified")
	}
	d := q.s.devices[name]
	if d == nil || d.state == "UNKNOWN" {
		return errReply(404, "Device name not found")
	}
	q.s.setDeviceLocked(name, "UNKNOWN")
	return noContent()
}
