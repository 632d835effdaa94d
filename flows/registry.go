package flows

import (
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
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
	slices.SortFunc(s.flows, func(a, b *Flow) int { return strings.Compare(a.Name, b.Name) })
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
	lastGood  map[string]*Flow     // by file
	read      map[string]fileState // by file: what each held when last read
	prevExtra map[string]bool      // database flows (by "db:NAME@REV") in the last set
}

// fileState is a flow file as last read. A reload reads again only the
// files whose size, modification time or identity changed, and decodes
// again only those whose content did: with ten thousand flows, reading and
// decoding them all made an edit wait a second to go live.
type fileState struct {
	info   os.FileInfo // when read; nil: written too recently to trust it
	with   decodeOptions
	sum    [32]byte // of the content
	parsed *Flow    // as decoded, nil if it did not decode
	// probs are decoding's and the flow's graph's (LintFlow's but for the
	// sounds), or why the file could not be read.
	probs Problems
}

// decodeOptions are what a file's state depends on besides its content.
type decodeOptions struct {
	applets  *applets.Registry
	parse    ParseOptions
	maxSteps int
}

func (l *Loader) decodeOptions() decodeOptions {
	return decodeOptions{applets: l.Applets, parse: l.Parse, maxSteps: l.Lint.DefaultMaxSteps}
}

// racyWindow is how recently a file may have been written for its size
// and time not to vouch for its content: a write in the same clock tick as
// the read, or within a coarse file system's two-second resolution, leaves
// both as they were.
const racyWindow = 2 * time.Second

// readFile returns the state of file, reading and decoding it only if it
// changed since prev. stat is the file's, for the directory signature
// (nil if it could not be had).
func (l *Loader) readFile(file string, prev fileState, start time.Time) (st fileState, stat os.FileInfo) {
	with := l.decodeOptions()
	stat, err := os.Stat(file)
	if prev.with != with {
		prev = fileState{}
	}
	if err == nil && prev.info != nil && sameFile(prev.info, stat) {
		return prev, stat
	}
	src, info, err := readLimited(file)
	if err != nil {
		return fileState{probs: Problems{{File: file, Line: 1, Col: 1, Severity: Error, Msg: err.Error()}}}, stat
	}
	if info.ModTime().After(start.Add(-racyWindow)) {
		info = nil
	}
	sum := sha256.Sum256(src)
	if prev.sum == sum { // touched, or rewritten as it was
		prev.info = info
		return prev, stat
	}
	f, probs := Parse(file, src, l.Applets, l.Parse)
	if f != nil {
		graph := l.Lint
		graph.SoundsDir = "" // looked up on every reload: see soundProblems
		probs = append(probs, LintFlow(f, graph)...)
	}
	return fileState{info: info, with: with, sum: sum, parsed: f, probs: probs}, stat
}

// soundProblems are LintFlow's problems with the sounds f plays, which the
// sounds directory decides rather than the flow.
func (l *Loader) soundProblems(f *Flow) Problems {
	var probs Problems
	for _, s := range f.Steps {
		probs = append(probs, f.lintMedia(s, l.Lint)...)
	}
	return probs
}

// sameFile reports whether a and b describe the same, unchanged file.
func sameFile(a, b os.FileInfo) bool {
	return a.Size() == b.Size() && a.ModTime().Equal(b.ModTime()) && a.Mode() == b.Mode() && os.SameFile(a, b)
}

// Load reads every *.toml file of Dir and returns the new set and every
// problem found (including those of files whose last good version is
// kept). Files that did not change since the last Load are not read or
// decoded again; their sounds are looked up again, and the set is linted
// as a whole.
func (l *Loader) Load() (*Set, Problems) {
	set, probs, _ := l.load()
	return set, probs
}

// load also returns the signature of the directory as read (see
// signature), for the watcher's poll.
func (l *Loader) load() (*Set, Problems, [32]byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lastGood == nil {
		l.lastGood = map[string]*Flow{}
	}
	start := time.Now()
	files, probs := listFlowFiles(l.Dir)
	states := make([]fileState, len(files))
	stats := make([]os.FileInfo, len(files))
	inParallel(len(files), func(i int) {
		states[i], stats[i] = l.readFile(files[i], l.read[files[i]], start)
	})
	sounds := make([]Problems, len(files))
	if l.Lint.SoundsDir != "" {
		inParallel(len(files), func(i int) {
			if f := states[i].parsed; f != nil {
				sounds[i] = l.soundProblems(f)
			}
		})
	}
	l.read = make(map[string]fileState, len(files))
	candidates := map[string]*Flow{}
	changed := map[string]bool{}
	for i, file := range files {
		st := states[i]
		l.read[file] = st
		fp := append(st.probs[:len(st.probs):len(st.probs)], sounds[i]...)
		probs = append(probs, fp...)
		flow := st.parsed
		if fp.HasErrors() {
			flow = nil
		}
		old, hadOld := l.lastGood[file]
		switch {
		case flow == nil && hadOld:
			probs = append(probs, Problem{File: file, Line: 1, Col: 1, Severity: Warning, Msg: fmt.Sprintf("keeping the last good version (%s) of flow %q", old.Version, old.Name)})
			candidates[file] = old
		case flow == nil:
		default:
			candidates[file] = flow
			if !hadOld || old != flow {
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
	all := values(candidates)
	sp, bad := LintSet(all)
	probs = append(probs, sp...)
	for round := 1; len(bad) > 0; round++ {
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
		all = values(candidates)
		if round == 3 {
			break
		}
		_, bad = LintSet(all)
	}
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
	return NewSet(l.version, all, probs), probs, signature(files, stats)
}

func values(m map[string]*Flow) []*Flow {
	out := make([]*Flow, 0, len(m))
	for _, f := range m {
		out = append(out, f)
	}
	slices.SortFunc(out, func(a, b *Flow) int { return strings.Compare(a.File, b.File) })
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

// readLimited reads file, and says what it was when opened.
func readLimited(file string) ([]byte, os.FileInfo, error) {
	// Stat first: opening a FIFO named *.toml would block until a writer came.
	if fi, err := os.Stat(file); err != nil {
		return nil, nil, err
	} else if !fi.Mode().IsRegular() {
		return nil, nil, fmt.Errorf("not a regular file")
	}
	f, err := os.Open(file)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, nil, fmt.Errorf("not a regular file")
	}
	if fi.Size() > MaxFileSize {
		return nil, nil, fmt.Errorf("file is %d bytes; a flow file may be at most %d", fi.Size(), MaxFileSize)
	}
	// One byte more than Stat said tells whether the file grew meanwhile.
	buf := make([]byte, fi.Size()+1)
	n, err := io.ReadFull(f, buf)
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return nil, nil, err
	}
	grew := n == len(buf)
	buf = buf[:n]
	if grew { // read the rest, still bounded
		rest, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1-int64(n)))
		if err != nil {
			return nil, nil, err
		}
		buf = append(buf, rest...)
	}
	if len(buf) > MaxFileSize {
		return nil, nil, fmt.Errorf("file is over %d bytes", MaxFileSize)
	}
	return buf, fi, nil
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
	results := make([]parsed, len(files))
	inParallel(len(files), func(i int) {
		src, _, err := readLimited(files[i])
		if err != nil {
			results[i].probs = Problems{{File: files[i], Line: 1, Col: 1, Severity: Error, Msg: err.Error()}}
			return
		}
		f, fp := Parse(files[i], src, reg, popts)
		if f != nil {
			fp = append(fp, LintFlow(f, lopts)...)
		}
		results[i] = parsed{f, fp}
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

// inParallel runs fn(0) ... fn(n-1), one worker per CPU.
func inParallel(n int, fn func(i int)) {
	workers := min(runtime.GOMAXPROCS(0), n)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				fn(i)
			}
		}()
	}
	wg.Wait()
}
