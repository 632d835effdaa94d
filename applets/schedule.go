package applets

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	// Zones must resolve the same on every box, minimal containers included.
	_ "time/tzdata"
)

// Schedule routes by day of the week and time of day in a named time zone.
// Times are wall-clock times in that zone, so "09:00" is nine in the
// morning on both sides of a daylight-saving change. The first that
// applies wins:
//
//  1. override: a manual state, until a moment (or until removed);
//  2. holidays: whole local days, outcome the holiday's name;
//  3. rules: named windows (lunch), outcome the rule's name;
//  4. hours: open;
//  5. otherwise closed.
//
// A window whose `to` is earlier than its `from` runs overnight: from
// `from` on a listed day to `to` the next morning. Omitted `days` mean
// every day; omitted `from`/`to` the whole day.
//
//	applet = "schedule"
//	timezone = "America/New_York"
//	hours = [
//	  { days = ["mon-fri"], from = "09:00", to = "17:00" },
//	  { days = ["sat"], from = "10:00", to = "14:00" },
//	]
//	rules = [{ name = "lunch", days = ["mon-fri"], from = "12:00", to = "13:00" }]
//	holidays = [
//	  { name = "christmas", dates = ["12-25"] },                  # every year
//	  { dates = ["2026-11-26", "2026-12-31..2027-01-01"] },       # outcome "holiday"
//	]
//	override = { state = "closed", until = "2026-12-31T18:00:00-05:00" }
//	on = { open = "menu", closed = "after-hours", lunch = "lunch-msg", christmas = "closed-msg", holiday = "closed-msg" }
var ScheduleDef = Definition{
	Name:     "schedule",
	Group:    "route",
	Summary:  "Route by day of week and time of day (hours, rules, holidays, override).",
	Outcomes: []string{"open", "closed", "<rule>", "<holiday>"},
	Params:   ScheduleParams{},
	New:      newSchedule,
}

// ScheduleParams are schedule's parameters.
type ScheduleParams struct {
	Timezone string            `toml:"timezone" doc:"time zone of the hours, e.g. America/New_York"`
	Hours    []ScheduleHours   `toml:"hours" doc:"opening hours"`
	Rules    []ScheduleRule    `toml:"rules" doc:"named time windows"`
	Holidays []ScheduleHoliday `toml:"holidays" doc:"days closed"`
	Override *ScheduleOverride `toml:"override" doc:"forces open or closed"`
}

// ScheduleHours is a weekly window: on days, from a time to a time.
type ScheduleHours struct {
	Days []string `toml:"days"`
	From string   `toml:"from"`
	To   string   `toml:"to"`
}

// ScheduleRule is a named weekly window; its name is the outcome.
type ScheduleRule struct {
	Name string `toml:"name"`
	ScheduleHours
}

// ScheduleHoliday lists whole days: "2026-12-25", "2026-12-24..2026-12-26",
// or every year "12-25", "12-24..12-26".
type ScheduleHoliday struct {
	Name  string   `toml:"name"`
	Dates []string `toml:"dates"`
}

// ScheduleOverride forces a state until a moment (or for good).
type ScheduleOverride struct {
	State string   `toml:"state"`
	Until DateTime `toml:"until"`
}

type schedule struct {
	p        ScheduleParams
	loc      *time.Location
	hours    []window
	rules    []namedWindow
	holidays []holiday
	override *override
	outcomes []string
}

type namedWindow struct {
	name string
	window
}

type holiday struct {
	name  string
	dates []dateSpan
}

type override struct {
	state string
	until time.Time // zero: until the override is removed
}

// maxScheduleEntries bounds hours, rules and holidays each.
const maxScheduleEntries = 64

func newSchedule(p Params) (Applet, error) {
	s := &schedule{loc: time.UTC}
	var errs problems
	errs.add(p.Decode(&s.p))
	if s.p.Timezone == "" && !p.Has("timezone") {
		errs.add(p.Errorf("", "schedule needs a `timezone`, such as \"America/New_York\""))
	} else if loc, err := loadZone(s.p.Timezone); err != nil {
		errs.add(p.Errorf("timezone", "%v", err))
	} else {
		s.loc = loc
	}
	// A real schedule has a handful of windows; the overlap checks below
	// compare every pair, so a hostile file must not list thousands.
	for key, n := range map[string]int{"hours": len(s.p.Hours), "rules": len(s.p.Rules), "holidays": len(s.p.Holidays)} {
		if n > maxScheduleEntries {
			errs.add(p.Errorf(key, "%d %s: at most %d", n, key, maxScheduleEntries))
			return s, errs.err()
		}
	}
	for i, h := range s.p.Hours {
		w, err := parseWindow(p, fmt.Sprintf("hours[%d]", i), h)
		errs.add(err)
		s.hours = append(s.hours, w)
	}
	for i, r := range s.p.Rules {
		key := fmt.Sprintf("rules[%d]", i)
		errs.add(checkOutcomeName(p, key, r.Name, "rule"))
		w, err := parseWindow(p, key, r.ScheduleHours)
		errs.add(err)
		s.rules = append(s.rules, namedWindow{name: r.Name, window: w})
	}
	for i, h := range s.p.Holidays {
		key := fmt.Sprintf("holidays[%d]", i)
		name := h.Name
		if name == "" {
			name = "holiday"
		}
		errs.add(checkOutcomeName(p, key, name, "holiday"))
		hol := holiday{name: name}
		if len(h.Dates) == 0 {
			errs.add(p.Errorf(key, "holiday %q lists no `dates`", name))
		}
		for j, d := range h.Dates {
			ds, err := parseDateSpan(d)
			if err != nil {
				errs.add(p.Errorf(fmt.Sprintf("%s.dates[%d]", key, j), "%v", err))
				continue
			}
			hol.dates = append(hol.dates, ds)
		}
		s.holidays = append(s.holidays, hol)
	}
	if o := s.p.Override; o != nil {
		switch o.State {
		case "open", "closed":
		default:
			errs.add(p.Errorf("override.state", "override state must be \"open\" or \"closed\""))
		}
		s.override = &override{state: o.State}
		if o.Until.IsSet() {
			until, err := o.Until.In(s.loc)
			if err != nil {
				errs.add(p.Errorf("override.until", "%v", err))
			}
			s.override.until = until
			if err == nil && until.Before(time.Now()) {
				p.Warnf("override.until", "the override ended at %s: it no longer applies (remove it)", until.Format("2006-01-02 15:04 MST"))
			}
		}
	}
	s.outcomes = []string{"open", "closed"}
	for _, r := range s.rules {
		s.outcomes = appendNew(s.outcomes, r.name)
	}
	for _, h := range s.holidays {
		s.outcomes = appendNew(s.outcomes, h.name)
	}
	if len(errs) == 0 {
		s.lint(p)
	}
	return s, errs.err()
}

// lint warns about windows that overlap (the later one is partly dead)
// and about a week in which the schedule is never open.
func (s *schedule) lint(p Params) {
	for j := range s.hours {
		for i := range j {
			if d, ok := overlap(s.hours[i], s.hours[j]); ok {
				p.Warnf(fmt.Sprintf("hours[%d]", j), "hours %s overlap hours %s on %s", s.hours[j].text, s.hours[i].text, d)
				break
			}
		}
	}
	for j := range s.rules {
		for i := range j {
			if d, ok := overlap(s.rules[i].window, s.rules[j].window); ok {
				p.Warnf(fmt.Sprintf("rules[%d]", j), "rule %q overlaps rule %q on %s: the first listed wins there", s.rules[j].name, s.rules[i].name, d)
				break
			}
		}
	}
	open := make([]bool, weekMinutes)
	for _, h := range s.hours {
		h.mark(open, true)
	}
	for _, r := range s.rules {
		r.mark(open, false)
	}
	for _, o := range open {
		if o {
			return
		}
	}
	switch {
	case len(s.hours) == 0:
		p.Warnf("", "schedule has no open hours: outcome \"open\" never happens (add hours = [{ days = [\"mon-fri\"], from = \"09:00\", to = \"17:00\" }])")
	default:
		p.Warnf("rules", "rules cover every open hour of the week: outcome \"open\" never happens")
	}
}

func (s *schedule) Facts() Facts { return Facts{Outcomes: s.outcomes} }

func (s *schedule) Run(ctx context.Context, env *Env) (Result, error) {
	now := env.Now().In(s.loc)
	env.Note("local_time", now.Format("Mon 2006-01-02 15:04 MST"))
	outcome, why := s.state(now)
	env.Note("matched", why)
	return Result{Outcome: outcome}, nil
}

// state is the outcome at now (in the schedule's zone) and why.
func (s *schedule) state(now time.Time) (string, string) {
	if o := s.override; o != nil && (o.until.IsZero() || now.Before(o.until)) {
		if o.until.IsZero() {
			return o.state, "override"
		}
		return o.state, "override until " + o.until.In(s.loc).Format("2006-01-02 15:04 MST")
	}
	for _, h := range s.holidays {
		for _, d := range h.dates {
			if d.contains(now) {
				return h.name, "holiday " + d.text
			}
		}
	}
	for _, r := range s.rules {
		if r.contains(now) {
			return r.name, "rule " + r.name + " " + r.text
		}
	}
	for _, h := range s.hours {
		if h.contains(now) {
			return "open", "hours " + h.text
		}
	}
	return "closed", "outside hours"
}

// loadZone loads an IANA zone, refusing the server's own ("Local", ""),
// which would make a flow mean different things on different boxes.
func loadZone(name string) (*time.Location, error) {
	if name == "" || strings.EqualFold(name, "local") {
		return nil, fmt.Errorf("timezone must name a zone, such as \"America/New_York\" or \"UTC\"")
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("unknown time zone %q (use an IANA name such as \"America/New_York\" or \"Europe/London\")", name)
	}
	return loc, nil
}

// checkOutcomeName checks a configured name that becomes an outcome.
func checkOutcomeName(p Params, key, name, what string, reserved ...string) error {
	if name == "" {
		return p.Errorf(key, "a %s needs a `name`: it is the step's outcome", what)
	}
	if !ValidName(name) {
		return p.Errorf(key+".name", "%s name %q: use letters, digits, '_', '.' and '-'", what, name)
	}
	if slices.Contains(reserved, name) {
		return p.Errorf(key+".name", "%s name %q is taken by the applet's own outcome", what, name)
	}
	return nil
}

// appendNew appends s unless list holds it already.
func appendNew(list []string, s string) []string {
	if slices.Contains(list, s) {
		return list
	}
	return append(list, s)
}

// weekDays is a set of days indexed by time.Weekday.
type weekDays [7]bool

var dayNames = map[string]time.Weekday{
	"sun": time.Sunday, "sunday": time.Sunday,
	"mon": time.Monday, "monday": time.Monday,
	"tue": time.Tuesday, "tues": time.Tuesday, "tuesday": time.Tuesday,
	"wed": time.Wednesday, "wednesday": time.Wednesday,
	"thu": time.Thursday, "thur": time.Thursday, "thurs": time.Thursday, "thursday": time.Thursday,
	"fri": time.Friday, "friday": time.Friday,
	"sat": time.Saturday, "saturday": time.Saturday,
}

// parseDays reads day names, ranges ("mon-fri", "fri-mon" wraps),
// "weekdays", "weekends" and "daily". No list at all means every day.
func parseDays(list []string) (weekDays, error) {
	var d weekDays
	if list == nil {
		return weekDays{true, true, true, true, true, true, true}, nil
	}
	if len(list) == 0 {
		return d, errString("`days` names no day")
	}
	for _, item := range list {
		s := strings.ToLower(strings.TrimSpace(item))
		switch s {
		case "daily", "everyday", "all":
			d = weekDays{true, true, true, true, true, true, true}
		case "weekdays":
			for w := time.Monday; w <= time.Friday; w++ {
				d[w] = true
			}
		case "weekends", "weekend":
			d[time.Saturday], d[time.Sunday] = true, true
		default:
			if a, b, ok := strings.Cut(s, "-"); ok {
				from, ok1 := dayNames[strings.TrimSpace(a)]
				to, ok2 := dayNames[strings.TrimSpace(b)]
				if !ok1 || !ok2 {
					return d, fmt.Errorf("bad day range %q (write it like \"mon-fri\")", item)
				}
				for w := from; ; w = (w + 1) % 7 {
					d[w] = true
					if w == to {
						break
					}
				}
				continue
			}
			w, ok := dayNames[s]
			if !ok {
				return d, fmt.Errorf("unknown day %q (mon, tue, wed, thu, fri, sat, sun, a range such as \"mon-fri\", \"weekdays\", \"weekends\" or \"daily\")", item)
			}
			d[w] = true
		}
	}
	return d, nil
}

// parseClock reads a 24-hour "HH:MM" as minutes after midnight. "24:00"
// (the end of the day) may only end a window.
func parseClock(s string, end bool) (int, error) {
	h, m, ok := strings.Cut(strings.TrimSpace(s), ":")
	bad := fmt.Errorf("bad time %q: write a 24-hour time such as \"09:00\" or \"17:30\"", s)
	if !ok || len(h) < 1 || len(h) > 2 || len(m) != 2 || !allDigits(h) || !allDigits(m) {
		return 0, bad
	}
	hh, _ := strconv.Atoi(h)
	mm, _ := strconv.Atoi(m)
	if mm > 59 || hh > 24 || hh == 24 && mm != 0 {
		return 0, bad
	}
	if hh == 24 && !end {
		return 0, fmt.Errorf("bad time %q: \"24:00\" can only end a window", s)
	}
	return hh*60 + mm, nil
}

// window is a daily stretch of wall-clock time on some days. When to is
// not after from it runs overnight into the next day.
type window struct {
	days     weekDays
	from, to int // minutes after midnight
	text     string
}

const weekMinutes = 7 * 24 * 60

func parseWindow(p Params, key string, h ScheduleHours) (window, error) {
	var errs problems
	w := window{from: 0, to: 24 * 60}
	days, err := parseDays(h.Days)
	if err != nil {
		errs.add(p.Errorf(key+".days", "%v", err))
	}
	w.days = days
	switch {
	case h.From == "" && h.To == "":
	case h.From == "":
		errs.add(p.Errorf(key+".to", "`to` without `from`: write both, or neither for the whole day"))
	case h.To == "":
		errs.add(p.Errorf(key+".from", "`from` without `to`: write both, or neither for the whole day"))
	default:
		from, ferr := parseClock(h.From, false)
		to, terr := parseClock(h.To, true)
		if ferr != nil {
			errs.add(p.Errorf(key+".from", "%v", ferr))
		}
		if terr != nil {
			errs.add(p.Errorf(key+".to", "%v", terr))
		}
		if ferr == nil && terr == nil {
			if from == to {
				errs.add(p.Errorf(key+".to", "`from` and `to` are both %s: an empty window (for the whole day leave both out)", h.From))
			}
			w.from, w.to = from, to
		}
	}
	dayText := "daily"
	if h.Days != nil {
		dayText = strings.Join(h.Days, ",")
	}
	timeText := "all day"
	if h.From != "" && h.To != "" {
		timeText = h.From + "-" + h.To
	}
	w.text = dayText + " " + timeText
	return w, errs.err()
}

// contains reports whether t (in the window's zone) falls in the window.
func (w window) contains(t time.Time) bool {
	m := t.Hour()*60 + t.Minute()
	wd := t.Weekday()
	if w.from < w.to {
		return w.days[wd] && m >= w.from && m < w.to
	}
	return w.days[wd] && m >= w.from || w.days[(wd+6)%7] && m < w.to
}

// mark sets the window's minutes of the week (Sunday 00:00 first) to v.
func (w window) mark(week []bool, v bool) {
	for d := range 7 {
		if !w.days[d] {
			continue
		}
		base := d * 24 * 60
		if w.from < w.to {
			for i := w.from; i < w.to; i++ {
				week[base+i] = v
			}
			continue
		}
		for i := w.from; i < 24*60; i++ {
			week[base+i] = v
		}
		next := (d + 1) % 7 * 24 * 60
		for i := 0; i < w.to; i++ {
			week[next+i] = v
		}
	}
}

// overlap tells the first day (Sunday first) on which a and b share a minute.
func overlap(a, b window) (string, bool) {
	wa, wb := make([]bool, weekMinutes), make([]bool, weekMinutes)
	a.mark(wa, true)
	b.mark(wb, true)
	for i := range wa {
		if wa[i] && wb[i] {
			return time.Weekday(i / (24 * 60)).String(), true
		}
	}
	return "", false
}

// dateSpan is a stretch of whole days: one-off (yyyymmdd) or yearly
// (mmdd, may wrap over the new year).
type dateSpan struct {
	yearly   bool
	from, to int
	text     string
}

func parseDateSpan(s string) (dateSpan, error) {
	s = strings.TrimSpace(s)
	a, b, isRange := strings.Cut(s, "..")
	if !isRange {
		b = a
	}
	from, fy, err := parseDay(strings.TrimSpace(a))
	if err != nil {
		return dateSpan{}, err
	}
	to, ty, err := parseDay(strings.TrimSpace(b))
	if err != nil {
		return dateSpan{}, err
	}
	if fy != ty {
		return dateSpan{}, fmt.Errorf("date range %q mixes a yearly date (MM-DD) with a dated one (YYYY-MM-DD)", s)
	}
	if !fy && to < from {
		return dateSpan{}, fmt.Errorf("date range %q ends before it starts", s)
	}
	return dateSpan{yearly: fy, from: from, to: to, text: s}, nil
}

// parseDay reads "YYYY-MM-DD" (as yyyymmdd) or yearly "MM-DD" (as mmdd).
func parseDay(s string) (n int, yearly bool, err error) {
	bad := fmt.Errorf("bad date %q: write \"2026-12-25\", \"12-25\" (every year) or a range \"2026-12-24..2026-12-26\"", s)
	switch len(s) {
	case len("2006-01-02"):
		t, err := time.Parse("2006-01-02", s)
		if err != nil {
			return 0, false, bad
		}
		return t.Year()*10000 + int(t.Month())*100 + t.Day(), false, nil
	case len("01-02"):
		// A leap year, so that 02-29 is a valid yearly date.
		t, err := time.Parse("2006-01-02", "2000-"+s)
		if err != nil {
			return 0, true, bad
		}
		return int(t.Month())*100 + t.Day(), true, nil
	}
	return 0, false, bad
}

func (d dateSpan) contains(t time.Time) bool {
	y, m, day := t.Date()
	md := int(m)*100 + day
	if !d.yearly {
		ymd := y*10000 + md
		return ymd >= d.from && ymd <= d.to
	}
	if d.from <= d.to {
		return md >= d.from && md <= d.to
	}
	return md >= d.from || md <= d.to
}

// DateTime is a moment: "2026-12-31T18:00:00-05:00" (with its offset), a
// local "2026-12-31T18:00", "2026-12-31 18:00" or "2026-12-31" read in the
// step's time zone, or a TOML date-time.
type DateTime struct {
	raw   string
	t     time.Time
	local bool
	set   bool
}

func (d *DateTime) UnmarshalTOMLValue(v any) error {
	switch x := v.(type) {
	case string:
		if _, err := parseDateTime(x, time.UTC); err != nil {
			return err
		}
		d.raw = strings.TrimSpace(x)
	case time.Time:
		d.t = x
		// TOML local date-times carry a marker zone: read them in the step's.
		d.local = strings.HasSuffix(x.Location().String(), "-local")
	default:
		return errString(`want a date-time such as "2026-12-31T18:00:00-05:00"`)
	}
	d.set = true
	return nil
}

// IsSet reports whether a date-time was written.
func (d DateTime) IsSet() bool { return d.set }

// In returns the moment, reading a local date-time in loc.
func (d DateTime) In(loc *time.Location) (time.Time, error) {
	switch {
	case d.raw != "":
		return parseDateTime(d.raw, loc)
	case d.local:
		return time.Date(d.t.Year(), d.t.Month(), d.t.Day(), d.t.Hour(), d.t.Minute(), d.t.Second(), d.t.Nanosecond(), loc), nil
	}
	return d.t, nil
}

func parseDateTime(s string, loc *time.Location) (time.Time, error) {
	s = strings.TrimSpace(s)
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	for _, layout := range []string{"2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02 15:04:05", "2006-01-02 15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("bad date-time %q: write it like \"2026-12-31T18:00:00-05:00\", or \"2026-12-31 18:00\" in the step's timezone", s)
}
