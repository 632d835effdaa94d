package flows

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/callflow/callflow/applets"
)

// Set is an immutable collection of loaded flows: what serves calls at one
// moment. A call keeps the Set it started with, so a reload never changes
// a call in progress (transfers included).
type Set struct {
	Version  int64
	Loaded   time.Time
	Problems Problems
	flows    []*Flow
	byName   map[string]*Flow
	byNumber map[string]*Flow
}

// NewSet indexes flows. Flows must already be free of set-level errors.
func NewSet(version int64, fs []*Flow, probs Problems) *Set {
	s := &Set{Version: version, Loaded: time.Now(), Problems: probs, byName: map[string]*Flow{}, byNumber: map[string]*Flow{}}
	s.flows = append(s.flows, fs...)
	sort.Slice(s.flows, func(i, j int) bool { return s.flows[i].Name < s.flows[j].Name })
	for _, f := range s.flows {
		s.byName[strings.ToLower(f.Name)] = f
		if f.Status == Published {
			for _, n := range f.Numbers {
				s.byNumber[n] = f
			}
		}
	}
	return s
}

// Flows lists every flow, drafts included, by name.
func (s *Set) Flows() []*Flow { return s.flows }

// ByName finds a flow by name, ignoring case.
func (s *Set) ByName(name string) (*Flow, bool) {
	f, ok := s.byName[strings.ToLower(strings.TrimSpace(name))]
	return f, ok
}

// ByNumber finds the published flow for a normalised number.
func (s *Set) ByNumber(number string) (*Flow, bool) {
	f, ok := s.byNumber[number]
	return f, ok
}

// Find looks a flow up by name or by number (normalised with country).
func (s *Set) Find(nameOrNumber, country string) (*Flow, bool) {
	if f, ok := s.ByName(nameOrNumber); ok {
		return f, true
	}
	if n, err := NormalizeNumber(nameOrNumber, country); err == nil {
		if f, ok := s.ByNumber(n); ok {
			return f, true
		}
		for _, f := range s.flows {
			for _, fn := range f.Numbers {
				if fn == n {
					return f, true // a draft, for simulate
				}
			}
		}
	}
	return nil, false
}

// Registry holds the current Set; readers never block.
type Registry struct {
	cur atomic.Pointer[Set]
}

// NewRegistry starts with an empty set.
func NewRegistry() *Registry {
	r := &Registry{}
	r.cur.Store(NewSet(0, nil, nil))
	return r
}

// Current returns the set serving new calls.
func (r *Registry) Current() *Set { return r.cur.Load() }

// Swap installs s atomically.
func (r *Registry) Swap(s *Set) { r.cur.Store(s) }

// Loader reads flow files and remembers the last good version of each, so
// a broken edit never takes a working flow away.
type Loader struct {
	Dir     string
	Applets *applets.Registry
	Parse   ParseOptions
	Lint    LintOptions
	// Extra returns flows kept elsewhere (the database), loaded with the files.
	Extra func() ([]*Flow, Problems)

	mu        sync.Mutex
	version   int64
	lastGood  map[string]*Flow // by file
	prevExtra map[string]bool  // database flows (by "db:NAME@REV") in the last set
}

// Load reads every *.toml file of Dir and returns the new set and every
// problem found (including those of files whose last good version is
// kept).
func (l *Loader) Load() (*Set, Problems) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lastGood == nil {
		l.lastGood = map[string]*Flow{}
	}
	files, probs := listFlowFiles(l.Dir)
	candidates := map[string]*Flow{}
	changed := map[string]bool{}
	results := parseFiles(files, func(file string) (*Flow, Problems) {
		src, err := readLimited(file)
		if err != nil {
			return nil, Problems{{File: file, Line: 1, Col: 1, Severity: Error, Msg: err.Error()}}
		}
		if old, ok := l.lastGood[file]; ok && string(old.Raw) == string(src) {
			return old, LintFlow(old, l.Lint)
		}
		f, fp := Parse(file, src, l.Applets, l.Parse)
		if f != nil {
			fp = append(fp, LintFlow(f, l.Lint)...)
		}
		if fp.HasErrors() {
			f = nil
		}
		return f, fp
	})
	for i, file := range files {
		r := results[i]
		probs = append(probs, r.probs...)
		old, hadOld := l.lastGood[file]
		switch {
		case r.flow == nil && hadOld:
			probs = append(probs, Problem{File: file, Line: 1, Col: 1, Severity: Warning, Msg: fmt.Sprintf("keeping the last good version (%s) of flow %q", old.Version, old.Name)})
			candidates[file] = old
		case r.flow == nil:
		default:
			candidates[file] = r.flow
			if !hadOld || old != r.flow {
				changed[file] = true
			}
		}
	}
	if l.Extra != nil {
		extra, ep := l.Extra()
		probs = append(probs, ep...)
		for _, f := range extra {
			candidates[f.File] = f
			if !l.prevExtra[f.File] {
				changed[f.File] = true // a new database revision: it yields on conflict
			}
		}
	}
	// Set-level conflicts (a number or name claimed twice, a transfer to
	// nowhere): what the admin wrote is reported, and a changed flow that
	// conflicts goes back to its last good version (or out, if new) until
	// the set is clean.
	probs = append(probs, lintCandidates(candidates)...)
	for range 3 {
		_, bad := LintSet(values(candidates))
		if len(bad) == 0 {
			break
		}
		reverted := false
		for f := range bad {
			if !changed[f.File] {
				continue
			}
			reverted = true
			delete(changed, f.File)
			if old, ok := l.lastGood[f.File]; ok {
				candidates[f.File] = old
			} else {
				delete(candidates, f.File)
			}
		}
		if !reverted {
			// Conflicts among flows that did not change (a transfer whose
			// target was deleted stays: the runner ends such calls cleanly).
			break
		}
	}
	all := values(candidates)
	next := map[string]*Flow{}
	for file, f := range candidates {
		if f.Source == "file" {
			next[file] = f
		}
	}
	l.lastGood = next
	l.prevExtra = map[string]bool{}
	for file, f := range candidates {
		if f.Source != "file" {
			l.prevExtra[file] = true
		}
	}
	l.version++
	probs = dedupe(probs)
	probs.Sort()
	return NewSet(l.version, all, probs), probs
}

func lintCandidates(candidates map[string]*Flow) Problems {
	sp, _ := LintSet(values(candidates))
	return sp
}

func values(m map[string]*Flow) []*Flow {
	out := make([]*Flow, 0, len(m))
	for _, f := range m {
		out = append(out, f)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].File < out[j].File })
	return out
}

func dedupe(ps Problems) Problems {
	seen := map[Problem]bool{}
	out := ps[:0]
	for _, p := range ps {
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out
}

// MaxFileSize bounds one flow file: a flow is a few kilobytes.
const MaxFileSize = 4 << 20

func readLimited(file string) ([]byte, error) {
	// Stat first: opening a FIFO named *.toml would block until a writer came.
	if fi, err := os.Stat(file); err != nil {
		return nil, err
	} else if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("not a regular file")
	}
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("not a regular file")
	}
	if fi.Size() > MaxFileSize {
		return nil, fmt.Errorf("file is %d bytes; a flow file may be at most %d", fi.Size(), MaxFileSize)
	}
	// One byte more than Stat said tells whether the file grew meanwhile.
	buf := make([]byte, fi.Size()+1)
	n, err := io.ReadFull(f, buf)
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return nil, err
	}
	grew := n == len(buf)
	buf = buf[:n]
	if grew { // read the rest, still bounded
		rest, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1-int64(n)))
		if err != nil {
			return nil, err
		}
		buf = append(buf, rest...)
	}
	if len(buf) > MaxFileSize {
		return nil, fmt.Errorf("file is over %d bytes", MaxFileSize)
	}
	return buf, nil
}

// listFlowFiles returns the *.toml files of dir (not recursive; hidden and
// editor backup files skipped).
func listFlowFiles(dir string) ([]string, Problems) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, Problems{{File: dir, Line: 1, Col: 1, Severity: Error, Msg: err.Error()}}
	}
	var out []string
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") || !strings.HasSuffix(name, ".toml") {
			continue
		}
		out = append(out, filepath.Join(dir, name))
	}
	sort.Strings(out)
	return out, nil
}

// LoadFiles parses and lints the given files and directories together, for
// `callflow check`: nothing is kept, every problem is reported. extra flows
// (kept in the database) join the set-level checks: a name or number in
// both is a conflict, and a transfer may go to them.
func LoadFiles(paths []string, reg *applets.Registry, popts ParseOptions, lopts LintOptions, extra ...*Flow) ([]*Flow, Problems) {
	var files []string
	var probs Problems
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			probs = append(probs, Problem{File: p, Line: 1, Col: 1, Severity: Error, Msg: err.Error()})
			continue
		}
		if fi.IsDir() {
			fs, fp := listFlowFiles(p)
			files = append(files, fs...)
			probs = append(probs, fp...)
		} else {
			files = append(files, p)
		}
	}
	results := parseFiles(files, func(file string) (*Flow, Problems) {
		src, err := readLimited(file)
		if err != nil {
			return nil, Problems{{File: file, Line: 1, Col: 1, Severity: Error, Msg: err.Error()}}
		}
		f, fp := Parse(file, src, reg, popts)
		if f != nil {
			fp = append(fp, LintFlow(f, lopts)...)
		}
		return f, fp
	})
	var flows []*Flow
	for _, r := range results {
		probs = append(probs, r.probs...)
		if r.flow != nil {
			flows = append(flows, r.flow)
		}
	}
	sp, _ := LintSet(append(append([]*Flow(nil), flows...), extra...))
	probs = append(probs, sp...)
	probs = dedupe(probs)
	probs.Sort()
	return flows, probs
}

type parsed struct {
	flow  *Flow
	probs Problems
}

// parseFiles runs parse on every file, one worker per CPU; results keep
// the files' order.
func parseFiles(files []string, parse func(string) (*Flow, Problems)) []parsed {
	out := make([]parsed, len(files))
	workers := min(runtime.GOMAXPROCS(0), len(files))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(files) {
					return
				}
				out[i].flow, out[i].probs = parse(files[i])
			}
		}()
	}
	wg.Wait()
	return out
}
