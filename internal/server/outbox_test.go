package server

import (
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/callflow/callflow/ari/aritest"
	"github.com/callflow/callflow/config"
)

// A post-call webhook whose endpoint is down waits in the database, not in
// memory: a server started again on the same database delivers it once
// the endpoint is back.
func TestWebhookRetryOutlivesARestart(t *testing.T) {
	var up atomic.Bool
	var delivered atomic.Int32
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if !up.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		delivered.Add(1)
	}))
	defer hook.Close()
	dir := writeFlowDir(t, map[string]string{"hooked.toml": `name = "Hooked"
numbers = ["+914430006666"]

[settings]
post_call_webhook = "` + hook.URL + `"

[[steps]]
id = "bye"
applet = "hangup"
`})
	db := filepath.Join(t.TempDir(), "callflow.db")
	onDB := func(c *config.Config) { c.Database = db }

	first := startWith(t, harnessOptions{flowsDir: dir, tweak: []func(*config.Config){onDB}})
	caller := first.call(aritest.CallSpec{Exten: "+914430006666"})
	ended(t, caller)
	first.record(caller.ID())
	waitUntil(t, "the failed webhook in the outbox", func() bool {
		n, err := first.srv.Store().OutboxLen(ctxT(t))
		return err == nil && n == 1
	})
	first.stop()

	up.Store(true)
	second := startWith(t, harnessOptions{flowsDir: dir, tweak: []func(*config.Config){onDB}})
	waitUntil(t, "the webhook delivered after the restart", func() bool { return delivered.Load() == 1 })
	waitUntil(t, "the outbox emptied", func() bool {
		n, err := second.srv.Store().OutboxLen(ctxT(t))
		return err == nil && n == 0
	})
}
