package gateway

import (
	"net/http"
	"time"
)

// Hooks receive the gateway's events, for metrics (gatewayprom implements
// them for Prometheus). Methods are called synchronously and must be fast.
type Hooks interface {
	// HTTPDone is called after each API request: the route pattern (as in
	// the OpenAPI document, "" for no route), the status and the duration
	// (for streams, their whole life).
	HTTPDone(route string, status int, d time.Duration)
	// Produced is called for records acknowledged by the broker, by kind:
	// "record", "event" or "command".
	Produced(kind string, n int)
	// RequestFinished is called when this instance moves a request to a
	// final state.
	RequestFinished(s State)
	// CallbackAttempt is called after each callback attempt with the
	// callback's state after it (pending, delivered, gone, dead).
	CallbackAttempt(state string)
}

// NopHooks does nothing; it is the default.
type NopHooks struct{}

func (NopHooks) HTTPDone(string, int, time.Duration) {}
func (NopHooks) Produced(string, int)                {}
func (NopHooks) RequestFinished(State)               {}
func (NopHooks) CallbackAttempt(string)              {}

// statusWriter records the status a handler wrote.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Flush passes on to the real writer (SSE).
func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController and the WebSocket upgrade reach the
// real writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
