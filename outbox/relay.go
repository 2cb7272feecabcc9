package outbox

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/trace"

	"github.com/spoolmq/spool/internal/msgtrace"
	"github.com/spoolmq/spool/producer"
)

// Config configures a Relay. Zero fields take the defaults in their
// comments.
type Config struct {
	// DB is the database holding the outbox (required).
	DB *sql.DB
	// Dialect of DB; default: detected from DB's driver.
	Dialect Dialect
	// Table is the outbox table; default spool_outbox.
	Table string
	// Brokers are the seed brokers; default 127.0.0.1:9092.
	Brokers []string
	// ClientOptions are extra franz-go options (TLS, SASL, ...), applied
	// after the relay's own.
	ClientOptions []kgo.Opt
	// ID names this relay in the lease table; default host-pid-random.
	ID string
	// BatchSize is the most rows one round reads and publishes; default 2000.
	BatchSize int
	// PollInterval is how often an idle relay looks for new rows; default
	// 200ms. While LISTEN/NOTIFY is active (PostgreSQL) it polls at five
	// times this, as a safety net.
	PollInterval time.Duration
	// NoListen turns LISTEN/NOTIFY off (poll only), for PostgreSQL behind a
	// pooler in transaction mode (PgBouncer); default false.
	NoListen bool
	// LeaseTTL is how long a bucket lease lasts without renewal: a crashed
	// relay's buckets are taken over after this; default 15s. It must be at
	// least three times PublishTimeout.
	LeaseTTL time.Duration
	// PublishTimeout bounds how long a record may wait for the broker
	// before the round fails and is retried; default 5s, at least 1s.
	PublishTimeout time.Duration
	// MaxRecordBytes is the largest record (key + value + headers) the
	// relay sends; a bigger row is rejected before it is sent. Default
	// 999000, which fits franz-go's default batch limit (1,000,012 bytes);
	// raising it raises that limit to MaxRecordBytes + 1012.
	MaxRecordBytes int
	// RetryBackoff is the first wait after a failed round, doubling to
	// RetryBackoffMax; defaults 100ms and 5s.
	RetryBackoff, RetryBackoffMax time.Duration
	// Retention is how long events are kept after Add; those past it are
	// deleted once published (a pending row is never deleted); default
	// 24h. Negative: delete published rows at the next cleanup.
	Retention time.Duration
	// CleanupInterval is how often published rows past Retention are
	// deleted, CleanupBatch rows per statement; defaults 1m and 1000.
	CleanupInterval time.Duration
	CleanupBatch    int
	// StatsInterval is how often the backlog is counted for
	// Hooks.Backlog; default 10s.
	StatsInterval time.Duration
	// ShutdownTimeout is how long Close waits for records in flight
	// before closing the client; default 10s.
	ShutdownTimeout time.Duration
	// Logger receives the relay's logs; default: discarded.
	Logger *slog.Logger
	// Hooks receive metrics events; default: none.
	Hooks Hooks
	// TracerProvider, when set, makes the relay start an OpenTelemetry
	// "send {topic}" span per record (messaging semantic conventions), a
	// child of the trace context stored by Add; the record's traceparent
	// is rewritten to the span. Default: no spans.
	TracerProvider trace.TracerProvider
}

// WithDefaults returns c with the defaults filled in.
func (c Config) WithDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	if c.Table == "" {
		c.Table = DefaultTable
	}
	if len(c.Brokers) == 0 {
		c.Brokers = []string{"127.0.0.1:9092"}
	}
	if c.ID == "" {
		host, _ := os.Hostname()
		var b [4]byte
		rand.Read(b[:])
		c.ID = fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:]))
	}
	if c.BatchSize == 0 {
		c.BatchSize = 2000
	}
	def(&c.PollInterval, 200*time.Millisecond)
	def(&c.LeaseTTL, 15*time.Second)
	def(&c.PublishTimeout, 5*time.Second)
	if c.MaxRecordBytes == 0 {
		c.MaxRecordBytes = 999000
	}
	def(&c.RetryBackoff, 100*time.Millisecond)
	def(&c.RetryBackoffMax, 5*time.Second)
	def(&c.Retention, 24*time.Hour)
	def(&c.CleanupInterval, time.Minute)
	if c.CleanupBatch == 0 {
		c.CleanupBatch = 1000
	}
	def(&c.StatsInterval, 10*time.Second)
	def(&c.ShutdownTimeout, 10*time.Second)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Hooks == nil {
		c.Hooks = NopHooks{}
	}
	return c
}

// Validate reports a configuration the relay cannot run with.
func (c Config) Validate() error {
	switch {
	case c.DB == nil:
		return errors.New("outbox: relay: no DB")
	case !tableName.MatchString(c.Table):
		return fmt.Errorf("outbox: relay: bad table name %q", c.Table)
	case c.BatchSize < 1:
		return fmt.Errorf("outbox: relay: BatchSize %d < 1", c.BatchSize)
	case c.PublishTimeout < time.Second:
		return fmt.Errorf("outbox: relay: PublishTimeout %v below franz-go's minimum of 1s", c.PublishTimeout)
	case c.LeaseTTL < 3*c.PublishTimeout:
		return fmt.Errorf("outbox: relay: LeaseTTL %v must be at least 3 × PublishTimeout %v", c.LeaseTTL, c.PublishTimeout)
	case c.MaxRecordBytes < 1:
		return fmt.Errorf("outbox: relay: MaxRecordBytes %d < 1", c.MaxRecordBytes)
	}
	return nil
}

// Relay publishes committed outbox rows to Kafka in commit order per key,
// and marks them published. Several relays (in one process or many) share
// an outbox through bucket leases; see docs/outbox.md for the design and
// its invariant.
type Relay struct {
	cfg   Config
	d     Dialect
	q     queries
	log   *slog.Logger
	hooks Hooks
	wake  chan struct{}

	prod   *producer.Producer
	cl     *kgo.Client
	tracer trace.Tracer // nil: no spans

	startOnce sync.Once
	closeOnce sync.Once
	started   atomic.Bool
	cancel    context.CancelFunc
	runDone   chan struct{}
	wg        sync.WaitGroup

	listening  atomic.Bool
	cleanerOn  atomic.Bool // holds bucket 0: this relay deletes old published rows
	published  atomic.Int64
	rejected   atomic.Int64
	retried    atomic.Int64
	heldLeases atomic.Int64

	marks       chan markJob // to the marker goroutine
	inflight    inflight
	markedRound atomic.Uint64 // rounds up to this one are marked (or failed)
	markFailed  atomic.Bool

	aheadUsed, aheadDropped atomic.Int64 // reads ahead used and dropped

	// Owned by the run goroutine.
	roundNo   uint64
	buckets   []int32
	deadline  time.Time // publish only while now + PublishTimeout is before this
	nextLease time.Time
	backoff   time.Duration
	// alone holds rows refused with a batch-wide error (see batchRefusal)
	// while sent with others: each is sent in a round of its own next, so
	// the refusal lands on the row that caused it.
	alone map[int64]bool
	ahead *readAhead // the next round's read, in flight

	// onStage, set by tests before Start (export_test.go), is called at
	// points of a round; nil otherwise.
	onStage func(stage, []*pending)
}

// stage is a point in a publishing round, for tests.
type stage int

const (
	stageSend    stage = iota // the round's records are about to be produced
	stageAck                  // one record has its outcome (from the producer's callback)
	stageAcked                // every record of the round has its outcome
	stageMarked               // a round's acknowledged rows are marked published
	stageFetched              // a round's rows are read, nothing sent yet
	stageDropped              // a round read too close to its lease deadline is dropped unsent
)

func (r *Relay) stage(s stage, rows []*pending) {
	if r.onStage != nil {
		r.onStage(s, rows)
	}
}

// New returns a relay for cfg; Start runs it.
func New(cfg Config) (*Relay, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	d, err := dialectOf(cfg.DB, cfg.Dialect)
	if err != nil {
		return nil, err
	}
	return &Relay{
		cfg: cfg, d: d, q: newQueries(d, cfg.Table), log: cfg.Logger.With("relay", cfg.ID),
		hooks: cfg.Hooks, wake: make(chan struct{}, 1), runDone: make(chan struct{}),
		marks: make(chan markJob), inflight: inflight{ids: map[int64]uint64{}},
	}, nil
}

// Start checks the schema, connects the producer and starts publishing in
// the background until Close (or ctx ends). It fails with ErrNoSchema if
// Migrate has not been run.
func (r *Relay) Start(ctx context.Context) error {
	err := errors.New("outbox: relay already started")
	r.startOnce.Do(func() { err = r.start(ctx) })
	return err
}

func (r *Relay) start(ctx context.Context) error {
	if err := checkVersion(ctx, r.cfg.DB, r.cfg.Table); err != nil {
		return err
	}
	kopts := []kgo.Opt{
		// Records of a round are buffered whole before anything is sent,
		// so a failed batch fails every later record of its partition
		// (franz-go fails the partition's buffer): a key never has a later
		// row acknowledged after an earlier one failed.
		kgo.ManualFlushing(),
		kgo.MaxBufferedRecords(r.cfg.BatchSize + 1),
		kgo.RecordDeliveryTimeout(r.cfg.PublishTimeout),
		kgo.ProducerBatchMaxBytes(int32(r.cfg.MaxRecordBytes + 1012)),
		kgo.ClientID("spool-outbox-relay"),
		// Topics are created on first use where the broker allows it
		// (auto.create.topics.enable); where it does not, the row is
		// rejected and its key stops.
		kgo.AllowAutoTopicCreation(),
		// franz-go refreshes metadata at most every 5 s by default, so
		// after a broker restart or a leader move the relay would sit
		// that long before sending to the new leader; 1 s bounds the
		// stall and costs at most one Metadata request a second.
		kgo.MetadataMinAge(time.Second),
	}
	prod, err := producer.New(producer.WithBrokers(r.cfg.Brokers...),
		producer.WithClientOptions(append(kopts, r.cfg.ClientOptions...)...))
	if err != nil {
		return fmt.Errorf("outbox: relay: %w", err)
	}
	r.prod, r.cl = prod, prod.Client()
	if r.cfg.TracerProvider != nil {
		r.tracer = r.cfg.TracerProvider.Tracer(msgtrace.ScopeName)
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	r.cancel = cancel
	r.started.Store(true)
	markerDone := make(chan struct{})
	go func() { defer close(markerDone); r.marker() }()
	go func() {
		defer close(r.runDone)
		r.run(ctx)
		close(r.marks)
		<-markerDone
	}()
	r.wg.Add(1)
	go func() { defer r.wg.Done(); r.janitor(ctx) }()
	if r.d == Postgres && !r.cfg.NoListen {
		r.wg.Add(1)
		go func() { defer r.wg.Done(); r.listen(ctx) }()
	}
	r.log.Info("outbox relay started", "table", r.cfg.Table, "brokers", r.cfg.Brokers, "dialect", r.d.String())
	return nil
}

// Close stops the relay: it lets the round in flight finish (up to
// ShutdownTimeout), releases its leases so other relays take over at
// once, and closes the producer. Idempotent.
func (r *Relay) Close() {
	r.closeOnce.Do(func() {
		if !r.started.Load() {
			return
		}
		r.cancel()
		select {
		case <-r.runDone:
		case <-time.After(r.cfg.ShutdownTimeout):
			r.log.Warn("outbox relay: records still in flight at shutdown; closing the client (they are published again later)")
		}
		r.prod.Close() // fails anything still buffered, so the round returns
		<-r.runDone
		r.wg.Wait()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := r.releaseAll(ctx); err != nil {
			r.log.Warn("outbox relay: release leases", "err", err)
		}
		r.log.Info("outbox relay stopped")
	})
}

// Wake makes an idle relay look for new rows now: call it after committing
// a transaction that added events when the relay runs in the same process
// (on PostgreSQL, LISTEN/NOTIFY does this across processes).
func (r *Relay) Wake() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Stats are a relay's counters since Start.
type Stats struct {
	Published int64 // rows acknowledged and marked published
	Rejected  int64 // rows rejected for good
	Retried   int64 // row failures retried
	Buckets   int   // buckets leased now
	Listening bool  // LISTEN/NOTIFY is active
}

// Stats returns the relay's counters.
func (r *Relay) Stats() Stats {
	return Stats{Published: r.published.Load(), Rejected: r.rejected.Load(), Retried: r.retried.Load(),
		Buckets: int(r.heldLeases.Load()), Listening: r.listening.Load()}
}

// run is the relay's one publishing goroutine: lease upkeep and rounds.
func (r *Relay) run(ctx context.Context) {
	defer r.dropReadAhead()
	for ctx.Err() == nil {
		now := time.Now()
		if !now.Before(r.nextLease) || now.Add(r.cfg.PublishTimeout).After(r.deadline) {
			r.dropReadAhead() // the buckets may change
			if err := r.maintainLeases(ctx); err != nil && ctx.Err() == nil {
				r.log.Warn("outbox relay: leases", "err", err)
				r.nextLease = time.Now().Add(r.cfg.RetryBackoff)
			}
		}
		if len(r.buckets) == 0 || time.Now().Add(r.cfg.PublishTimeout).After(r.deadline) {
			r.sleep(ctx, time.Until(r.nextLease), true)
			continue
		}
		n, failed, err := r.round(ctx)
		switch {
		case errors.Is(err, errPastDeadline):
			// Renew the leases (the loop's first step) and go on.
		case err != nil || failed:
			if err != nil && ctx.Err() == nil {
				r.log.Warn("outbox relay: round failed; retrying", "err", err, "backoff", r.backoff)
			}
			r.backoff = min(max(2*r.backoff, r.cfg.RetryBackoff), r.cfg.RetryBackoffMax)
			r.sleep(ctx, r.backoff, false)
		case n == r.cfg.BatchSize || r.ahead != nil:
			r.backoff = 0
		default:
			r.backoff = 0
			poll := r.cfg.PollInterval
			if r.listening.Load() {
				poll *= 5
			}
			r.sleep(ctx, min(poll, time.Until(r.nextLease)), true)
		}
	}
}

// sleep waits for d, ctx, or (if wakeable) a wake-up.
func (r *Relay) sleep(ctx context.Context, d time.Duration, wakeable bool) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	wake := r.wake
	if !wakeable {
		wake = nil
	}
	select {
	case <-ctx.Done():
	case <-t.C:
	case <-wake:
	}
}

// janitor deletes published rows past Retention (on the relay holding
// bucket 0, so one relay does it) and reports the backlog.
func (r *Relay) janitor(ctx context.Context) {
	clean := time.NewTicker(r.cfg.CleanupInterval)
	defer clean.Stop()
	stats := time.NewTicker(r.cfg.StatsInterval)
	defer stats.Stop()
	seen := map[string]bool{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-clean.C:
			if r.cleanerOn.Load() {
				if n, err := r.cleanup(ctx); err != nil && ctx.Err() == nil {
					r.log.Warn("outbox relay: delete published rows", "err", err)
				} else if n > 0 {
					r.log.Debug("outbox relay: deleted published rows", "rows", n)
				}
			}
		case <-stats.C:
			if err := r.reportBacklog(ctx, seen); err != nil && ctx.Err() == nil {
				r.log.Warn("outbox relay: count backlog", "err", err)
			}
		}
	}
}

// cleanup deletes published rows older than Retention, CleanupBatch at a
// time, until none is left.
func (r *Relay) cleanup(ctx context.Context) (int64, error) {
	cut := time.Now().Add(-r.cfg.Retention).UnixMilli()
	var total int64
	for ctx.Err() == nil {
		res, err := r.cfg.DB.ExecContext(ctx, r.q.cleanup, cut, r.cfg.CleanupBatch)
		if err != nil {
			return total, err
		}
		n, _ := res.RowsAffected()
		total += n
		if n < int64(r.cfg.CleanupBatch) {
			break
		}
	}
	return total, nil
}

func (r *Relay) reportBacklog(ctx context.Context, seen map[string]bool) error {
	rep, err := readBacklog(ctx, r.cfg.DB, r.q)
	if err != nil {
		return err
	}
	now := time.Now()
	live := map[string]bool{}
	for _, t := range rep {
		live[t.Topic] = true
		seen[t.Topic] = true
		r.hooks.Backlog(t.Topic, t.Pending, t.Rejected, now.Sub(t.Oldest))
	}
	for t := range seen {
		if !live[t] {
			r.hooks.Backlog(t, 0, 0, 0)
			delete(seen, t)
		}
	}
	return nil
}
