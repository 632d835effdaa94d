package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeFiles writes name: content files into a new directory.
func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, src := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// nightLine opens on weekdays 9 to 5 New York time, asks a CRM, then
// offers a menu; its calls are reported to two webhooks and an email.
const nightLine = `name = "Night Line"
numbers = ["+15550001111"]
[settings]
post_call_webhook = "https://crm.example/calls"
abandoned_webhook = "https://crm.example/abandoned"
abandoned_email = ["boss@acme.example"]
[[steps]]
id = "hours"
applet = "schedule"
timezone = "America/New_York"
hours = [{ days = ["mon-fri"], from = "09:00", to = "17:00" }]
on = { open = "crm", closed = "bye" }
[[steps]]
id = "crm"
applet = "passthru"
url = "https://crm.example/lookup"
outcomes = ["vip"]
on = { vip = "bye", success = "menu", failed = "menu" }
[[steps]]
id = "menu"
applet = "menu"
prompt = ["sound:menu"]
keys = { "1" = "bye" }
[[steps]]
id = "bye"
applet = "hangup"
`

func TestParseAtAcceptsWhatPeopleType(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	want := time.Date(2026, 12, 25, 10, 0, 0, 0, ny)
	for _, in := range []string{
		"2026-12-25T10:00", "2026-12-25 10:00", "2026-12-25T10:00:00", "2026-12-25 10:00:00", " 2026-12-25  10:00 ",
		"2026-12-25T10:00:00-05:00", "2026-12-25T10:00-05:00", "2026-12-25 10:00 -05:00", "2026-12-25T15:00:00Z",
		"2026-12-25T10:00-0500", "2026-12-25 15:00Z",
	} {
		got, err := parseAt(in, ny)
		if err != nil || !got.Equal(want) {
			t.Errorf("%q: %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"tomorrow", "2026-12-25", "10:00", "2026-13-01 10:00"} {
		if _, err := parseAt(bad, ny); err == nil || !strings.Contains(err.Error(), "write a date and a time") {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func TestSimulateAtIsInTheSchedulesTimeZone(t *testing.T) {
	t.Setenv("CALLFLOW_CONFIG", "")
	dir := writeFiles(t, map[string]string{"night.toml": nightLine})
	for at, want := range map[string]string{
		"2026-12-24 10:00":          "local_time=Thu 2026-12-24 10:00 EST",
		"2026-12-24T10:00:00+01:00": "local_time=Thu 2026-12-24 04:00 EST",
	} {
		out, errOut, code := runCLI(t, "simulate", "--flows", dir, "Night Line", "--at", at)
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("--at %s: exit %d, want %q in\n%s%s", at, code, want, out, errOut)
		}
	}
}

func TestSimulateShowsWhatTheCallWouldSendAfterIt(t *testing.T) {
	t.Setenv("CALLFLOW_CONFIG", "")
	dir := writeFiles(t, map[string]string{"night.toml": nightLine})
	out, errOut, code := runCLI(t, "simulate", "--flows", dir, "Night Line", "--at", "2026-12-24 10:00", "--hangup-at", "2")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{
		"POST https://crm.example/lookup: not sent: simulated; no canned answer",
		"email to boss@acme.example: Abandoned call from +15551234567 (Night Line)\n    A caller hung up before reaching anyone.\n\n    Caller: +15551234567",
		"webhook call.ended to https://crm.example/calls (",
		"webhook call.abandoned to https://crm.example/abandoned (",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestSimulateHTTPFileAnswersTheSteps(t *testing.T) {
	t.Setenv("CALLFLOW_CONFIG", "")
	dir := writeFiles(t, map[string]string{
		"night.toml":   nightLine,
		"answers.toml": "[[answer]]\nstep = \"crm\"\nbody = '{\"outcome\": \"vip\", \"tags\": [\"known\"]}'\n",
		"typo.toml":    "[[answer]]\nstep = \"crm\"\nstatsu = 200\n",
	})
	out, errOut, code := runCLI(t, "simulate", "--flows", dir, "Night Line", "--at", "2026-12-24 10:00", "--http", filepath.Join(dir, "answers.toml"))
	if code != 0 || !strings.Contains(out, "POST https://crm.example/lookup: answered 200; added tag known") || !strings.Contains(out, "crm    passthru  vip") {
		t.Errorf("exit %d:\n%s%s", code, out, errOut)
	}
	_, errOut, code = runCLI(t, "simulate", "--flows", dir, "Night Line", "--http", filepath.Join(dir, "typo.toml"))
	if code == 0 || !strings.Contains(errOut, "typo.toml:3:1: unknown key") {
		t.Errorf("a typo in the answers: exit %d: %s", code, errOut)
	}
}

func TestSimulateRoundRobinPositionWalksEachBranch(t *testing.T) {
	t.Setenv("CALLFLOW_CONFIG", "")
	dir := writeFiles(t, map[string]string{"sales.toml": `name = "Sales"
[[steps]]
id = "spread"
applet = "round_robin"
to = ["PJSIP/ann", "PJSIP/bob"]
`})
	for pos, want := range map[string]string{"1": "dialled PJSIP/ann:", "2": "dialled PJSIP/bob:"} {
		out, errOut, code := runCLI(t, "simulate", "--flows", dir, "Sales", "--rr-position", pos)
		if code != 0 || !strings.Contains(out, want) || !strings.Contains(out, "position="+pos) {
			t.Errorf("--rr-position %s: exit %d:\n%s%s", pos, code, out, errOut)
		}
	}
	if _, errOut, code := runCLI(t, "simulate", "--flows", dir, "Sales", "--rr-position", "0"); code == 0 || !strings.Contains(errOut, "count from 1") {
		t.Errorf("position 0: exit %d: %s", code, errOut)
	}
}
