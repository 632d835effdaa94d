package ari

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// apiDocs holds the part of Asterisk 20's ARI specification the tests read.
const apiDocs = "testdata/ari-api-docs"

type apiModel struct {
	SubTypes   []string `json:"subTypes"`
	Properties map[string]struct {
		Type string `json:"type"`
	} `json:"properties"`
}

// apiModels returns every model of the specification files, by name.
func apiModels(t *testing.T) map[string]apiModel {
	t.Helper()
	out := map[string]apiModel{}
	for _, f := range []string{"channels.json", "bridges.json", "events.json", "playbacks.json", "recordings.json"} {
		b, err := os.ReadFile(filepath.Join(apiDocs, f))
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Models map[string]apiModel `json:"models"`
		}
		if err := json.Unmarshal(b, &doc); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for name, m := range doc.Models {
			out[name] = m
		}
	}
	return out
}

// propType is the type of a property of model name or of a model it
// extends (Message -> Event -> StasisStart), "" when there is none.
func propType(models map[string]apiModel, name, prop string) string {
	if p, ok := models[name].Properties[prop]; ok {
		return p.Type
	}
	for parent, m := range models {
		if slices.Contains(m.SubTypes, name) {
			if typ := propType(models, parent, prop); typ != "" {
				return typ
			}
		}
	}
	return ""
}

// checkAgainstSpec reports every JSON field of typ that none of the named
// models has with a matching type; struct fields are checked against the
// model their property names.
func checkAgainstSpec(t *testing.T, models map[string]apiModel, typ reflect.Type, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, ok := models[n]; !ok {
			t.Fatalf("no model %s in the specification", n)
		}
	}
	for i := range typ.NumField() {
		f := typ.Field(i)
		tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if f.Anonymous && tag == "" {
			checkAgainstSpec(t, models, f.Type, names...)
			continue
		}
		var found []string
		for _, n := range names {
			if pt := propType(models, n, tag); pt != "" {
				found = append(found, pt)
			}
		}
		if len(found) == 0 {
			t.Errorf("%s.%s: no property %q in %v", typ, f.Name, tag, names)
			continue
		}
		for _, pt := range found {
			if !specType(f.Type, pt) {
				t.Errorf("%s.%s (%s): the specification says %s", typ, f.Name, f.Type, pt)
			}
			if f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeFor[ariTime]() {
				checkAgainstSpec(t, models, f.Type, pt)
			}
		}
	}
}

// specType reports whether a Go type reads a property of swagger type pt.
func specType(typ reflect.Type, pt string) bool {
	switch {
	case typ == reflect.TypeFor[ariTime]():
		return pt == "Date"
	case typ == reflect.TypeFor[[]string]():
		return pt == "List[string]"
	}
	switch typ.Kind() {
	case reflect.String:
		return pt == "string"
	case reflect.Int:
		return pt == "int" || pt == "long"
	case reflect.Bool:
		return pt == "boolean"
	case reflect.Struct:
		return !strings.HasPrefix(pt, "List[") && pt != "object" && pt != "string"
	}
	return false
}

// The channels and bridges read from REST answers are Asterisk 20's
// Channel and Bridge, field for field.
func TestModelMatchesAsteriskSpecification(t *testing.T) {
	models := apiModels(t)
	checkAgainstSpec(t, models, reflect.TypeFor[channelData](), "Channel")
	checkAgainstSpec(t, models, reflect.TypeFor[bridgeData](), "Bridge")
}

func TestAriTimeReadsAsteriskDates(t *testing.T) {
	cases := []struct {
		name, json string
		want       time.Time
		err        bool
	}{
		{name: "as Asterisk 20 writes it", json: `"2026-11-21T10:00:00.123+0000"`, want: time.Date(2026, 11, 21, 10, 0, 0, 123e6, time.UTC)},
		{name: "an offset", json: `"2026-11-21T05:00:00.123-0500"`, want: time.Date(2026, 11, 21, 10, 0, 0, 123e6, time.UTC)},
		{name: "no fraction", json: `"2026-11-21T10:00:00+0000"`, want: time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)},
		{name: "microseconds", json: `"2026-11-21T10:00:00.123456+0000"`, want: time.Date(2026, 11, 21, 10, 0, 0, 123456e3, time.UTC)},
		{name: "UTC as Z", json: `"2026-11-21T10:00:00.123Z"`, want: time.Date(2026, 11, 21, 10, 0, 0, 123e6, time.UTC)},
		{name: "null is no time", json: `null`},
		{name: "empty", json: `""`, err: true},
		{name: "no zone", json: `"2026-11-21T10:00:00.123"`, err: true},
		{name: "a colon in the zone", json: `"2026-11-21T10:00:00.123+00:00"`, err: true},
		{name: "not a date", json: `"yesterday"`, err: true},
		{name: "a number", json: `1795237533`, err: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var v ariTime
			err := json.Unmarshal([]byte(tc.json), &v)
			if (err != nil) != tc.err {
				t.Fatalf("err %v", err)
			}
			if !v.Equal(tc.want) {
				t.Fatalf("got %v, want %v", v.Time, tc.want)
			}
		})
	}
}

// objects returns the JSON objects in v, at any depth, that have every
// one of keys: the channels (or bridges) of an event or of a REST answer.
func objects(v any, keys ...string) []map[string]any {
	var out []map[string]any
	switch x := v.(type) {
	case map[string]any:
		all := true
		for _, k := range keys {
			if _, ok := x[k]; !ok {
				all = false
			}
		}
		if all {
			out = append(out, x)
		}
		for _, e := range x {
			out = append(out, objects(e, keys...)...)
		}
	case []any:
		for _, e := range x {
			out = append(out, objects(e, keys...)...)
		}
	}
	return out
}

// Every channel and bridge a real Asterisk 20 sent, in events and in REST
// answers, decodes into the model with the values a generic decode sees;
// creation times keep their milliseconds and zone.
func TestModelReadsTranscriptChannelsAndBridges(t *testing.T) {
	var channels, bridges int
	for _, l := range transcriptLines(t) {
		doc := l.Event
		if l.Kind == "rest" {
			doc = l.RespBody
		}
		if len(doc) == 0 {
			continue
		}
		var v any
		if err := json.Unmarshal(doc, &v); err != nil {
			continue // a text answer
		}
		for _, m := range objects(v, "id", "state", "dialplan", "creationtime") {
			raw, _ := json.Marshal(m)
			var ch channelData
			if err := json.Unmarshal(raw, &ch); err != nil {
				t.Fatalf("%s: %v", raw, err)
			}
			caller, _ := m["caller"].(map[string]any)
			dp, _ := m["dialplan"].(map[string]any)
			want := []any{m["id"], m["name"], m["state"], caller["number"], caller["name"], dp["context"], dp["exten"], dp["app_name"], dp["app_data"]}
			got := []any{ch.ID, ch.Name, ch.State, ch.Caller.Number, ch.Caller.Name, ch.Dialplan.Context, ch.Dialplan.Exten, ch.Dialplan.AppName, ch.Dialplan.AppData}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("channel %v, generic %v", got, want)
			}
			if s := ch.Created.Format("2006-01-02T15:04:05.000-0700"); s != m["creationtime"] {
				t.Errorf("creation time %q read as %v", m["creationtime"], ch.Created.Time)
			}
			channels++
		}
		for _, m := range objects(v, "id", "bridge_type", "channels") {
			raw, _ := json.Marshal(m)
			var b bridgeData
			if err := json.Unmarshal(raw, &b); err != nil {
				t.Fatalf("%s: %v", raw, err)
			}
			var ids []string
			for _, id := range m["channels"].([]any) {
				ids = append(ids, id.(string))
			}
			if b.ID != m["id"] || b.Creator != m["creator"] || strings.Join(b.Channels, ",") != strings.Join(ids, ",") {
				t.Errorf("bridge %+v, generic %v", b, m)
			}
			bridges++
		}
	}
	if channels < 100 || bridges < 2 {
		t.Fatalf("only %d channels and %d bridges checked", channels, bridges)
	}
}
