// Package metrics counts what callflow does for Prometheus: calls by flow
// and outcome, calls in progress, step latency, ARI reconnects, the store's
// queue. It is a flows.TraceSink and an http.Handler for /metrics.
package metrics

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/callflow/callflow/flows"
)

// Gauges are read when Prometheus scrapes; any may be nil.
type Gauges struct {
	CallsInProgress func() float64
	ARIReconnects   func() float64
	ARIConnected    func() float64
	StoreQueueDepth func() float64
	// Free space where recordings and the database live (nil: unknown).
	RecordingsFreeBytes func() float64
	DatabaseFreeBytes   func() float64
	// Node names this node, its ARI application and its role ("primary"
	// or "standby") as the labels of callflow_node_info; nil: not shown.
	Node map[string]string
	// PrimaryAlive is 1 while a standby's primary serves its calls;
	// AdoptedChannels counts the channels (callers, agent legs) a standby
	// took from a dead primary.
	PrimaryAlive    func() float64
	AdoptedChannels func() float64
	// Queues are this node's queues now; Agents the agents by state.
	Queues func() []QueueFigures
	Agents func() map[string]int
}

// QueueFigures are one queue's figures at a scrape.
type QueueFigures struct {
	Name                string
	Waiting             int
	Callbacks           int // of the waiting: hung up, to be called back
	LongestWait         time.Duration
	Answered, Abandoned int // today
}

// Metrics holds the collectors.
type Metrics struct {
	reg      *prometheus.Registry
	calls    *prometheus.CounterVec
	steps    *prometheus.HistogramVec
	talk     prometheus.Histogram
	abandons *prometheus.CounterVec
}

// New registers the counters in a registry of its own (no global state);
// Observe adds the gauges once the parts they read exist.
func New() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.calls = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "callflow_calls_total", Help: "Finished calls by flow, transport and outcome.",
	}, []string{"flow", "transport", "outcome"})
	m.abandons = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "callflow_calls_abandoned_total", Help: "Calls whose caller hung up before reaching anyone, by flow.",
	}, []string{"flow"})
	m.steps = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "callflow_step_duration_seconds", Help: "How long steps took, by applet (prompts and rings included).",
		Buckets: []float64{0.001, 0.01, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300},
	}, []string{"applet"})
	m.talk = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "callflow_talk_seconds", Help: "Talk time of answered calls.",
		Buckets: []float64{5, 15, 30, 60, 120, 300, 600, 1800},
	})
	m.reg.MustRegister(m.calls, m.abandons, m.steps, m.talk,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Observe registers the gauges read at each scrape, as Prometheus
// collectors are registered by the parts that own what they read. Call it
// once.
func (m *Metrics) Observe(g Gauges) {
	gauge := func(name, help string, f func() float64) {
		if f != nil {
			m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f))
		}
	}
	gauge("callflow_calls_in_progress", "Calls being walked through a flow now.", g.CallsInProgress)
	gauge("callflow_ari_connected", "1 when the ARI event websocket is up.", g.ARIConnected)
	gauge("callflow_store_queue_depth", "Records waiting to be written to the database.", g.StoreQueueDepth)
	gauge("callflow_recordings_free_bytes", "Free space on the recordings directory's filesystem.", g.RecordingsFreeBytes)
	gauge("callflow_database_free_bytes", "Free space on the database's filesystem.", g.DatabaseFreeBytes)
	gauge("callflow_standby_primary_alive", "1 while the primary this standby stands by for serves its calls.", g.PrimaryAlive)
	if g.Node != nil {
		info := prometheus.NewGauge(prometheus.GaugeOpts{Name: "callflow_node_info",
			Help: "This node: its name, ARI application and role (primary, or standby for an application).", ConstLabels: g.Node})
		info.Set(1)
		m.reg.MustRegister(info)
	}
	if g.AdoptedChannels != nil {
		m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "callflow_standby_adopted_channels_total", Help: "Channels (callers, agent legs) this standby took from its dead primary.",
		}, g.AdoptedChannels))
	}
	if g.Queues != nil || g.Agents != nil {
		m.reg.MustRegister(queueCollector{g.Queues, g.Agents})
	}
	if g.ARIReconnects != nil {
		m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "callflow_ari_reconnects_total", Help: "Times the ARI event websocket was connected again.",
		}, g.ARIReconnects))
	}
}

// RecordCall counts a finished call.
func (m *Metrics) RecordCall(r *flows.CallRecord) {
	flow := r.Flow
	if flow == "" {
		flow = "(none)"
	}
	m.calls.WithLabelValues(flow, r.Transport, r.Outcome).Inc()
	if r.Abandoned {
		m.abandons.WithLabelValues(flow).Inc()
	}
	for _, s := range r.Steps {
		if !s.Ended.IsZero() && !s.Started.IsZero() {
			m.steps.WithLabelValues(s.Applet).Observe(s.Ended.Sub(s.Started).Seconds())
		}
	}
	if r.TalkTime > 0 {
		m.talk.Observe(r.TalkTime.Seconds())
	}
}

// Handler serves /metrics.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

var (
	queueWaitingDesc   = prometheus.NewDesc("callflow_queue_waiting", "Callers waiting in the queue now.", []string{"queue"}, nil)
	queueCallbacksDesc = prometheus.NewDesc("callflow_queue_callbacks_waiting", "Callers keeping their place in the queue to be called back.", []string{"queue"}, nil)
	queueLongestDesc   = prometheus.NewDesc("callflow_queue_longest_wait_seconds", "The longest wait of the callers waiting now.", []string{"queue"}, nil)
	queueAnsweredDesc  = prometheus.NewDesc("callflow_queue_answered_today", "Callers of the queue answered today.", []string{"queue"}, nil)
	queueAbandonedDesc = prometheus.NewDesc("callflow_queue_abandoned_today", "Callers who hung up while waiting in the queue today.", []string{"queue"}, nil)
	agentsDesc         = prometheus.NewDesc("callflow_agents", "Agents by presence state.", []string{"state"}, nil)
)

// queueCollector reads the queues and agents at each scrape.
type queueCollector struct {
	queues func() []QueueFigures
	agents func() map[string]int
}

func (c queueCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{queueWaitingDesc, queueCallbacksDesc, queueLongestDesc, queueAnsweredDesc, queueAbandonedDesc, agentsDesc} {
		ch <- d
	}
}

func (c queueCollector) Collect(ch chan<- prometheus.Metric) {
	if c.queues != nil {
		for _, q := range c.queues() {
			ch <- prometheus.MustNewConstMetric(queueWaitingDesc, prometheus.GaugeValue, float64(q.Waiting), q.Name)
			ch <- prometheus.MustNewConstMetric(queueCallbacksDesc, prometheus.GaugeValue, float64(q.Callbacks), q.Name)
			ch <- prometheus.MustNewConstMetric(queueLongestDesc, prometheus.GaugeValue, q.LongestWait.Seconds(), q.Name)
			ch <- prometheus.MustNewConstMetric(queueAnsweredDesc, prometheus.GaugeValue, float64(q.Answered), q.Name)
			ch <- prometheus.MustNewConstMetric(queueAbandonedDesc, prometheus.GaugeValue, float64(q.Abandoned), q.Name)
		}
	}
	if c.agents != nil {
		for state, n := range c.agents() {
			ch <- prometheus.MustNewConstMetric(agentsDesc, prometheus.GaugeValue, float64(n), state)
		}
	}
}
