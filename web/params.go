package web

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

const (
	pageSize    = 50
	maxAPILimit = 500
)

var errBadParam = errors.New("bad parameter")

// Times outside [minTime, maxTime) cannot be stored (nanoseconds since
// 1970 in 64 bits end in 2262) nor be a call's: they are refused, not
// quietly matched against nothing.
var (
	minTime = time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)
	maxTime = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)
)

// dateRange reads `from` and `to`: a day (YYYY-MM-DD in loc; `to`
// includes its whole day) or an RFC 3339 time. It returns [from, to).
func dateRange(q url.Values, loc *time.Location) (from, to time.Time, err error) {
	if from, err = parseTime(q.Get("from"), false, loc); err != nil {
		return from, to, fmt.Errorf("%w: from: %v", errBadParam, err)
	}
	if to, err = parseTime(q.Get("to"), true, loc); err != nil {
		return from, to, fmt.Errorf("%w: to: %v", errBadParam, err)
	}
	if !from.IsZero() && !to.IsZero() && !to.After(from) {
		return from, to, fmt.Errorf("%w: to must be after from", errBadParam)
	}
	return from, to, nil
}

func parseTime(v string, end bool, loc *time.Location) (time.Time, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.ParseInLocation(time.DateOnly, v, loc)
	if err == nil && end {
		t = t.AddDate(0, 0, 1)
	}
	if err != nil {
		if t, err = time.Parse(time.RFC3339, v); err != nil {
			return time.Time{}, fmt.Errorf("%q is neither YYYY-MM-DD nor an RFC 3339 time", v)
		}
	}
	if t.Before(minTime) || t.After(maxTime) {
		return time.Time{}, fmt.Errorf("%q is outside 1970-01-01 to 2200-01-01", v)
	}
	return t, nil
}

// numberParam reads a number typed into a search (`number`, `caller`):
// digits with the punctuation people type, or a name; at most 64
// characters.
func numberParam(q url.Values, name string) (string, error) {
	v := strings.TrimSpace(q.Get(name))
	if v == "" {
		return "", nil
	}
	if len(v) > 64 {
		return "", fmt.Errorf("%w: %s: at most 64 characters", errBadParam, name)
	}
	if strings.Trim(v, "+-.()/ \t") == "" {
		return "", fmt.Errorf("%w: %s: %q has no digits", errBadParam, name, v)
	}
	return v, nil
}

// oneOf checks a parameter against its allowed values ("" passes).
func oneOf(q url.Values, name string, allowed []string) (string, error) {
	v := strings.TrimSpace(q.Get(name))
	if v == "" || slices.Contains(allowed, v) {
		return v, nil
	}
	return "", fmt.Errorf("%w: %s must be one of %s", errBadParam, name, strings.Join(allowed, ", "))
}

// pageOf reads `page` (1-based) for HTML lists.
func pageOf(q url.Values) int {
	p, err := strconv.Atoi(q.Get("page"))
	if err != nil || p < 1 || p > 1_000_000 {
		return 1
	}
	return p
}

// limitOffset reads `limit` and `offset` for API lists.
func limitOffset(q url.Values) (limit, offset int, err error) {
	limit, offset = pageSize, 0
	if v := q.Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 || limit > maxAPILimit {
			return 0, 0, fmt.Errorf("%w: limit must be 1 to %d", errBadParam, maxAPILimit)
		}
	}
	if v := q.Get("offset"); v != "" {
		if offset, err = strconv.Atoi(v); err != nil || offset < 0 {
			return 0, 0, fmt.Errorf("%w: offset must be 0 or more", errBadParam)
		}
	}
	return limit, offset, nil
}

// pager is the "1–50 of 230" line with its links.
type pager struct {
	First, Last, Total int
	Prev, Next         string
}

func makePager(r *http.Request, page, total int) pager {
	p := pager{Total: total}
	if total == 0 {
		return p
	}
	p.First = (page-1)*pageSize + 1
	p.Last = min(page*pageSize, total)
	link := func(n int) string {
		q := r.URL.Query()
		if n <= 1 {
			q.Del("page")
		} else {
			q.Set("page", strconv.Itoa(n))
		}
		if len(q) == 0 {
			return r.URL.Path
		}
		return r.URL.Path + "?" + q.Encode()
	}
	if page > 1 {
		p.Prev = link(page - 1)
	}
	if p.Last < total {
		p.Next = link(page + 1)
	}
	return p
}

// splitList splits a bulk entry on commas, semicolons and line breaks
// (spaces may be inside a number: "+1 555 000 1234").
func splitList(v string) []string {
	var out []string
	for _, p := range strings.FieldsFunc(v, func(r rune) bool {
		return r == ',' || r == ';' || r == '\n' || r == '\r' || r == '\t'
	}) {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// backTo returns a local URL from the form's `back` field, or def.
func backTo(r *http.Request, def string) string {
	b := r.PostFormValue("back")
	if b == "" || !strings.HasPrefix(b, "/") || strings.HasPrefix(b, "//") || strings.ContainsAny(b, "\\\r\n") {
		return def
	}
	return b
}
