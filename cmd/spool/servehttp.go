package main

import (
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/spoolmq/spool/auth"
	"github.com/spoolmq/spool/internal/httpapi"
)

// httpOptions configure serve's HTTP listener.
type httpOptions struct {
	addr  string      // "" disables the listener
	pprof bool        // mount net/http/pprof under /debug/pprof/
	tls   *tls.Config // serve HTTPS (--http-tls)
	// tokens are the --http-tokens: with them the gateway, lookback API and
	// console authenticate and decide with the broker's ACLs (/metrics,
	// /healthz and /readyz stay open).
	tokens *auth.Tokens
}

func (f *serveFlags) httpOptions() httpOptions {
	return httpOptions{addr: f.http, pprof: f.pprof, tls: f.httpTLS, tokens: f.httpTokens}
}

// readiness is what /readyz reports: not ready until the broker has
// recovered its storage and loaded its coordinator (Start returned) and
// every service is up, and not ready again once shutdown has begun, so a
// load balancer stops sending before the listeners close.
type readiness struct {
	state atomic.Int32 // 0 starting, 1 ready, 2 stopping
}

func (r *readiness) setReady()    { r.state.Store(1) }
func (r *readiness) setStopping() { r.state.Store(2) }

func (r *readiness) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	switch r.state.Load() {
	case 1:
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "ready\n")
	case 2:
		httpapi.WriteProblem(w, http.StatusServiceUnavailable, "spool is shutting down")
	default:
		httpapi.WriteProblem(w, http.StatusServiceUnavailable, "spool is starting: storage recovery or the group coordinator's load is not finished")
	}
}

// newServeMux returns serve's HTTP mux with the operational endpoints:
// /metrics (Prometheus), /healthz (the process answers), /readyz (see
// readiness) and, when asked for, /debug/pprof/. Services mount their own
// handlers on it.
func newServeMux(reg *prometheus.Registry, ready *readiness, opts httpOptions) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "ok\n")
	})
	mux.Handle("GET /readyz", ready)
	if opts.pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return mux
}

// newLogger returns the logger of `spool serve`: text (logfmt) or JSON
// lines on w at level.
func newLogger(w io.Writer, format string, level slog.Level) (*slog.Logger, error) {
	opts := &slog.HandlerOptions{Level: level}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	default:
		return nil, fmt.Errorf("serve: --log-format %q: want text or json", format)
	}
}
