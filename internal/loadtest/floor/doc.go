// Package floor is the yardstick for callflow's cost: a minimal raw ARI
// client (net/http, one websocket, encoding/json) that walks only the example
// support flow's agent path, with no store, trace or log. callflow-load
// --floor runs it in callflow's place, so both are measured the same way.
package floor
