// Package gateway is Spool's HTTP front door, a Kafka client that runs inside
// `spool serve` (over loopback to the embedded broker) or standalone against
// any Kafka cluster (`spool gateway --brokers ...`), several instances behind
// a load balancer.
//
// It serves:
//
//   - produce: POST /api/topics/{topic}/records (JSON records) and
//     POST /api/topics/{topic}/events (CloudEvents, binary or structured
//     mode), answered once the broker acknowledged them (acks=all); an
//     Idempotency-Key makes a retried POST return the first answer;
//   - asynchronous commands: POST /api/commands/{topic} (or a produce with
//     Prefer: respond-async) stores a request, produces the command with
//     the headers correlation_id (the request id) and spool_reply_to (the
//     reply topic), and answers 202 with Location /api/requests/{id};
//     GET polls it (Prefer: wait=N holds the poll), DELETE cancels it;
//   - replies: any record on the reply topic with the request's
//     correlation_id header finishes it (spool_status ok or error);
//   - push: Server-Sent Events and WebSocket for a request's status, SSE
//     for a topic's records with Last-Event-ID resume;
//   - callbacks signed per Standard Webhooks, retried with backoff and
//     dead-lettered after the last attempt.
//
// Request status lives in a Store shared by the instances: SQLite by
// default, PostgreSQL to scale out. docs/gateway.md is the user guide.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/trace"

	"github.com/spoolmq/spool/internal/msgtrace"
)

// Record header names of the request/reply contract. They are part of the
// wire format: services in any language read and write them.
const (
	HeaderCorrelationID = "correlation_id" // the request id, on the command and on its reply
	HeaderReplyTo       = "spool_reply_to" // on the command: the topic to reply to
	HeaderStatus        = "spool_status"   // on a reply: StatusOK (default) or StatusError
	HeaderExpiresAt     = "spool_expires_at"
	HeaderCancel        = "spool_cancel" // on a cancellation event: "true"
	StatusOK            = "ok"
	StatusError         = "error"
	// CancelType is the ce_type of the cancellation event DELETE produces.
	CancelType = "spool.command.cancelled"
)

// Config configures a Gateway. The zero value works against a broker on
// 127.0.0.1:9092 with its store in ./spool-gateway.db.
type Config struct {
	// Brokers are the seed brokers. Default 127.0.0.1:9092.
	Brokers []string
	// ClientOptions are extra franz-go options (TLS, SASL) for the
	// gateway's clients.
	ClientOptions []kgo.Opt
	// Store keeps request status. Default: a SQLite store at StorePath,
	// closed by Close.
	Store Store
	// StorePath is the SQLite file of the default store, or a
	// postgres:// URL. Default "spool-gateway.db".
	StorePath string
	// ReplyTopic is where services reply to commands. Default
	// "spool.gateway.replies"; created at Start if missing.
	ReplyTopic string
	// RequestTimeout is how long a request waits for its reply before it
	// expires, unless the submit asks for less (?timeout=). Default 1h.
	RequestTimeout time.Duration
	// Retention is how long finished requests and produce idempotency keys
	// are kept. Default 24h.
	Retention time.Duration
	// MaxBodyBytes limits request bodies. Default 1 MiB.
	MaxBodyBytes int64
	// MaxRecords limits the records of one produce request. Default 500.
	MaxRecords int
	// ProduceTimeout bounds waiting for the broker's acknowledgement.
	// Default 10s.
	ProduceTimeout time.Duration
	// MaxWait caps Prefer: wait=N. Default 60s.
	MaxWait time.Duration
	// PollInterval is the Retry-After advised to pollers. Default 1s.
	PollInterval time.Duration
	// Auth authorizes requests. Default nil: every request is allowed
	// (the cmd turns tokens on for non-loopback listeners).
	Auth Authorizer
	// RateLimit is the sustained requests per second allowed per
	// principal (per client IP when Auth is nil). Default 0: unlimited.
	RateLimit float64
	// RateBurst is the burst above RateLimit. Default 2*RateLimit, at least 1.
	RateBurst int
	// Callback configures result callbacks.
	Callback CallbackConfig
	// Hooks receive events for metrics. Default NopHooks.
	Hooks Hooks
	// Logger receives the gateway's logs. Default: discarded.
	Logger *slog.Logger
	// TracerProvider, when set, makes the gateway start an OpenTelemetry
	// "send {topic}" span for each record it produces (records, events,
	// commands, callback dead letters): a child of the request's W3C
	// traceparent, and the parent of whoever processes the record (the
	// record's traceparent is the span's). Default nil: no spans; the
	// request's traceparent is copied to the record as it is.
	TracerProvider trace.TracerProvider
	// WebSocketOrigins are the Origin host patterns (path.Match syntax)
	// allowed for cross-origin WebSocket connections. Default none: only
	// same-origin browsers (non-browser clients send no Origin).
	WebSocketOrigins []string
	// ExpireInterval is how often open requests are checked for expiry.
	// Default 1s.
	ExpireInterval time.Duration
}

// WithDefaults returns c with its zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	if len(c.Brokers) == 0 {
		c.Brokers = []string{"127.0.0.1:9092"}
	}
	if c.StorePath == "" {
		c.StorePath = "spool-gateway.db"
	}
	if c.ReplyTopic == "" {
		c.ReplyTopic = "spool.gateway.replies"
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = time.Hour
	}
	if c.Retention <= 0 {
		c.Retention = 24 * time.Hour
	}
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = 1 << 20
	}
	if c.MaxRecords <= 0 {
		c.MaxRecords = 500
	}
	if c.ProduceTimeout <= 0 {
		c.ProduceTimeout = 10 * time.Second
	}
	if c.MaxWait <= 0 {
		c.MaxWait = 60 * time.Second
	}
	if c.PollInterval <= 0 {
		c.PollInterval = time.Second
	}
	if c.RateLimit > 0 && c.RateBurst <= 0 {
		c.RateBurst = max(1, int(2*c.RateLimit))
	}
	if c.ExpireInterval <= 0 {
		c.ExpireInterval = time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Hooks == nil {
		c.Hooks = NopHooks{}
	}
	c.Callback = c.Callback.withDefaults()
	return c
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	if err := c.Callback.validate(); err != nil {
		return err
	}
	if c.RateLimit < 0 {
		return fmt.Errorf("gateway: RateLimit %v: must not be negative", c.RateLimit)
	}
	return nil
}

// Gateway is the HTTP gateway. Create with New, then Start; serve Handler.
type Gateway struct {
	cfg      Config
	store    Store
	ownStore bool
	cl       *kgo.Client // produce: commands, records, cancellations, callback dead letters
	adm      *kadm.Client
	hub      hub
	limits   *limiter
	mux      *http.ServeMux
	cb       *callbacks
	log      *slog.Logger
	tracer   trace.Tracer // nil: no spans (Config.TracerProvider not set)

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	// inflight counts produces still waiting for the broker (produceWait).
	inflight sync.WaitGroup
	// streams ends open SSE and WebSocket streams (EndStreams, Close).
	streams    context.Context
	endStreams context.CancelFunc

	startOnce, closeOnce sync.Once
	started              bool
	closeErr             error
}

// New returns a gateway for cfg (after WithDefaults). It connects nothing
// yet; Start does.
func New(cfg Config) (*Gateway, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	g := &Gateway{cfg: cfg, log: cfg.Logger, store: cfg.Store}
	if cfg.TracerProvider != nil {
		g.tracer = cfg.TracerProvider.Tracer(msgtrace.ScopeName)
	}
	g.hub.init()
	g.streams, g.endStreams = context.WithCancel(context.Background())
	g.limits = newLimiter(cfg.RateLimit, cfg.RateBurst)
	g.mux = http.NewServeMux()
	for _, rt := range routes(g) {
		g.mux.Handle(rt.method+" "+rt.pattern, g.wrap(rt.pattern, rt.handle))
	}
	g.mux.Handle("/api/", g.wrap("", func(w http.ResponseWriter, r *http.Request) error { g.notFound(w, r); return nil }))
	return g, nil
}

// Start opens the store (unless Config.Store is set), connects the Kafka
// clients, makes sure the reply topic exists, and starts consuming replies,
// expiring requests and delivering callbacks, until Close.
func (g *Gateway) Start(ctx context.Context) error {
	err := errors.New("gateway: already started")
	g.startOnce.Do(func() { err = g.start(ctx) })
	return err
}

func (g *Gateway) start(ctx context.Context) error {
	if g.store == nil {
		s, err := OpenStore(ctx, g.cfg.StorePath)
		if err != nil {
			return err
		}
		g.store, g.ownStore = s, true
	}
	opts := append([]kgo.Opt{
		kgo.SeedBrokers(g.cfg.Brokers...),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordPartitioner(partitioner{}),
		kgo.ProducerLinger(0),
		kgo.UnknownTopicRetries(1),
		// Records not yet sent fail (safely: not written) before the HTTP
		// wait gives up, so an outage is mostly a definite 503; only a
		// batch sent and unanswered is left to produceWait's late path.
		kgo.RecordDeliveryTimeout(max(g.cfg.ProduceTimeout*3/4, time.Second)),
	}, g.cfg.ClientOptions...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		g.closeStore()
		return fmt.Errorf("gateway: kafka client: %w", err)
	}
	g.cl, g.adm = cl, kadm.NewClient(cl)
	g.ctx, g.cancel = context.WithCancel(context.Background())
	rc, err := g.startReplies(ctx)
	if err != nil {
		g.cancel()
		cl.Close()
		g.closeStore()
		return err
	}
	g.cb = newCallbacks(g)
	g.started = true
	g.wg.Add(3)
	go func() { defer g.wg.Done(); g.consumeReplies(rc) }()
	go func() { defer g.wg.Done(); g.expireLoop() }()
	go func() { defer g.wg.Done(); g.cb.run(g.ctx) }()
	return nil
}

// ensureTopic creates topic with the broker's defaults if it is missing.
func (g *Gateway) ensureTopic(ctx context.Context, topic string) error {
	resp, err := g.adm.CreateTopic(ctx, -1, -1, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("gateway: create topic %s: %w", topic, err)
	}
	return nil
}

// Handler returns the HTTP API. Mount it at the server root (its routes are
// absolute: /api/topics/, /api/commands/, /api/requests[/],
// /api/openapi.json).
func (g *Gateway) Handler() http.Handler { return g.mux }

// Prefixes lists the path prefixes Handler serves, for mounting it on a
// shared mux.
func Prefixes() []string {
	return []string{"/api/topics/", "/api/commands/", "/api/requests", "/api/requests/", "/api/openapi.json"}
}

// EndStreams ends the open SSE and WebSocket streams (clients reconnect,
// to another instance if this one is going away). Register it with
// http.Server.RegisterOnShutdown, so Shutdown does not wait for them.
func (g *Gateway) EndStreams() { g.endStreams() }

// Close stops the background work, waits for it, closes the Kafka clients
// and (if New opened it) the store. Open SSE and WebSocket streams end. It
// is idempotent.
func (g *Gateway) Close() error {
	g.closeOnce.Do(func() {
		g.endStreams()
		if !g.started {
			return
		}
		g.cancel()
		g.wg.Wait()
		g.cb.wait()
		g.cl.Close() // fails what the broker never got; their late handlers run
		g.inflight.Wait()
		g.closeErr = g.closeStore()
	})
	return g.closeErr
}

func (g *Gateway) closeStore() error {
	if g.ownStore {
		return g.store.Close()
	}
	return nil
}

// expireLoop moves requests past their expiry to Expired and purges old
// finished ones.
func (g *Gateway) expireLoop() {
	t := time.NewTicker(g.cfg.ExpireInterval)
	defer t.Stop()
	lastPurge := time.Now()
	for {
		select {
		case <-g.ctx.Done():
			return
		case <-t.C:
		}
		now := time.Now()
		rs, err := g.store.Expire(g.ctx, now)
		if err != nil && g.ctx.Err() == nil {
			g.log.Warn("gateway: expire", "err", err)
		}
		for _, r := range rs {
			g.finished(r)
		}
		if now.Sub(lastPurge) > time.Minute {
			lastPurge = now
			if _, err := g.store.Purge(g.ctx, now.Add(-g.cfg.Retention)); err != nil && g.ctx.Err() == nil {
				g.log.Warn("gateway: purge", "err", err)
			}
		}
	}
}

// finished tells waiters and the callback loop that r reached a final
// state.
func (g *Gateway) finished(r *Request) {
	g.cfg.Hooks.RequestFinished(r.State)
	g.hub.notify(r.ID, r)
	if r.CallbackURL != "" {
		g.cb.kick()
	}
}

// hub wakes the goroutines waiting for a request's status to change (long
// polls, SSE and WebSocket streams) on this instance. Changes made by other
// instances reach them through the reply topic (every instance reads all
// replies) or the waiters' store poll.
//
// A notify carries the request as the change left it when the notifier has
// it (a reply applied, a cancel): a long poll answers with it at once,
// without reading it back from the store.
type hub struct {
	mu      sync.Mutex
	waiters map[string]map[chan *Request]struct{}
}

func (h *hub) init() { h.waiters = map[string]map[chan *Request]struct{}{} }

// watch returns a channel that receives after any later notify(id): the
// request notify had, or nil.
func (h *hub) watch(id string) (<-chan *Request, func()) {
	ch := make(chan *Request, 1)
	h.mu.Lock()
	m := h.waiters[id]
	if m == nil {
		m = map[chan *Request]struct{}{}
		h.waiters[id] = m
	}
	m[ch] = struct{}{}
	h.mu.Unlock()
	return ch, func() {
		h.mu.Lock()
		delete(m, ch)
		if len(m) == 0 && h.waiters[id] != nil && len(h.waiters[id]) == 0 {
			delete(h.waiters, id)
		}
		h.mu.Unlock()
	}
}

// notify wakes the watchers of id; r is the request after the change, or
// nil if the notifier does not have it. A watcher that has not taken the
// previous notification gets the latest one instead.
func (h *hub) notify(id string, r *Request) {
	h.mu.Lock()
	for ch := range h.waiters[id] {
		select {
		case ch <- r:
			continue
		default:
		}
		select {
		case <-ch:
		default:
		}
		select {
		case ch <- r:
		default:
		}
	}
	h.mu.Unlock()
}
