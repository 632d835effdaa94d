package aritest

import (
	"net/url"
	"testing"
)

// Device states as Asterisk 20 serves them: only "Stasis:" devices are set
// and listed over ARI; any device can be read and subscribed to, and a
// subscriber hears DeviceStateChanged on each change.
func TestDeviceStatesAndTheirEvents(t *testing.T) {
	s, c, _ := setup(t, Options{})
	other := dialEvents(t, s, "other")
	phone := url.PathEscape("PJSIP/1001")
	if r := c.do("GET", "/deviceStates/"+phone, nil, nil); r.status != 200 || r.obj()["state"] != "UNKNOWN" {
		t.Fatalf("unknown phone: %d %s", r.status, r.body)
	}
	if r := c.do("POST", "/applications/other/subscription", vals("eventSource", "deviceState:PJSIP/1001"), nil); r.status != 200 {
		t.Fatalf("subscribe %d %s", r.status, r.body)
	}
	s.SetDeviceState("PJSIP/1001", "INUSE")
	ev := other.next("DeviceStateChanged", nil)
	if field(ev, "device_state", "name") != "PJSIP/1001" || field(ev, "device_state", "state") != "INUSE" {
		t.Errorf("event %v", ev)
	}
	if r := c.do("GET", "/deviceStates/"+phone, nil, nil); r.obj()["state"] != "INUSE" {
		t.Errorf("read back %s", r.body)
	}
	if r := c.do("PUT", "/deviceStates/"+phone, vals("deviceState", "NOT_INUSE"), nil); r.status != 409 {
		t.Errorf("setting a phone: %d, want 409", r.status)
	}

	custom := url.PathEscape("Stasis:queue-support")
	for _, bad := range []url.Values{nil, vals("deviceState", "ASLEEP")} {
		if r := c.do("PUT", "/deviceStates/"+custom, bad, nil); r.status != 400 {
			t.Errorf("PUT %v: %d, want 400", bad, r.status)
		}
	}
	if r := c.do("PUT", "/deviceStates/"+custom, vals("deviceState", "BUSY"), nil); r.status != 204 {
		t.Fatalf("PUT %d %s", r.status, r.body)
	}
	list := c.do("GET", "/deviceStates", nil, nil).json().([]any)
	if len(list) != 1 || list[0].(map[string]any)["name"] != "Stasis:queue-support" {
		t.Errorf("list %v: only ARI's own devices", list)
	}
	if r := c.do("DELETE", "/deviceStates/"+custom, nil, nil); r.status != 204 {
		t.Errorf("DELETE %d", r.status)
	}
	if r := c.do("DELETE", "/deviceStates/"+custom, nil, nil); r.status != 404 {
		t.Errorf("second DELETE %d, want 404", r.status)
	}
}
