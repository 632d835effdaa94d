// Package web is the HTTP side of `callflow serve`: the voicemail inbox,
// call history with step timelines and recordings, flows with diagrams and
// lint results, stats, accounts and users, the JSON API (API.md), /metrics, /healthz.
package web
