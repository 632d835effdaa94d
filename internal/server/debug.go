package server

import (
	"net/http"
	"net/http/pprof"
)

// pprofHandler serves Go's profiler ([debug] pprof_listen, loopback only):
// the load tool reads CPU and heap profiles and goroutine dumps from it.
// Registered on a mux of its own, never on the web inbox's.
func pprofHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}
