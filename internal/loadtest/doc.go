// Package loadtest is the load generator behind cmd/callflow-load: scripted
// callers on the fake Asterisk drive a real `callflow serve`, and it reports
// calls lost, latency, and callflow's CPU and memory per call.
package loadtest
