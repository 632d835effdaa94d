package config

import (
	"net/url"
	"reflect"
	"strings"
)

// redacted replaces secrets in logs and dumps.
const redacted = "****"

// Redacted returns a copy that is safe to log: every secret that is set
// reads "****" and passwords inside URLs are masked. A secret left empty
// stays empty, so the log still shows whether it was set.
func (c *Config) Redacted() *Config {
	out := c.clone()
	root := reflect.ValueOf(out).Elem()
	for _, l := range leaves() {
		f := root.FieldByIndex(l.index)
		switch {
		case l.secret && f.Kind() == reflect.String && f.String() != "":
			f.SetString(redacted)
		case l.url && f.Kind() == reflect.String:
			if u, err := url.Parse(f.String()); err == nil && u.User != nil {
				if _, has := u.User.Password(); has {
					// url.UserPassword would escape the stars.
					user := url.User(u.User.Username()).String()
					u.User = nil
					scheme, rest, _ := strings.Cut(u.String(), "//")
					f.SetString(scheme + "//" + user + ":" + redacted + "@" + rest)
				}
			}
		}
	}
	return out
}

// clone copies c so that changing the copy's lists leaves c alone.
func (c *Config) clone() *Config {
	out := *c
	root := reflect.ValueOf(&out).Elem()
	for _, l := range leaves() {
		f := root.FieldByIndex(l.index)
		if f.Kind() == reflect.Slice && !f.IsNil() {
			cp := reflect.MakeSlice(f.Type(), f.Len(), f.Len())
			reflect.Copy(cp, f)
			f.Set(cp)
		}
	}
	return &out
}
