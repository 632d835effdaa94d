package applets_test

import (
	"testing"
	"time"

	"github.com/callflow/callflow/applets/scripted"
	"github.com/callflow/callflow/flows"
)

func newYork(t *testing.T) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func TestScheduleOutcomes(t *testing.T) {
	ny := newYork(t)
	at := func(y int, m time.Month, d, h, min int) time.Time { return time.Date(y, m, d, h, min, 0, 0, ny) }
	utc := func(y int, m time.Month, d, h, min int) time.Time { return time.Date(y, m, d, h, min, 0, 0, time.UTC) }
	cases := []struct {
		name, flow string
		at         time.Time
		want       string
	}{
		{"open-weekday", "schedule", at(2026, 12, 18, 10, 0), "open"},
		{"open-saturday", "schedule", at(2026, 12, 19, 11, 0), "open"},
		{"closed-at-closing-time", "schedule", at(2026, 12, 18, 17, 0), "closed"},
		{"closed-sunday", "schedule", at(2026, 12, 20, 11, 0), "closed"},
		{"lunch-rule", "schedule", at(2026, 12, 18, 12, 30), "lunch"},
		{"holiday-yearly", "schedule", at(2026, 12, 25, 10, 0), "christmas"},
		{"holiday-yearly-next-year", "schedule", at(2027, 12, 25, 11, 0), "christmas"},
		{"holiday-one-off", "schedule", at(2026, 11, 26, 10, 0), "holiday"},
		{"holiday-range-first-day", "schedule", at(2026, 12, 31, 10, 0), "holiday"},
		{"holiday-range-last-minute", "schedule", at(2027, 1, 1, 23, 59), "holiday"},
		{"after-holiday-range", "schedule", at(2027, 1, 4, 10, 0), "open"},
		{"override-before-until", "schedule-override", at(2026, 12, 30, 10, 0), "closed"},
		{"override-after-until", "schedule-override", at(2027, 1, 4, 10, 0), "open"},
		// America/New_York springs forward on 2026-03-08 and falls back on
		// 2026-11-01: opening time stays 09:00 on the wall clock.
		{"dst-spring-before-0859", "schedule", utc(2026, 3, 6, 13, 59), "closed"},
		{"dst-spring-before-0900", "schedule", utc(2026, 3, 6, 14, 0), "open"},
		{"dst-spring-after-0859", "schedule", utc(2026, 3, 9, 12, 59), "closed"},
		{"dst-spring-after-0900", "schedule", utc(2026, 3, 9, 13, 0), "open"},
		{"dst-fall-before-0900", "schedule", utc(2026, 10, 30, 13, 0), "open"},
		{"dst-fall-after-0859", "schedule", utc(2026, 11, 2, 13, 59), "closed"},
		{"dst-fall-after-0900", "schedule", utc(2026, 11, 2, 14, 0), "open"},
	}
	set := loadFlows(t, "schedule.toml", "schedule-override.toml")
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sim, trace := simulate(t, set, c.flow, scripted.Script{Start: c.at}, nil)
			if got := sim.Record.Steps[0].Outcome; got != c.want {
				t.Errorf("outcome %q, want %q\n%s", got, c.want, trace)
			}
			golden(t, goldenFile("schedule", c.name), trace)
		})
	}
}

func scheduleFlow(params string) string {
	return "name = \"s\"\nstatus = \"draft\"\n[[steps]]\nid = \"s\"\napplet = \"schedule\"\n" + params + "\n[[steps]]\nid = \"end\"\napplet = \"hangup\"\n"
}

// Windows are wall-clock times: overnight windows run into the next day,
// and DST nights neither lose nor double a window's hours on the clock.
func TestScheduleWallClock(t *testing.T) {
	ny := newYork(t)
	src := scheduleFlow(`timezone = "America/New_York"
hours = [
  { days = ["fri"], from = "22:00", to = "02:00" },
  { days = ["sun"], from = "01:00", to = "03:30" },
]`)
	set := setFromSource(t, src)
	cases := []struct {
		name string
		at   time.Time
		want string
	}{
		{"overnight-start", time.Date(2026, 12, 18, 23, 0, 0, 0, ny), "open"},
		{"overnight-next-morning", time.Date(2026, 12, 19, 1, 59, 0, 0, ny), "open"},
		{"overnight-end", time.Date(2026, 12, 19, 2, 0, 0, 0, ny), "closed"},
		{"overnight-not-thursday", time.Date(2026, 12, 17, 23, 0, 0, 0, ny), "closed"},
		// 2026-03-08: 02:00 EST jumps to 03:00 EDT.
		{"spring-night-before-gap", time.Date(2026, 3, 8, 6, 59, 0, 0, time.UTC), "open"}, // 01:59 EST
		{"spring-night-after-gap", time.Date(2026, 3, 8, 7, 29, 0, 0, time.UTC), "open"},  // 03:29 EDT
		{"spring-night-end", time.Date(2026, 3, 8, 7, 30, 0, 0, time.UTC), "closed"},      // 03:30 EDT
		// 2026-11-01: 02:00 EDT falls back to 01:00 EST; 01:30 comes twice.
		{"fall-night-first-0130", time.Date(2026, 11, 1, 5, 30, 0, 0, time.UTC), "open"},  // 01:30 EDT
		{"fall-night-second-0130", time.Date(2026, 11, 1, 6, 30, 0, 0, time.UTC), "open"}, // 01:30 EST
		{"fall-night-end", time.Date(2026, 11, 1, 8, 30, 0, 0, time.UTC), "closed"},       // 03:30 EST
		{"fall-night-before", time.Date(2026, 11, 1, 4, 59, 0, 0, time.UTC), "closed"},    // 00:59 EDT
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sim, trace := simulate(t, set, "s", scripted.Script{Start: c.at}, nil)
			if got := sim.Record.Steps[0].Outcome; got != c.want {
				t.Errorf("outcome %q, want %q\n%s", got, c.want, trace)
			}
		})
	}
}

func TestScheduleChecks(t *testing.T) {
	const nyc = `timezone = "America/New_York"` + "\n"
	cases := []struct {
		name   string
		params string
		sev    flows.Severity // "" expects no problem at all
		parts  []string
	}{
		{"valid", nyc + `hours = [{ days = ["mon-fri"], from = "09:00", to = "17:00" }]`, "", nil},
		{"valid-overnight-and-24h", nyc + `hours = [{ days = ["fri"], from = "22:00", to = "02:00" }, { days = ["sat"], from = "10:00", to = "24:00" }]`, "", nil},
		{"missing-timezone", `hours = [{ from = "09:00", to = "17:00" }]`, flows.Error, []string{"needs a `timezone`"}},
		{"unknown-timezone", `timezone = "Mars/Olympus"` + "\n" + `hours = [{ from = "09:00", to = "17:00" }]`, flows.Error, []string{"unknown time zone", "Mars/Olympus"}},
		{"local-timezone", `timezone = "Local"` + "\n" + `hours = [{ from = "09:00", to = "17:00" }]`, flows.Error, []string{"must name a zone"}},
		{"bad-hour", nyc + `hours = [{ days = ["mon"], from = "25:00", to = "26:00" }]`, flows.Error, []string{`bad time "25:00"`}},
		{"bad-minute", nyc + `hours = [{ days = ["mon"], from = "09:60", to = "17:00" }]`, flows.Error, []string{`bad time "09:60"`}},
		{"from-2400", nyc + `hours = [{ days = ["mon"], from = "24:00", to = "02:00" }]`, flows.Error, []string{`"24:00" can only end a window`}},
		{"empty-window", nyc + `hours = [{ days = ["mon"], from = "09:00", to = "09:00" }]`, flows.Error, []string{"empty window"}},
		{"from-without-to", nyc + `hours = [{ days = ["mon"], from = "09:00" }]`, flows.Error, []string{"`from` without `to`"}},
		{"bad-day", nyc + `hours = [{ days = ["funday"], from = "09:00", to = "17:00" }]`, flows.Error, []string{`unknown day "funday"`}},
		{"bad-day-range", nyc + `hours = [{ days = ["mon-funday"], from = "09:00", to = "17:00" }]`, flows.Error, []string{`bad day range "mon-funday"`}},
		{"no-days", nyc + `hours = [{ days = [], from = "09:00", to = "17:00" }]`, flows.Error, []string{"names no day"}},
		{"rule-without-name", nyc + `hours = [{ from = "09:00", to = "17:00" }]` + "\n" + `rules = [{ from = "12:00", to = "13:00" }]`, flows.Error, []string{"a rule needs a `name`"}},
		{"bad-holiday-date", nyc + `hours = [{ from = "09:00", to = "17:00" }]` + "\n" + `holidays = [{ dates = ["2026-02-30"] }]`, flows.Error, []string{`bad date "2026-02-30"`}},
		{"reversed-holiday-range", nyc + `hours = [{ from = "09:00", to = "17:00" }]` + "\n" + `holidays = [{ dates = ["2026-12-26..2026-12-24"] }]`, flows.Error, []string{"ends before it starts"}},
		{"mixed-holiday-range", nyc + `hours = [{ from = "09:00", to = "17:00" }]` + "\n" + `holidays = [{ dates = ["2026-12-24..12-26"] }]`, flows.Error, []string{"mixes a yearly date"}},
		{"holiday-without-dates", nyc + `hours = [{ from = "09:00", to = "17:00" }]` + "\n" + `holidays = [{ name = "xmas" }]`, flows.Error, []string{`holiday "xmas" lists no`}},
		{"bad-override-state", nyc + `hours = [{ from = "09:00", to = "17:00" }]` + "\n" + `override = { state = "shut" }`, flows.Error, []string{"override state"}},
		{"bad-override-until", nyc + `hours = [{ from = "09:00", to = "17:00" }]` + "\n" + `override = { state = "closed", until = "tomorrow" }`, flows.Error, []string{`bad date-time "tomorrow"`}},
		{"override-passed", nyc + `hours = [{ from = "09:00", to = "17:00" }]` + "\n" + `override = { state = "closed", until = "2020-01-01 18:00" }`, flows.Warning, []string{"no longer applies"}},
		{"unknown-param", nyc + `hours = [{ from = "09:00", to = "17:00" }]` + "\n" + `holidayz = []`, flows.Error, []string{"unknown schedule parameter", "holidays"}},
		{"unknown-window-key", nyc + `hours = [{ form = "09:00", to = "17:00" }]`, flows.Error, []string{`unknown key "form"`}},
		{"overlapping-hours", nyc + `hours = [{ days = ["mon-fri"], from = "09:00", to = "17:00" }, { days = ["fri"], from = "16:00", to = "20:00" }]`, flows.Warning, []string{"overlap", "Friday"}},
		{"overlapping-overnight-hours", nyc + `hours = [{ days = ["sun"], from = "22:00", to = "10:00" }, { days = ["mon"], from = "09:00", to = "17:00" }]`, flows.Warning, []string{"overlap", "Monday"}},
		{"overlapping-rules", nyc + `hours = [{ from = "09:00", to = "17:00" }]` + "\n" + `rules = [{ name = "lunch", from = "12:00", to = "13:00" }, { name = "meeting", days = ["tue"], from = "12:30", to = "14:00" }]`, flows.Warning, []string{`rule "meeting" overlaps rule "lunch" on Tuesday`}},
		{"no-open-hours", nyc + `holidays = [{ dates = ["12-25"] }]`, flows.Warning, []string{"no open hours"}},
		{"rules-cover-hours", nyc + `hours = [{ days = ["mon"], from = "09:00", to = "17:00" }]` + "\n" + `rules = [{ name = "training", days = ["mon"] }]`, flows.Warning, []string{"rules cover every open hour"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			probs := lintSource(t, scheduleFlow(c.params), nil)
			if c.sev == "" {
				if len(probs) > 0 {
					t.Fatalf("want no problem, got %v", probs)
				}
				return
			}
			if !hasProblem(probs, c.sev, c.parts...) {
				t.Fatalf("want a %s with %q, got %v", c.sev, c.parts, probs)
			}
		})
	}
}

// Problems point at the key that is wrong.
func TestScheduleProblemPositions(t *testing.T) {
	src := scheduleFlow(`timezone = "America/New_York"
hours = [
  { days = ["mon-fri"], from = "09:00", to = "17:00" },
  { days = ["sat"], from = "10:00", to = "25:00" },
]`)
	probs := lintSource(t, src, nil)
	for _, p := range probs {
		if p.Severity == flows.Error && p.Line == 9 && p.Col == 37 {
			return
		}
	}
	t.Fatalf("want an error at 9:37 (hours[1].to), got %v", probs)
}
