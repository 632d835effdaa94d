// Package ari is callflow's Stasis transport: it runs the inbound calls
// that Asterisk hands to the ARI application, one handler goroutine per
// call, and implements applets.Call over ARI REST requests and events.
//
// Why not the native client of github.com/CyCoreSystems/ari/v6: its
// per-subscription 100-event buffers drop events (StasisEnd included)
// when a subscriber falls behind; it reconnects silently and loses the
// events of the gap, and after an Asterisk restart dead channels never
// get their StasisEnd; its REST calls have no timeout or context;
// ari.Once leaks a goroutine and a subscription when its context ends
// first; ext/play loses the keys typed between prompts and never reports
// a hang-up; its logger is golang.org/x/exp/slog's; and `go test -race`
// reports a race on its connected flag. This package has its own small
// client instead: a deadline on every request, sent over keep-alive
// HTTP/1.1 connections and answered on the asking goroutine (direct.go;
// net/http's Transport hands every request between three goroutines,
// and only a proxy or a recording's download still goes through it),
// coder/websocket for events, and ONE reader goroutine that decodes each
// event and routes it by channel id (Dial events by peer, playbacks and
// recordings by target) to an unbounded per-call queue with a single
// consumer, so the reader never waits on a slow call and no event is
// dropped. After every (re)connect the calls are reconciled against
// GET /channels: gone channels end their calls, the others re-check what
// they were waiting for. Every REST request goes through a requester
// (client.go), so that calls are unit-tested against a scripted Asterisk;
// ari/aritest is the fake Asterisk for end-to-end tests. A node can stand
// by for another on the same Asterisk (standby.go): every node heartbeats
// its application, and a standby moves the calls a dead primary left into
// its own and takes them as the orphans of a restart (orphans.go).
//
// The data model is local too (model.go, events.go): the library's was
// used for two structs, the channel and bridge listings of the reconcile,
// and pulled gogo/protobuf, rotisserie/eris and golang.org/x/exp into the
// build. The local types read Asterisk 20's JSON, creation times
// included, and are checked against its ARI specification and captured
// traffic (testdata/). Events are read by a small scanner of the few
// fields calls use, with encoding/json as the fallback for anything
// unusual: on the real Asterisk's events ari/v6's DecodeEvent cost about
// 20 µs, 2 KB and 43 allocations per event, encoding/json into one small
// struct 5 µs and 11 allocations, the scanner about 1 µs and none.
package ari
