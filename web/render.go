package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/callflow/callflow/store"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// staticFiles serves the embedded CSS and JS; links carry a content hash
// so browsers may cache them.
type staticFiles struct {
	fs     http.Handler
	hashes map[string]string
}

func newStatic() (*staticFiles, error) {
	sub, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, err
	}
	sf := &staticFiles{fs: http.StripPrefix("/static/", http.FileServerFS(sub)), hashes: map[string]string{}}
	err = fs.WalkDir(sub, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(sub, p)
		if err != nil {
			return err
		}
		h := sha256.Sum256(b)
		sf.hashes[p] = hex.EncodeToString(h[:6])
		return nil
	})
	return sf, err
}

func (sf *staticFiles) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasSuffix(r.URL.Path, "/") {
		http.NotFound(w, r) // no directory listings
		return
	}
	w.Header().Set("Cache-Control", "public, max-age=86400")
	sf.fs.ServeHTTP(w, r)
}

func (sf *staticFiles) url(name string) string {
	return "/static/" + name + "?v=" + sf.hashes[name]
}

// pages are the parsed templates, one set per page sharing the layout.
type pages struct {
	byName map[string]*template.Template
}

func (s *Server) funcs() template.FuncMap {
	return template.FuncMap{
		"static":   s.static.url,
		"when":     s.when,
		"datetime": func(loc *time.Location, t time.Time) string { return t.In(loc).Format("2006-01-02 15:04:05 MST") },
		"isotime":  func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
		"dur":      fmtDur,
		"clock":    fmtClock,
		"pathesc":  url.PathEscape,
		"queryesc": url.QueryEscape,
		"join":     strings.Join,
		"base":     filepath.Base,
		// short is a version hash cut to what people compare by eye
		"short": func(v string) string {
			v = strings.TrimPrefix(v, "sha256:")
			return v[:min(len(v), 12)]
		},
		"plural": plural,
		// seconds shows a wait given in seconds: "1m05s"
		"seconds": func(sec float64) string { return fmtDur(time.Duration(sec * float64(time.Second)).Round(time.Second)) },
		// words shows a state name as people write it: "logged out"
		"words": func(v any) string { return strings.ReplaceAll(fmt.Sprint(v), "_", " ") },
		"add":   func(a, b int) int { return a + b },
		"tokenview": func(toks []store.Token, zone *time.Location, csrf, action string) tokensView {
			return tokensView{Tokens: toks, Zone: zone, CSRF: csrf, Action: action}
		},
		"pct": func(n, of int) string {
			if of == 0 {
				return "–"
			}
			return strconv.Itoa((n*100+of/2)/of) + "%"
		},
		"title": func(s string) string {
			if s == "" {
				return s
			}
			return strings.ToUpper(s[:1]) + strings.ReplaceAll(s[1:], "_", " ")
		},
	}
}

func (s *Server) parsePages() (*pages, error) {
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	p := &pages{byName: map[string]*template.Template{}}
	for _, n := range names {
		base := strings.TrimSuffix(path.Base(n), ".html")
		if base == "layout" {
			continue
		}
		t, err := template.New("layout.html").Funcs(s.funcs()).ParseFS(templateFS, "templates/layout.html", n)
		if err != nil {
			return nil, fmt.Errorf("web: template %s: %w", n, err)
		}
		p.byName[base] = t
	}
	return p, nil
}

// pageData is what every page template gets; Data is the page's own.
type pageData struct {
	Title string
	Nav   string
	User  *userView
	CSRF  string
	Now   time.Time
	Data  any
	// Zone is where the viewer reads times ({{when $.Zone .T}});
	// ZoneSource says how it was chosen (zoneUser, ...).
	Zone       *time.Location
	ZoneSource string
	// Inbox is the user's voicemail summary, for the unheard count in
	// the navigation; PollMS how often pages refresh it.
	Inbox  store.VoicemailSummary
	PollMS int64
}

// tokensView fills the "tokens" template (a list with revoke buttons).
type tokensView struct {
	Tokens []store.Token
	Zone   *time.Location
	CSRF   string
	Action string
}

type userView struct {
	Name       string
	Role       string
	Workspaces []string
	Admin      bool // admin or workspace admin
	SuperAdmin bool // admin of every workspace
}

func (s *Server) render(w http.ResponseWriter, r *http.Request, code int, page, title string, data any) {
	t := s.pages.byName[page]
	if t == nil {
		s.log.Error().Str("page", page).Msg("web: no such template")
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	pd := pageData{Title: title, Nav: page, Now: s.now(), Data: data, PollMS: s.opts.PollInterval.Milliseconds()}
	pd.Zone, pd.ZoneSource = s.zone(r)
	if a, _ := r.Context().Value(authKey{}).(*authInfo); a != nil {
		pd.User = &userView{Name: a.user.Name, Role: string(a.user.Role), Workspaces: a.user.Workspaces, Admin: a.isAdmin(),
			SuperAdmin: a.user.Role == store.RoleAdmin}
		pd.CSRF = a.csrf
		sum, err := s.st.SummarizeVoicemails(r.Context(), a.scope())
		if err != nil {
			s.log.Warn().Err(err).Msg("web: counting unheard voicemail")
		}
		pd.Inbox = sum
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, pd); err != nil {
		s.log.Error().Err(err).Str("page", page).Msg("web: rendering")
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	w.Write(buf.Bytes())
}

type errorData struct {
	Code    int
	Status  string
	Message string
}

func (s *Server) renderError(w http.ResponseWriter, r *http.Request, code int, msg string) {
	s.render(w, r, code, "error", fmt.Sprintf("%d %s", code, http.StatusText(code)),
		errorData{Code: code, Status: http.StatusText(code), Message: msg})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		code, b = http.StatusInternalServerError, []byte(`{"error": "internal error"}`)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(code)
	w.Write(append(b, '\n'))
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}

// when shows a time in loc the way people read an inbox: today and
// yesterday by name, this year without the year.
func (s *Server) when(loc *time.Location, t time.Time) string {
	if t.IsZero() {
		return "–"
	}
	t = t.In(loc)
	now := s.now().In(loc)
	y1, m1, d1 := t.Date()
	y2, m2, d2 := now.Date()
	switch {
	case y1 == y2 && m1 == m2 && d1 == d2:
		return "Today " + t.Format("15:04")
	case now.AddDate(0, 0, -1).Format(time.DateOnly) == t.Format(time.DateOnly):
		return "Yesterday " + t.Format("15:04")
	case y1 == y2:
		return t.Format("Mon 2 Jan 15:04")
	}
	return t.Format("2 Jan 2006 15:04")
}

// fmtDur shows a duration as people say it: 45s, 2m 05s, 1h 02m.
func fmtDur(d time.Duration) string {
	if d <= 0 {
		return "0s"
	}
	if d < 10*time.Second {
		return strconv.FormatFloat(d.Seconds(), 'f', 1, 64) + "s"
	}
	sec := int(d.Round(time.Second).Seconds())
	switch {
	case sec < 60:
		return fmt.Sprintf("%ds", sec)
	case sec < 3600:
		return fmt.Sprintf("%dm %02ds", sec/60, sec%60)
	}
	return fmt.Sprintf("%dh %02dm", sec/3600, sec%3600/60)
}

// fmtClock shows an offset into a call: +0:04.2.
func fmtClock(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	ms := d.Milliseconds()
	return fmt.Sprintf("+%d:%02d.%d", ms/60000, ms/1000%60, ms/100%10)
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return strconv.Itoa(n) + " " + word + "s"
}
