package lookback

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/trace"
)

// Config configures a Service. Store is required; the zero value of every
// other field is its default.
type Config struct {
	// Brokers are the seed brokers (default 127.0.0.1:9092).
	Brokers []string
	// ClientOptions are extra franz-go options (TLS, SASL) for every client
	// the service opens (default none).
	ClientOptions []kgo.Opt
	// Group is the archiver's consumer group (default "spool-lookback").
	Group string
	// Include are regular expressions of topics to archive (default
	// every topic: ".*"). New matching topics are picked up within
	// MetadataMaxAge.
	Include []string
	// Exclude are regular expressions of topics not to archive, on top of
	// internal topics (names starting "__") and replay topics
	// ("spool.replay.*"), which are never archived (default none).
	Exclude []string
	// MetadataMaxAge is how often the archiver looks for new topics
	// (default 10s).
	MetadataMaxAge time.Duration
	// ReceiptsTopic is the topic agents publish receipts to (default
	// "spool.receipts", agent.DefaultReceiptsTopic).
	ReceiptsTopic string
	// MaxAge removes events whose record timestamp is older (default 0:
	// keep forever).
	MaxAge time.Duration
	// MaxBytes removes the oldest events once the compressed payloads
	// exceed it (default 0: no limit).
	MaxBytes int64
	// RetentionInterval is how often retention runs (default 1m).
	RetentionInterval time.Duration
	// ReplayCheckpoint is how many acknowledged events a replay sends
	// between checkpoints (default 5000); it keeps at most half as many
	// in flight. After a crash, about 1.5 times this many are sent again
	// at most (those acknowledged since the last checkpoint and those in
	// flight); after a clean stop, only the acknowledged part of the
	// page in flight (pages of min(ReplayCheckpoint, 1000) events).
	ReplayCheckpoint int
	// Store is the archive (required): OpenSQLite or OpenPostgres.
	Store Store
	// Rules are the verification rules evaluated as events arrive
	// (default none; see LoadRules).
	Rules []Rule
	// Logger receives the service's logs (default: discard).
	Logger *slog.Logger
	// Authorizer authenticates the HTTP API's requests and decides them
	// with Kafka ACLs (default nil: every request is allowed; see
	// Authorizer).
	Authorizer Authorizer
	// Hooks receive metrics events (default: none; see lookbackprom).
	Hooks Hooks
	// TracerProvider, when set, makes replays start an OpenTelemetry
	// "send {topic}" span for each event they republish: the root of a new
	// trace (a replay is a new run) linked to the event's original trace,
	// and the replayed record's traceparent is the span's. Default nil: no
	// spans, and replayed records keep their original traceparent.
	TracerProvider trace.TracerProvider
	// Now is the clock (default time.Now); tests set it.
	Now func() time.Time
}

// Hooks receive the service's metrics events. Implementations must be
// safe for concurrent use and fast.
type Hooks interface {
	// Archived is called after a batch is durable and before its offsets
	// are committed.
	Archived(events, bytes int, d time.Duration)
	// StoreFailed is called when an append fails (it is retried).
	StoreFailed(err error)
	// RuleChecked is called when a rule's expectation is settled: met in
	// time, or violated (missed its deadline).
	RuleChecked(rule string, violated bool)
	// RuleHoles is called with a rule's number of open holes (violations
	// not completed since) when it changes.
	RuleHoles(rule string, open int)
}

// NopHooks ignores every event.
type NopHooks struct{}

func (NopHooks) Archived(int, int, time.Duration) {}
func (NopHooks) StoreFailed(error)                {}
func (NopHooks) RuleChecked(string, bool)         {}
func (NopHooks) RuleHoles(string, int)            {}

// WithDefaults returns c with defaults filled in.
func (c Config) WithDefaults() Config {
	if len(c.Brokers) == 0 {
		c.Brokers = []string{"127.0.0.1:9092"}
	}
	if c.Group == "" {
		c.Group = "spool-lookback"
	}
	if len(c.Include) == 0 {
		c.Include = []string{".*"}
	}
	if c.MetadataMaxAge <= 0 {
		c.MetadataMaxAge = 10 * time.Second
	}
	if c.ReceiptsTopic == "" {
		c.ReceiptsTopic = "spool.receipts"
	}
	if c.ReplayCheckpoint <= 0 {
		c.ReplayCheckpoint = 5000
	}
	if c.RetentionInterval <= 0 {
		c.RetentionInterval = time.Minute
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Hooks == nil {
		c.Hooks = NopHooks{}
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Validate reports whether c can run.
func (c Config) Validate() error {
	if c.Store == nil {
		return errors.New("lookback: Config.Store is required")
	}
	for _, p := range append(append([]string{}, c.Include...), c.Exclude...) {
		if _, err := regexp.Compile(p); err != nil {
			return fmt.Errorf("lookback: topic pattern %q: %w", p, err)
		}
	}
	if c.MaxAge < 0 || c.MaxBytes < 0 {
		return errors.New("lookback: MaxAge and MaxBytes must not be negative")
	}
	return validateRules(c.Rules)
}

// Service is the lookback service: the archiver, retention, rules,
// replays and the HTTP API.
type Service struct {
	cfg     Config
	exclude []*regexp.Regexp
	rules   *ruleEngine
	replays *replayer
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	closeMu sync.Mutex
	closed  bool
	mu      struct {
		sync.Mutex
		started bool
		lastErr error
	}
}

// New returns a Service for cfg; Start runs it.
func New(cfg Config) (*Service, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Service{cfg: cfg}
	for _, p := range append([]string{`^__`, `^spool\.replay\.`}, cfg.Exclude...) {
		s.exclude = append(s.exclude, regexp.MustCompile(p))
	}
	s.rules = newRuleEngine(cfg.Rules, cfg.Hooks, cfg.Now, cfg.ReceiptsTopic)
	s.replays = newReplayer(s)
	return s, nil
}

// Store returns the service's store.
func (s *Service) Store() Store { return s.cfg.Store }

// Start starts the archiver, retention, rule deadlines and any replay
// left running by a previous process (it resumes from its checkpoint).
// It returns once the archiver's client is created.
func (s *Service) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.started {
		return errors.New("lookback: already started")
	}
	cl, err := s.archiverClient()
	if err != nil {
		return err
	}
	ctx, s.cancel = context.WithCancel(ctx)
	s.mu.started = true
	s.wg.Add(3)
	go func() {
		defer s.wg.Done()
		s.archive(ctx, cl)
		// A client blocking rebalances cannot leave its group on Close.
		cl.AllowRebalance()
		cl.Close()
	}()
	go func() { defer s.wg.Done(); s.retain(ctx) }()
	go func() { defer s.wg.Done(); s.rules.run(ctx) }()
	s.replays.resume(ctx)
	return nil
}

// Close stops the service and waits for its goroutines. It does not close
// the store (the caller opened it). It is safe to call more than once.
func (s *Service) Close() error {
	s.closeMu.Lock()
	defer s.closeMu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if s.cancel != nil {
		s.cancel()
	}
	s.wg.Wait()
	s.replays.wait()
	return nil
}

// Handler returns the HTTP API, rooted at /api/lookback/.
func (s *Service) Handler() http.Handler { return s.handler() }

func (s *Service) excluded(topic string) bool {
	for _, re := range s.exclude {
		if re.MatchString(topic) {
			return true
		}
	}
	return false
}

func (s *Service) retain(ctx context.Context) {
	if s.cfg.MaxAge == 0 && s.cfg.MaxBytes == 0 {
		return
	}
	t := time.NewTicker(s.cfg.RetentionInterval)
	defer t.Stop()
	for {
		var cutoff time.Time
		if s.cfg.MaxAge > 0 {
			cutoff = s.cfg.Now().Add(-s.cfg.MaxAge)
		}
		n, err := s.cfg.Store.Retain(ctx, cutoff, s.cfg.MaxBytes)
		switch {
		case err != nil && ctx.Err() == nil:
			s.cfg.Logger.Warn("lookback: retention failed", "err", err)
		case n > 0:
			s.cfg.Logger.Info("lookback: retention removed events", "events", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
