package tomlpos

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pelletier/go-toml/v2"

	"github.com/callflow/callflow/internal/suggest"
)

// Error is a message tied to a place in the document.
type Error struct {
	Pos  Pos
	Path string
	Msg  string
}

func (e *Error) Error() string { return fmt.Sprintf("%d:%d: %s", e.Pos.Line, e.Pos.Col, e.Msg) }

// Document is a parsed TOML document that remembers where each key was.
// Root holds strings, int64, float64, bool, time.Time for offset date-times,
// toml.LocalDate, toml.LocalDateTime and toml.LocalTime, []any and
// map[string]any; Decode hands local ones on as time.Time (see localTime).
type Document struct {
	Root  map[string]any
	Index *Index
}

// Parse parses src. A syntax error comes back as *Error with its position.
func Parse(src []byte) (*Document, error) {
	if err := checkNesting(src); err != nil {
		return nil, err
	}
	root := map[string]any{}
	if err := toml.Unmarshal(src, &root); err != nil {
		var de *toml.DecodeError
		if errors.As(err, &de) {
			line, col := de.Position()
			return nil, &Error{Pos: Pos{Line: max(line, 1), Col: max(col, 1)}, Msg: "syntax: " + strings.TrimPrefix(de.Error(), "toml: ")}
		}
		return nil, &Error{Pos: Pos{Line: 1, Col: 1}, Msg: err.Error()}
	}
	return &Document{Root: root, Index: NewIndex(src)}, nil
}

// Pos returns where path was written, or where its nearest ancestor was.
func (d *Document) Pos(path string) Pos { return d.Index.Nearest(path) }

// Errorf makes an *Error at path.
func (d *Document) Errorf(path, format string, args ...any) *Error {
	return &Error{Pos: d.Pos(path), Path: path, Msg: fmt.Sprintf(format, args...)}
}

// Unmarshaler is implemented by types that decode themselves from a raw TOML
// value (string, int64, float64, bool, time.Time, []any, map[string]any).
type Unmarshaler interface {
	UnmarshalTOMLValue(v any) error
}

// Decode fills dst (a pointer) from value, found at path, strictly: keys
// without a matching `toml` tag and values of the wrong type are errors.
// It returns every problem found, in document order.
func (d *Document) Decode(path string, value any, dst any) []error {
	rv := reflect.ValueOf(dst)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		panic("tomlpos: Decode needs a non-nil pointer")
	}
	var errs []error
	d.decode(path, value, rv.Elem(), &errs)
	sort.SliceStable(errs, func(i, j int) bool {
		a, b := errs[i].(*Error), errs[j].(*Error)
		if a.Pos.Line != b.Pos.Line {
			return a.Pos.Line < b.Pos.Line
		}
		if a.Pos.Col != b.Pos.Col {
			return a.Pos.Col < b.Pos.Col
		}
		return a.Msg < b.Msg
	})
	return errs
}

var (
	timeType      = reflect.TypeOf(time.Time{})
	stringMapType = reflect.TypeOf(map[string]string{})
)

func (d *Document) decode(path string, value any, rv reflect.Value, errs *[]error) {
	fail := func(format string, args ...any) { *errs = append(*errs, d.Errorf(path, format, args...)) }
	if t, ok := localTime(value); ok {
		value = t
	}

	if rv.CanAddr() {
		if u, ok := rv.Addr().Interface().(Unmarshaler); ok {
			if err := u.UnmarshalTOMLValue(value); err != nil {
				fail("%s: %v", lastKey(path), err)
			}
			return
		}
	}
	if rv.Kind() == reflect.Pointer {
		if rv.IsNil() {
			rv.Set(reflect.New(rv.Type().Elem()))
		}
		d.decode(path, value, rv.Elem(), errs)
		return
	}
	if rv.Type() == timeType {
		t, ok := value.(time.Time)
		if !ok {
			fail("%s: want a date-time, got %s", lastKey(path), typeName(value))
			return
		}
		rv.Set(reflect.ValueOf(t))
		return
	}
	switch rv.Kind() {
	case reflect.Interface:
		if value != nil {
			rv.Set(reflect.ValueOf(value))
		}
	case reflect.String:
		s, ok := value.(string)
		if !ok {
			fail("%s: want a string, got %s", lastKey(path), typeName(value))
			return
		}
		rv.SetString(s)
	case reflect.Bool:
		b, ok := value.(bool)
		if !ok {
			fail("%s: want true or false, got %s", lastKey(path), typeName(value))
			return
		}
		rv.SetBool(b)
	case reflect.Int, reflect.Int64, reflect.Int32:
		n, ok := value.(int64)
		if !ok {
			fail("%s: want an integer, got %s", lastKey(path), typeName(value))
			return
		}
		if rv.OverflowInt(n) {
			fail("%s: %d is out of range", lastKey(path), n)
			return
		}
		rv.SetInt(n)
	case reflect.Float64, reflect.Float32:
		switch n := value.(type) {
		case float64:
			rv.SetFloat(n)
		case int64:
			rv.SetFloat(float64(n))
		default:
			fail("%s: want a number, got %s", lastKey(path), typeName(value))
		}
	case reflect.Slice:
		var items []any
		switch v := value.(type) {
		case []any:
			items = v
		case []map[string]any:
			for _, m := range v {
				items = append(items, m)
			}
		default:
			fail("%s: want a list, got %s", lastKey(path), typeName(value))
			return
		}
		out := reflect.MakeSlice(rv.Type(), len(items), len(items))
		for i, item := range items {
			d.decode(path+"["+strconv.Itoa(i)+"]", item, out.Index(i), errs)
		}
		rv.Set(out)
	case reflect.Map:
		m, ok := value.(map[string]any)
		if !ok {
			fail("%s: want a table, got %s", lastKey(path), typeName(value))
			return
		}
		if rv.Type().Key().Kind() != reflect.String {
			panic("tomlpos: map keys must be strings")
		}
		if rv.Type() == stringMapType {
			// the common case, without reflection per entry
			out := make(map[string]string, len(m))
			for k, v := range m {
				s, ok := v.(string)
				if !ok {
					*errs = append(*errs, d.Errorf(joinPath(path, k), "%s: want a string, got %s", k, typeName(v)))
					continue
				}
				out[k] = s
			}
			rv.Set(reflect.ValueOf(out))
			return
		}
		out := reflect.MakeMapWithSize(rv.Type(), len(m))
		for k, v := range m {
			elem := reflect.New(rv.Type().Elem()).Elem()
			d.decode(joinPath(path, k), v, elem, errs)
			out.SetMapIndex(reflect.ValueOf(k).Convert(rv.Type().Key()), elem)
		}
		rv.Set(out)
	case reflect.Struct:
		m, ok := value.(map[string]any)
		if !ok {
			fail("%s: want a table, got %s", lastKey(path), typeName(value))
			return
		}
		fields := structFields(rv.Type())
		for k, v := range m { // errors are sorted by position at the end
			idx, ok := fields[k]
			if !ok {
				*errs = append(*errs, d.Errorf(joinPath(path, k), "unknown key %q%s", k, didYouMean(k, fields)))
				continue
			}
			d.decode(joinPath(path, k), v, rv.FieldByIndex(idx), errs)
		}
	default:
		panic("tomlpos: unsupported field type " + rv.Type().String())
	}
}

// Fields lists the TOML keys a struct type accepts, for documentation and
// suggestions.
func Fields(t reflect.Type) []string {
	var out []string
	for k := range structFields(t) {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// fieldCache keeps each struct type's key -> field index map: the
// reflection walk is the costly part of decoding ten thousand flows.
var fieldCache sync.Map // reflect.Type -> map[string][]int

func structFields(t reflect.Type) map[string][]int {
	if m, ok := fieldCache.Load(t); ok {
		return m.(map[string][]int)
	}
	m := buildFields(t)
	fieldCache.Store(t, m)
	return m
}

func buildFields(t reflect.Type) map[string][]int {
	out := map[string][]int{}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := strings.Split(f.Tag.Get("toml"), ",")[0]
		if tag == "-" {
			continue
		}
		if f.Anonymous && tag == "" && f.Type.Kind() == reflect.Struct {
			for k, idx := range structFields(f.Type) {
				out[k] = append([]int{i}, idx...)
			}
			continue
		}
		if tag == "" {
			tag = strings.ToLower(f.Name)
		}
		out[tag] = []int{i}
	}
	return out
}

// didYouMean hints at the accepted key k was most likely meant to be.
func didYouMean(k string, fields map[string][]int) string {
	if best, ok := suggest.Closest(k, maps.Keys(fields), 2); ok {
		return fmt.Sprintf(" (did you mean %q?)", best)
	}
	return ""
}

func joinPath(path, key string) string {
	if needsQuote(key) {
		key = strconv.Quote(key)
	}
	if path == "" {
		return key
	}
	return path + "." + key
}

func needsQuote(k string) bool {
	if k == "" {
		return true
	}
	for _, c := range k {
		if !(c == '_' || c == '-' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return true
		}
	}
	return false
}

// JoinPath appends key to path the way the index writes paths.
func JoinPath(path, key string) string { return joinPath(path, key) }

func lastKey(path string) string {
	if path == "" {
		return "value"
	}
	return path[strings.LastIndex(path, ".")+1:]
}

func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "nothing"
	case string:
		return "a string"
	case int64:
		return "an integer"
	case float64:
		return "a number"
	case bool:
		return "a boolean"
	case time.Time, toml.LocalDate, toml.LocalDateTime, toml.LocalTime:
		return "a date-time"
	case []any, []map[string]any:
		return "a list"
	case map[string]any:
		return "a table"
	default:
		return fmt.Sprintf("%T", v)
	}
}

// Local date-times, dates and times have no zone: they become time.Time in
// these marker zones, which a step reads in its own time zone.
var (
	localDateTimeZone = time.FixedZone("datetime-local", 0)
	localDateZone     = time.FixedZone("date-local", 0)
	localTimeZone     = time.FixedZone("time-local", 0)
)

func localTime(v any) (time.Time, bool) {
	switch x := v.(type) {
	case toml.LocalDateTime:
		return x.AsTime(localDateTimeZone), true
	case toml.LocalDate:
		return x.AsTime(localDateZone), true
	case toml.LocalTime:
		return time.Date(0, time.January, 1, x.Hour, x.Minute, x.Second, x.Nanosecond, localTimeZone), true
	}
	return time.Time{}, false
}

// Duration is a time.Duration written as "30s", "1m30s" or a whole number of
// seconds.
type Duration time.Duration

// D returns the duration as time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d *Duration) UnmarshalTOMLValue(v any) error {
	switch x := v.(type) {
	case string:
		p, err := time.ParseDuration(strings.TrimSpace(x))
		if err != nil {
			return fmt.Errorf("bad duration %q (write it like \"5s\", \"1m30s\")", x)
		}
		if p < 0 {
			return fmt.Errorf("duration %q is negative", x)
		}
		*d = Duration(p)
	case int64:
		if x < 0 {
			return fmt.Errorf("duration %d is negative", x)
		}
		if x > int64(math.MaxInt64/time.Second) {
			return fmt.Errorf("duration %d seconds is too long", x)
		}
		*d = Duration(time.Duration(x) * time.Second)
	default:
		return fmt.Errorf("want a duration such as \"5s\", got %s", typeName(v))
	}
	return nil
}

func (d Duration) String() string { return time.Duration(d).String() }

// StringOrList accepts either "a" or ["a", "b"].
type StringOrList []string

func (s *StringOrList) UnmarshalTOMLValue(v any) error {
	switch x := v.(type) {
	case string:
		*s = []string{x}
	case []any:
		out := make([]string, 0, len(x))
		for i, item := range x {
			str, ok := item.(string)
			if !ok {
				return fmt.Errorf("item %d: want a string, got %s", i+1, typeName(item))
			}
			out = append(out, str)
		}
		*s = out
	default:
		return fmt.Errorf("want a string or a list of strings, got %s", typeName(v))
	}
	return nil
}
