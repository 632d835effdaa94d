// Package web is the HTTP side of `callflow serve`: the voicemail inbox,
// call history with step timelines, flows with diagrams and lint results,
// stats, the JSON API (API.md), /metrics and /healthz.
package web
