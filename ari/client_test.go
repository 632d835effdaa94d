package ari

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// The client the unit tests replace: what it sends, and how it reads
// Asterisk's answers.
func TestClient(t *testing.T) {
	type seen struct{ method, uri, auth, ctype, body string }
	cases := []struct {
		name      string
		status    int
		answer    string
		body      any
		want      seen
		out       string
		err       string // the error's text; "" for none
		status404 bool
	}{
		{name: "a command with parameters", status: 204,
			want: seen{method: "POST", uri: "/ari/channels/1795237545.58/play/p1?media=sound%3Ahello-world", auth: "Basic Y2FsbGZsb3c6c2VjcmV0"}},
		{name: "a JSON body", status: 200, answer: `{"value":"greeting"}`, body: map[string]string{"a": "b"},
			want: seen{method: "POST", uri: "/ari/channels/1795237545.58/play/p1?media=sound%3Ahello-world", auth: "Basic Y2FsbGZsb3c6c2VjcmV0", ctype: "application/json", body: `{"a":"b"}`},
			out:  "greeting"},
		{name: "Asterisk's message", status: 404, answer: `{"message":"Channel not found"}`,
			err: "ari: POST /channels/1795237545.58/play/p1: 404 Channel not found", status404: true},
		{name: "a 500 says error, not message", status: 500, answer: `{"error":"Allocation failed"}`,
			err: "ari: POST /channels/1795237545.58/play/p1: 500 Allocation failed"},
		{name: "no message at all", status: 503,
			err: "ari: POST /channels/1795237545.58/play/p1: 503 Service Unavailable"},
		{name: "an answer that is not JSON", status: 200, answer: `<html>`,
			err: "ari: POST /channels/1795237545.58/play/p1: decode: invalid character '<' looking for beginning of value"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Cleanup(func() { goleak.VerifyNone(t) })
			got := make(chan seen, 1)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				got <- seen{r.Method, r.URL.RequestURI(), r.Header.Get("Authorization"), r.Header.Get("Content-Type"), string(b)}
				w.WriteHeader(tc.status)
				_, _ = io.WriteString(w, tc.answer)
			}))
			defer srv.Close()
			c := newClient(srv.URL+"/ari/", "callflow", "secret", 2*time.Second, 4)
			defer c.close()
			p := params{}
			p.add("media", "sound:hello-world")
			var out struct {
				Value string `json:"value"`
			}
			err := c.do(context.Background(), http.MethodPost, "/channels/1795237545.58/play/p1", &p, tc.body, &out)
			if s := <-got; tc.want.method != "" && s != tc.want {
				t.Errorf("sent %+v\nwant %+v", s, tc.want)
			}
			if (err == nil) != (tc.err == "") || (err != nil && err.Error() != tc.err) {
				t.Fatalf("err %v, want %q", err, tc.err)
			}
			if IsNotFound(err) != tc.status404 || out.Value != tc.out {
				t.Errorf("not found %v, out %q", IsNotFound(err), out.Value)
			}
		})
	}
	t.Run("a request Asterisk does not answer ends at the timeout", func(t *testing.T) {
		t.Cleanup(func() { goleak.VerifyNone(t) })
		release := make(chan struct{})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-release }))
		defer srv.Close()
		defer close(release)
		c := newClient(srv.URL+"/ari", "", "", 20*time.Millisecond, 4)
		defer c.close()
		err := c.do(context.Background(), http.MethodGet, "/channels", nil, nil, nil)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err %v", err)
		}
	})
}
