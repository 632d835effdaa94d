package web

import (
	"fmt"
	"html/template"
	"math"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/callflow/callflow/store"
)

type statsForm struct{ Flow, From, To string }

type statsData struct {
	Form  statsForm
	Rows  []store.Stats
	Total store.Stats
	Chart template.HTML
	Flows []string
	Range string
	// Queues are the queue steps' figures for the range.
	Queues []store.QueueStats
}

// queueServiceLevel is the wait within which a queue's answer counts as
// in time, as the queues' live view counts it.
const queueServiceLevel = 20 * time.Second

// maxStatsDays bounds a stats range, so that per_day can list every day.
const maxStatsDays = 400

// statsQuery reads the stats filter, days in loc: without dates it is the
// last 30 days (today included); `from` alone runs to today, `to` alone
// starts 30 days before. Longer than maxStatsDays is refused.
func (s *Server) statsQuery(a *authInfo, q url.Values, loc *time.Location) (store.StatsFilter, statsForm, error) {
	form := statsForm{Flow: strings.TrimSpace(q.Get("flow")), From: q.Get("from"), To: q.Get("to")}
	today := s.now().In(loc)
	if form.From == "" && form.To == "" {
		form.From = today.AddDate(0, 0, -(statsDays - 1)).Format(time.DateOnly)
		form.To = today.Format(time.DateOnly)
	}
	f := store.StatsFilter{Scope: a.scope(), Flow: form.Flow, Location: loc}
	var err error
	if f.From, f.To, err = dateRange(url.Values{"from": {form.From}, "to": {form.To}}, loc); err != nil {
		return f, form, err
	}
	switch {
	case f.To.IsZero():
		f.To = time.Date(today.Year(), today.Month(), today.Day()+1, 0, 0, 0, 0, loc)
		if !f.To.After(f.From) {
			return f, form, fmt.Errorf("%w: from is after today: give to as well", errBadParam)
		}
	case f.From.IsZero():
		f.From = f.To.AddDate(0, 0, -statsDays)
	}
	if f.To.Sub(f.From) > maxStatsDays*24*time.Hour {
		return f, form, fmt.Errorf("%w: a stats range is at most %d days", errBadParam, maxStatsDays)
	}
	return f, form, nil
}

// loadStats returns one row per flow (loaded flows in scope without calls
// show as zeros unless a flow is chosen) and the totals.
func (s *Server) loadStats(r *http.Request, a *authInfo, f store.StatsFilter) ([]store.Stats, store.Stats, error) {
	rows, err := s.st.Stats(r.Context(), f)
	if err != nil {
		return nil, store.Stats{}, err
	}
	if f.Flow == "" {
		have := map[string]bool{}
		for _, st := range rows {
			have[st.Flow] = true
		}
		for _, fl := range s.scopedFlows(a) {
			if !have[fl.Name] {
				rows = append(rows, store.Stats{Flow: fl.Name, PerDay: []store.DayCount{}})
			}
		}
		sortStats(rows)
	}
	total := store.Stats{Flow: "all flows"}
	perDay := map[string]int{}
	for _, st := range rows {
		total.Calls += st.Calls
		total.Qualified += st.Qualified
		total.Abandoned += st.Abandoned
		total.Voicemails += st.Voicemails
		total.Texts += st.Texts
		for _, d := range st.PerDay {
			perDay[d.Day] += d.Calls
		}
	}
	total.PerDay = days(f.From, f.To, f.Location, perDay)
	return rows, total, nil
}

func sortStats(rows []store.Stats) {
	for i := 1; i < len(rows); i++ {
		for j := i; j > 0 && strings.ToLower(rows[j].Flow) < strings.ToLower(rows[j-1].Flow); j-- {
			rows[j], rows[j-1] = rows[j-1], rows[j]
		}
	}
}

// days lists every day of [from, to) in loc with its count (statsQuery
// bounds the range).
func days(from, to time.Time, loc *time.Location, counts map[string]int) []store.DayCount {
	var out []store.DayCount
	f := from.In(loc)
	for d := time.Date(f.Year(), f.Month(), f.Day(), 0, 0, 0, 0, loc); d.Before(to); d = d.AddDate(0, 0, 1) {
		day := d.Format(time.DateOnly)
		out = append(out, store.DayCount{Day: day, Calls: counts[day]})
	}
	return out
}

func (s *Server) statsPage(w http.ResponseWriter, r *http.Request) {
	a := auth(r)
	loc, _ := s.zone(r)
	f, form, err := s.statsQuery(a, r.URL.Query(), loc)
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, err.Error())
		return
	}
	rows, total, err := s.loadStats(r, a, f)
	if err != nil {
		s.internal(w, r, err)
		return
	}
	d := statsData{Form: form, Rows: rows, Total: total, Flows: flowNames(s.scopedFlows(a)), Chart: barChart(total.PerDay)}
	if d.Queues, err = s.st.QueueStats(r.Context(), f, queueServiceLevel); err != nil {
		s.internal(w, r, err)
		return
	}
	d.Range = f.From.In(loc).Format("2 Jan 2006") + " – " + f.To.Add(-time.Nanosecond).In(loc).Format("2 Jan 2006")
	s.render(w, r, http.StatusOK, "stats", "Stats", d)
}

func (s *Server) apiStats(w http.ResponseWriter, r *http.Request) {
	a := auth(r)
	f, _, err := s.statsQuery(a, r.URL.Query(), s.loc)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	rows, total, err := s.loadStats(r, a, f)
	if err != nil {
		s.internal(w, r, err)
		return
	}
	if rows == nil {
		rows = []store.Stats{}
	}
	queues, err := s.st.QueueStats(r.Context(), f, queueServiceLevel)
	if err != nil {
		s.internal(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"from": f.From, "to": f.To, "flows": rows, "total": total, "queues": queues})
}

// niceStep rounds a tick step up to 1, 2 or 5 times a power of ten.
func niceStep(raw float64) float64 {
	if raw <= 1 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= raw {
			return m * p
		}
	}
	return 10 * p
}

// barChart draws calls per day as inline SVG bars.
func barChart(days []store.DayCount) template.HTML {
	const (
		W, H                   = 880.0, 240.0
		padL, padR, padT, padB = 44.0, 12.0, 14.0, 30.0
	)
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 %.0f %.0f" width="%.0f" height="%.0f" role="img" aria-label="Calls per day" font-family="%s" font-size="11">`,
		W, H, W, H, esc(fontStack))
	if len(days) == 0 {
		fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" text-anchor="middle" fill="#64748b">No calls in this range.</text></svg>`, W/2, H/2)
		return template.HTML(b.String())
	}
	maxV := 0
	for _, d := range days {
		maxV = max(maxV, d.Calls)
	}
	step := niceStep(math.Max(float64(maxV), 4) / 4)
	top := math.Ceil(math.Max(float64(maxV), 4)/step) * step
	plotW, plotH := W-padL-padR, H-padT-padB
	y := func(v float64) float64 { return padT + plotH - v/top*plotH }
	for v := 0.0; v <= top+step/2; v += step {
		fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="%s" stroke-width="1"/>`, padL, W-padR, y(v), y(v), map[bool]string{true: "#94a3b8", false: "#e2e8f0"}[v == 0])
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="end" fill="#64748b">%.0f</text>`, padL-6, y(v)+4, v)
	}
	slot := plotW / float64(len(days))
	bw := math.Max(1, math.Min(slot*0.72, 36))
	every := int(math.Ceil(float64(len(days)) / 12))
	for i, d := range days {
		x := padL + slot*float64(i) + (slot-bw)/2
		label := d.Day
		if t, err := time.Parse(time.DateOnly, d.Day); err == nil {
			label = t.Format("Mon 2 Jan 2006")
		}
		if d.Calls > 0 {
			fmt.Fprintf(&b, `<rect class="bar" x="%.1f" y="%.1f" width="%.1f" height="%.1f" rx="2" fill="#3b82f6"><title>%s: %s</title></rect>`,
				x, y(float64(d.Calls)), bw, y(0)-y(float64(d.Calls)), esc(label), esc(plural(d.Calls, "call")))
		} else {
			fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="transparent"><title>%s: no calls</title></rect>`, x, padT, bw, plotH, esc(label))
		}
		if i%every == 0 {
			short := d.Day
			if t, err := time.Parse(time.DateOnly, d.Day); err == nil {
				short = t.Format("2 Jan")
			}
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle" fill="#64748b">%s</text>`, x+bw/2, H-padB+16, esc(short))
		}
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}
