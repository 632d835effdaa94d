package metrics

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/callflow/callflow/flows"
)

func TestMetricsCountCallsAndServeText(t *testing.T) {
	m := New()
	m.Observe(Gauges{CallsInProgress: func() float64 { return 3 }, ARIReconnects: func() float64 { return 2 }, StoreQueueDepth: func() float64 { return 7 }})
	t0 := time.Now()
	m.RecordCall(&flows.CallRecord{Flow: "Support", Transport: "ari", Outcome: "hangup", Abandoned: true,
		Steps: []flows.StepTrace{{Applet: "menu", Started: t0, Ended: t0.Add(2 * time.Second)}}})
	m.RecordCall(&flows.CallRecord{Flow: "Support", Transport: "ari", Outcome: "completed", TalkTime: time.Minute})
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	for _, want := range []string{
		`callflow_calls_total{flow="Support",outcome="hangup",transport="ari"} 1`,
		`callflow_calls_total{flow="Support",outcome="completed",transport="ari"} 1`,
		`callflow_calls_abandoned_total{flow="Support"} 1`,
		`callflow_step_duration_seconds_count{applet="menu"} 1`,
		`callflow_calls_in_progress 3`,
		`callflow_ari_reconnects_total 2`,
		`callflow_store_queue_depth 7`,
		`callflow_talk_seconds_count 1`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("missing %s", want)
		}
	}
}
