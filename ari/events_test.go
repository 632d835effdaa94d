package ari

import (
	"reflect"
	"slices"
	"testing"
)

// The event types the reader keeps are Asterisk 20 event models, and
// every field it reads from them is in one of those models with that type.
func TestEventsMatchAsteriskSpecification(t *testing.T) {
	models := apiModels(t)
	var names []string
	for typ := range kindByType {
		names = append(names, typ)
	}
	slices.Sort(names)
	checkAgainstSpec(t, models, reflect.TypeFor[wireEvent](), names...)
}

// The event filter asks for exactly the events the reader decodes, and
// every kind has its name back.
func TestEventKindsAndFilter(t *testing.T) {
	types := filterTypes()
	if len(types) != len(kindByType) {
		t.Fatalf("filter %v", types)
	}
	for _, typ := range types {
		k := kindByType[typ]
		if k == evNone || k.String() != typ {
			t.Errorf("%s: kind %v", typ, k)
		}
	}
	for _, k := range []evKind{evVanished, evResync, evNone} {
		if _, ok := kindByType[k.String()]; ok {
			t.Errorf("%v is made by the transport, not sent by Asterisk", k)
		}
	}
}

func TestPeekKind(t *testing.T) {
	cases := []struct {
		name, ev string
		want     evKind
	}{
		{"first type key is the event's", `{"type":"Dial","peer":{"id":"x"}}`, evDial},
		{"type after other keys", `{"application":"callflow","type":"StasisEnd"}`, evStasisEnd},
		{"an event the transport does not use", `{"type":"ChannelVarset","variable":"x"}`, evNone},
		{"no type", `{"application":"callflow"}`, evNone},
		{"unterminated", `{"type":"Dial`, evNone},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := peekKind([]byte(tc.ev)); got != tc.want {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}
