// Package store keeps callflow's state in one SQLite file: calls with their
// step traces, voicemails, round-robin counters, users, and flows edited on the web.
// Call-time writes go through an asynchronous writer that never blocks a call.
package store
