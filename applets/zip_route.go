package applets

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// ZipRoute asks the caller for a ZIP code and routes by the first route
// that lists it. The ZIP is kept in the call's variable "zip" for later
// steps (bid, passthru, tag_route). An entry of the wrong length, or no
// entry, is asked again while the call's failures at this step are <=
// retries; after that the outcome is timeout (no entry) or no_match. A
// well-formed ZIP that no route lists is no_match at once.
//
//	applet = "zip_route"
//	prompt = ["sound:custom/enter-zip"]   # or say = "Please enter your ZIP code"
//	length = 5
//	timeout = "5s"                  # wait for the first key
//	inter_digit_timeout = "3s"
//	terminator = "#"
//	retries = 2
//	retry_prompt = ["sound:option-is-invalid"]  # played before asking again
//	routes = [
//	  { name = "east", exact = ["10001"], prefix = ["100", "101"], range = ["10000-14999"] },
//	  { name = "west", file = "zips/west.txt" },  # one ZIP a line, # comments; next to the flow file
//	]
//	on = { east = "ring-east", west = "ring-west", no_match = "sorry", timeout = "sorry" }
var ZipRouteDef = Definition{
	Name:     "zip_route",
	Group:    "gather",
	Summary:  "Ask for a ZIP code and route by configured ZIP lists.",
	Outcomes: []string{"<route>", "no_match", "timeout"},
	Params:   ZipRouteParams{},
	New:      newZipRoute,
}

// ZipRouteParams are zip_route's parameters.
type ZipRouteParams struct {
	Prompt            MediaList  `toml:"prompt" doc:"sounds asking for the ZIP code"`
	Say               string     `toml:"say" doc:"text asking for the ZIP code"`
	RetryPrompt       MediaList  `toml:"retry_prompt" doc:"played after an unknown ZIP"`
	Length            int        `toml:"length" doc:"digits in a ZIP code (default 5)"`
	Timeout           Duration   `toml:"timeout" doc:"wait for the first digit"`
	InterDigitTimeout Duration   `toml:"inter_digit_timeout" doc:"wait between digits"`
	Terminator        *string    `toml:"terminator" doc:"key that ends the entry"`
	Retries           *int       `toml:"retries" doc:"failed attempts before giving up"`
	Routes            []ZipRoute `toml:"routes" doc:"routes: each name is an outcome"`
}

// ZipRoute is one route: a ZIP matches when any of its lists holds it.
type ZipRoute struct {
	Name   string   `toml:"name"`
	Exact  []string `toml:"exact"`
	Prefix []string `toml:"prefix"`
	Range  []string `toml:"range"` // "10000-14999", both ends included
	File   string   `toml:"file"`
}

// maxZipFile bounds a ZIP list (every US ZIP code is about 250 KB).
const maxZipFile = 4 << 20

type zipRoute struct {
	p          ZipRouteParams
	length     int
	retries    int
	terminator string
	routes     []zipMatcher
	outcomes   []string
}

type zipMatcher struct {
	name   string
	exact  map[string]bool
	prefix []string
	ranges [][2]string // same length as the ZIP: string order is number order
}

func (m zipMatcher) match(zip string) bool {
	if m.exact[zip] {
		return true
	}
	for _, p := range m.prefix {
		if strings.HasPrefix(zip, p) {
			return true
		}
	}
	for _, r := range m.ranges {
		if zip >= r[0] && zip <= r[1] {
			return true
		}
	}
	return false
}

func newZipRoute(p Params) (Applet, error) {
	z := &zipRoute{length: 5, retries: 2, terminator: "#"}
	var errs problems
	errs.add(p.Decode(&z.p))
	if len(z.p.Prompt) == 0 && z.p.Say == "" {
		errs.add(p.Errorf("", "zip_route needs a `prompt` (or `say`)"))
	}
	if p.Has("length") {
		z.length = z.p.Length
		if z.length < 3 || z.length > 10 {
			errs.add(p.Errorf("length", "length must be between 3 and 10 digits"))
			z.length = 5 // go on checking with a sane length: messages below repeat it
		}
	}
	if z.p.Retries != nil {
		z.retries = *z.p.Retries
		if z.retries < 0 || z.retries > 10 {
			errs.add(p.Errorf("retries", "retries must be between 0 and 10"))
		}
	}
	if z.p.Terminator != nil {
		z.terminator = *z.p.Terminator
		if z.terminator != "" && z.terminator != "#" && z.terminator != "*" {
			errs.add(p.Errorf("terminator", "terminator must be \"#\", \"*\" or \"\""))
		}
	}
	if len(z.p.Routes) == 0 {
		errs.add(p.Errorf("routes", "zip_route needs `routes`: which ZIP codes go where"))
	}
	for i, r := range z.p.Routes {
		z.routes = append(z.routes, z.compile(p, fmt.Sprintf("routes[%d]", i), r, &errs))
		z.outcomes = appendNew(z.outcomes, r.Name)
	}
	z.outcomes = append(z.outcomes, "no_match", "timeout")
	return z, errs.err()
}

func (z *zipRoute) compile(p Params, key string, r ZipRoute, errs *problems) zipMatcher {
	m := zipMatcher{name: r.Name, exact: map[string]bool{}}
	errs.add(checkOutcomeName(p, key, r.Name, "route", "no_match", "timeout"))
	if len(r.Exact)+len(r.Prefix)+len(r.Range) == 0 && r.File == "" {
		errs.add(p.Errorf(key, "route %q needs `exact`, `prefix`, `range` or `file`", r.Name))
	}
	for j, e := range r.Exact {
		if err := z.checkZip(e); err != nil {
			errs.add(p.Errorf(fmt.Sprintf("%s.exact[%d]", key, j), "%v", err))
			continue
		}
		m.exact[e] = true
	}
	for j, pre := range r.Prefix {
		if !allDigits(pre) || len(pre) > z.length {
			errs.add(p.Errorf(fmt.Sprintf("%s.prefix[%d]", key, j), "prefix %q: 1 to %d digits", pre, z.length))
			continue
		}
		m.prefix = append(m.prefix, pre)
	}
	for j, rg := range r.Range {
		k := fmt.Sprintf("%s.range[%d]", key, j)
		lo, hi, ok := strings.Cut(rg, "-")
		lo, hi = strings.TrimSpace(lo), strings.TrimSpace(hi)
		if !ok || z.checkZip(lo) != nil || z.checkZip(hi) != nil {
			errs.add(p.Errorf(k, "range %q: write two %d-digit ZIP codes, such as \"%s-%s\"", rg, z.length, strings.Repeat("1", z.length), strings.Repeat("2", z.length)))
			continue
		}
		if hi < lo {
			errs.add(p.Errorf(k, "range %q ends before it starts", rg))
			continue
		}
		m.ranges = append(m.ranges, [2]string{lo, hi})
	}
	if r.File != "" {
		if err := z.readFile(p, r.File, m.exact); err != nil {
			errs.add(p.Errorf(key+".file", "%v", err))
		}
	}
	return m
}

func (z *zipRoute) checkZip(s string) error {
	if len(s) != z.length || !allDigits(s) {
		return fmt.Errorf("ZIP code %q: want %d digits", s, z.length)
	}
	return nil
}

// readFile reads a ZIP list: one ZIP a line, "#" starts a comment.
// Relative names are next to the flow file.
func (z *zipRoute) readFile(p Params, name string, into map[string]bool) error {
	path := name
	if !filepath.IsAbs(path) {
		path = filepath.Join(p.Dir(), path)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("ZIP list %s: %w", name, errors.Unwrap(err))
	}
	if !fi.Mode().IsRegular() || fi.Size() > maxZipFile {
		return fmt.Errorf("ZIP list %s: not a regular file of at most %d MiB", name, maxZipFile>>20)
	}
	src, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("ZIP list %s: %w", name, err)
	}
	var bad []string
	sc := bufio.NewScanner(bytes.NewReader(src))
	for n := 1; sc.Scan(); n++ {
		line, _, _ := strings.Cut(sc.Text(), "#")
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if z.checkZip(line) != nil {
			bad = append(bad, fmt.Sprintf("line %d: %q", n, line))
			continue
		}
		into[line] = true
	}
	if len(bad) > 0 {
		more := ""
		if len(bad) > 3 {
			more = fmt.Sprintf(" and %d more", len(bad)-3)
			bad = bad[:3]
		}
		return fmt.Errorf("ZIP list %s: not %d-digit ZIP codes at %s%s", name, z.length, strings.Join(bad, ", "), more)
	}
	return sc.Err()
}

func (z *zipRoute) Facts() Facts {
	media := append(append([]Media(nil), z.p.Prompt...), z.p.RetryPrompt...)
	return Facts{Outcomes: z.outcomes, Input: true, Media: media}
}

func (z *zipRoute) Run(ctx context.Context, env *Env) (Result, error) {
	if err := env.Answer(ctx); err != nil {
		return Result{}, err
	}
	prompt, err := env.Media(ctx, z.p.Prompt, z.p.Say)
	if err != nil {
		return Result{}, fmt.Errorf("zip_route: %w", err)
	}
	key := env.Flow.Name + "/" + env.Step
	for {
		digits, err := env.Call.Gather(ctx, keysSpec(prompt, z.length, z.p.Timeout, z.p.InterDigitTimeout, z.terminator))
		var failure string
		switch {
		case errors.Is(err, ErrTimeout) || err == nil && digits == "":
			failure = "timeout"
		case err != nil:
			return Result{}, err
		case len(digits) != z.length || !allDigits(digits):
			failure = "no_match"
			env.Note("invalid", digits)
		default:
			env.State.Vars["zip"] = digits
			env.Note("zip", digits)
			for _, r := range z.routes {
				if r.match(digits) {
					return Result{Outcome: r.name}, nil
				}
			}
			return Result{Outcome: "no_match"}, nil
		}
		env.State.Attempts[key]++
		n := env.State.Attempts[key]
		env.Note("attempt", n)
		if n > z.retries {
			return Result{Outcome: failure}, nil
		}
		if len(z.p.RetryPrompt) > 0 {
			if _, err := env.Call.Play(ctx, PlaySpec{Media: z.p.RetryPrompt}); err != nil {
				return Result{}, err
			}
		}
	}
}
