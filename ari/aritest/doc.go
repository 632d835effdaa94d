// Package aritest is a fake Asterisk 20 for tests, in the style of net/http/httptest:
// real HTTP and a real event websocket on 127.0.0.1 speaking ARI with the event order,
// JSON shapes and error codes of a real Asterisk 20.20.1, plus scripted callers and agents.
package aritest
