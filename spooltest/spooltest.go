// Package spooltest starts in-process Spool brokers for tests: on
// 127.0.0.1 with a free port, data in t.TempDir(), closed by t.Cleanup.
// Consumer groups accept session timeouts from 100ms (Kafka's and the
// broker's default minimum is 6s), so tests can use short sessions, and
// have no initial rebalance delay (the broker's default is Kafka's 3s).
//
//	srv := spooltest.Start(t)
//	cl, err := kgo.NewClient(kgo.SeedBrokers(srv.Addr()))
package spooltest

import (
	"context"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/spoolmq/spool/broker"
	"github.com/spoolmq/spool/internal/freeport"
)

// Option adjusts a test server's broker.Config before it starts.
type Option func(*broker.Config)

// WithConfig calls fn on the broker.Config, overriding any default set by
// spooltest (Listen "127.0.0.1:0", DataDir t.TempDir(),
// GroupMinSessionTimeout TestMinSessionTimeout, GroupInitialRebalanceDelay
// -1: none).
func WithConfig(fn func(*broker.Config)) Option { return Option(fn) }

// WithoutAutoCreate turns off topic auto-creation, overriding the default
// (on).
func WithoutAutoCreate() Option {
	return func(c *broker.Config) { c.DisableAutoCreateTopics = true }
}

// WithPartitions sets the partition count of auto-created topics,
// overriding the default 1.
func WithPartitions(n int32) Option {
	return func(c *broker.Config) { c.DefaultPartitions = n }
}

// WithLogger sends the broker's logs to l, overriding the default (the
// test's log, at warning level and above).
func WithLogger(l *slog.Logger) Option {
	return func(c *broker.Config) { c.Logger = l }
}

// TestMinSessionTimeout is the smallest consumer group session timeout a
// spooltest broker accepts (broker.Config.GroupMinSessionTimeout).
const TestMinSessionTimeout = 100 * time.Millisecond

// Server is a running in-process broker.
type Server struct {
	cfg broker.Config

	mu sync.Mutex
	b  *broker.Broker
}

// Start starts a broker listening on 127.0.0.1 with a free port and its data
// in t.TempDir(), and registers its Close with t.Cleanup. It fails the test
// if the broker cannot start. The port is reserved for the test until it
// ends (internal/freeport), so that Restart finds it free again.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	cfg := broker.Config{
		DataDir: t.TempDir(),
		Listen:  "127.0.0.1:0",
		// Short sessions for tests; the maximum stays the broker default.
		GroupMinSessionTimeout: TestMinSessionTimeout,
		// No initial rebalance delay (Kafka's and the broker's default is
		// 3s): a test group's first generation completes as soon as its
		// members have joined. Tests of the delay set it with WithConfig.
		GroupInitialRebalanceDelay: -1,
		Logger:                     slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.Listen == "127.0.0.1:0" && len(cfg.Listeners) == 0 {
		cfg.Listen = freeport.Addr(t)
	}
	s := &Server{cfg: cfg}
	s.start(t, cfg)
	t.Cleanup(func() { s.Close() })
	return s
}

func (s *Server) start(t testing.TB, cfg broker.Config) {
	t.Helper()
	b, err := broker.New(cfg)
	if err != nil {
		t.Fatalf("spooltest: %v", err)
	}
	if err := b.Start(context.Background()); err != nil {
		t.Fatalf("spooltest: start broker: %v", err)
	}
	s.mu.Lock()
	s.b = b
	s.mu.Unlock()
}

// Addr returns the broker's address, host:port, to use as a seed broker.
func (s *Server) Addr() string { return s.Broker().Addr() }

// Broker returns the running broker.
func (s *Server) Broker() *broker.Broker {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b
}

// DataDir returns the broker's data directory.
func (s *Server) DataDir() string { return s.cfg.DataDir }

// Restart closes the broker (cleanly: synced and checkpointed) and starts a
// new one on the same data directory and, when it is still free, the same
// port, so clients reconnect to the address they know. If the port was
// taken meanwhile, the new broker gets another free port: read Addr again.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	old := s.Broker()
	addr := old.Addr()
	if err := old.Close(); err != nil {
		t.Fatalf("spooltest: close broker: %v", err)
	}
	cfg := s.cfg
	cfg.Listen = addr
	if ln, err := net.Listen("tcp", addr); err != nil {
		cfg.Listen = "127.0.0.1:0"
	} else {
		ln.Close()
	}
	s.start(t, cfg)
}

// Close stops the broker; it is idempotent and also run by t.Cleanup.
func (s *Server) Close() error { return s.Broker().Close() }

// testWriter writes log lines to the test log.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(p))
	return len(p), nil
}
