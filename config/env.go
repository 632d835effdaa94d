package config

import (
	"fmt"
	"maps"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/callflow/callflow/internal/suggest"
	"github.com/callflow/callflow/internal/tomlpos"
)

const (
	// EnvPrefix starts every variable that overrides a key. The prefix is
	// reserved: a variable with it that names no key is an error, so that a
	// misspelt override is not silently ignored.
	EnvPrefix = "CALLFLOW_"
	// EnvConfig names the config file; it is the one variable with the
	// prefix that is not a key.
	EnvConfig = "CALLFLOW_CONFIG"
)

// EnvError is a problem with one environment variable.
type EnvError struct {
	Var string
	Err error
}

func (e *EnvError) Error() string { return e.Var + ": " + e.Err.Error() }
func (e *EnvError) Unwrap() error { return e.Err }

// leaf is one key of the file, as the environment sees it.
type leaf struct {
	key    string // "ari.password"
	env    string // "CALLFLOW_ARI_PASSWORD"
	index  []int
	typ    reflect.Type
	secret bool
	url    bool
}

var durationType = reflect.TypeFor[tomlpos.Duration]()

// leaves walks Config once; a key added to the struct gets its variable,
// its redaction and its place in EnvKeys from here.
var leaves = sync.OnceValue(func() []leaf {
	out := collect(reflect.TypeFor[Config](), "", strings.TrimSuffix(EnvPrefix, "_"), nil)
	seen := map[string]string{}
	for _, l := range out {
		if other, dup := seen[l.env]; dup {
			panic("config: " + l.key + " and " + other + " both map to " + l.env)
		}
		seen[l.env] = l.key
	}
	return out
})

func collect(t reflect.Type, keyPrefix, envPrefix string, index []int) []leaf {
	var out []leaf
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name := strings.Split(f.Tag.Get("toml"), ",")[0]
		if name == "-" {
			continue
		}
		idx := append(append([]int(nil), index...), i)
		if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
			out = append(out, collect(f.Type, keyPrefix, envPrefix, idx)...)
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		key := tomlpos.JoinPath(keyPrefix, name)
		env := envPrefix + "_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
		if f.Type.Kind() == reflect.Struct {
			out = append(out, collect(f.Type, key, env, idx)...)
			continue
		}
		if !envSettable(f.Type) {
			panic("config: no environment form for " + key + " of type " + f.Type.String())
		}
		out = append(out, leaf{
			key:    key,
			env:    env,
			index:  idx,
			typ:    f.Type,
			secret: f.Tag.Get("secret") == "true",
			url:    f.Tag.Get("redact") == "url",
		})
	}
	return out
}

func envSettable(t reflect.Type) bool {
	if t == durationType {
		return true
	}
	switch t.Kind() {
	case reflect.String, reflect.Bool, reflect.Int, reflect.Int32, reflect.Int64:
		return true
	case reflect.Slice:
		return t.Elem().Kind() == reflect.String
	}
	return false
}

// EnvKeys lists the variables that override keys, in file order.
func EnvKeys() []string {
	ls := leaves()
	out := make([]string, len(ls))
	for i, l := range ls {
		out[i] = l.env
	}
	return out
}

// EnvKey returns the variable that overrides a key such as "ari.password",
// or "" if there is no such key.
func EnvKey(key string) string {
	for _, l := range leaves() {
		if l.key == key {
			return l.env
		}
	}
	return ""
}

// ApplyEnv overrides keys from environ ("NAME=value" entries, as from
// os.Environ). Lists are comma-separated; durations are written as in the
// file ("5s", or whole seconds). It returns every problem found.
func (c *Config) ApplyEnv(environ []string) error {
	_, err := c.applyEnv(environ)
	return err
}

// applyEnv also reports which keys it set, and from which variable.
func (c *Config) applyEnv(environ []string) (map[string]string, error) {
	byEnv := map[string]leaf{}
	for _, l := range leaves() {
		byEnv[l.env] = l
	}
	vars := map[string]string{}
	for _, kv := range environ {
		name, value, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(name, EnvPrefix) || name == EnvConfig {
			continue
		}
		vars[name] = value
	}
	names := make([]string, 0, len(vars))
	for name := range vars {
		names = append(names, name)
	}
	sort.Strings(names)

	set := map[string]string{}
	var errs []error
	root := reflect.ValueOf(c).Elem()
	for _, name := range names {
		l, ok := byEnv[name]
		if !ok {
			errs = append(errs, &EnvError{Var: name, Err: fmt.Errorf("unknown variable%s", suggestEnv(name, byEnv))})
			continue
		}
		if err := setFromEnv(root.FieldByIndex(l.index), vars[name]); err != nil {
			errs = append(errs, &EnvError{Var: name, Err: fmt.Errorf("%s: %w", l.key, err)})
			continue
		}
		set[l.key] = name
	}
	return set, joinErrors(errs)
}

func setFromEnv(v reflect.Value, s string) error {
	if v.Type() == durationType {
		var d tomlpos.Duration
		var err error
		if n, perr := strconv.ParseInt(strings.TrimSpace(s), 10, 64); perr == nil {
			err = d.UnmarshalTOMLValue(n)
		} else {
			err = d.UnmarshalTOMLValue(s)
		}
		if err != nil {
			return err
		}
		v.Set(reflect.ValueOf(d))
		return nil
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Bool:
		b, err := strconv.ParseBool(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("want true or false, got %q", s)
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int32, reflect.Int64:
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, v.Type().Bits())
		if err != nil {
			return fmt.Errorf("want an integer, got %q", s)
		}
		v.SetInt(n)
	case reflect.Slice:
		items := []string{}
		if strings.TrimSpace(s) != "" {
			for _, item := range strings.Split(s, ",") {
				items = append(items, strings.TrimSpace(item))
			}
		}
		v.Set(reflect.ValueOf(items).Convert(v.Type()))
	}
	return nil
}

// suggestEnv names the closest known variable, for typos.
func suggestEnv(name string, known map[string]leaf) string {
	if best, ok := suggest.Closest(name, maps.Keys(known), 3); ok {
		return fmt.Sprintf(" (did you mean %s?)", best)
	}
	return ""
}
