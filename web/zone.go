package web

import (
	"net/http"
	"net/url"
	"sync"
	"time"

	// Time zones chosen by users must load on hosts without tzdata.
	_ "time/tzdata"
)

// tzCookie carries the browser's time zone (set by app.js), the default
// for users who chose none.
const tzCookie = "callflow_tz"

// zoneCache keeps loaded time zones: LoadLocation reads and parses a file
// each time.
type zoneCache struct {
	mu sync.Mutex
	m  map[string]*time.Location
}

func newZoneCache() *zoneCache { return &zoneCache{m: map[string]*time.Location{}} }

// load returns the named zone, or nil for a name that is none.
func (z *zoneCache) load(name string) *time.Location {
	if name == "" || len(name) > 64 {
		return nil
	}
	z.mu.Lock()
	defer z.mu.Unlock()
	if loc, ok := z.m[name]; ok {
		return loc
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		loc = nil
	}
	if len(z.m) < 1000 { // names come from cookies: bound the table
		z.m[name] = loc
	}
	return loc
}

// Where a page's times are shown.
const (
	zoneUser    = "user"    // the user's setting
	zoneBrowser = "browser" // the browser's, from its cookie
	zoneServer  = "server"  // neither known yet
)

// zone is where the viewer of a page reads times: the user's setting,
// else the browser's zone, else the server's.
func (s *Server) zone(r *http.Request) (*time.Location, string) {
	if a, _ := r.Context().Value(authKey{}).(*authInfo); a != nil && a.user.TimeZone != "" {
		if loc := s.zones.load(a.user.TimeZone); loc != nil {
			return loc, zoneUser
		}
	}
	if c, err := r.Cookie(tzCookie); err == nil {
		name := c.Value
		if u, err := url.QueryUnescape(name); err == nil {
			name = u // a cookie value may arrive percent-encoded
		}
		if loc := s.zones.load(name); loc != nil {
			return loc, zoneBrowser
		}
	}
	return s.loc, zoneServer
}
