// Package store keeps callflow's state in one SQLite file: calls with their
// step traces, voicemails, round-robin counters, users with an audit of their
// changes, and flows edited on the web. Call-time writes never block a call.
package store
