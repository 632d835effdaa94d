package flows

import (
	"fmt"
	"strings"
	"time"
)

// atLayouts are the ways people write a moment: a date and a time, with
// "T" or a space, with or without seconds and offset.
var atLayouts = []string{
	"2006-01-02T15:04:05Z07:00",
	"2006-01-02T15:04Z07:00",
	"2006-01-02T15:04:05-0700",
	"2006-01-02T15:04-0700",
	"2006-01-02T15:04:05",
	"2006-01-02T15:04",
}

// ParseAt reads when a simulated call happens. A time without an offset is a wall-clock time in
// loc (the flow's schedule's zone), as the admin who wrote it meant.
func ParseAt(s string, loc *time.Location) (time.Time, error) {
	v := strings.TrimSpace(s)
	if len(v) > 10 && v[10] == ' ' {
		v = v[:10] + "T" + strings.TrimSpace(v[11:])
	}
	v = strings.Replace(v, " ", "", 1) // "10:00 +01:00"
	for _, layout := range atLayouts {
		if t, err := time.ParseInLocation(layout, v, loc); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q: write a date and a time, such as \"2026-12-25 10:00\" or \"2026-12-25T10:00:00-05:00\"", s)
}
