// Package console is Spool's web console: server-rendered pages over any
// Kafka cluster (Spool or Apache Kafka) for its topics, messages, consumer
// groups and their lag, dead letters, and, when they run, the lookback
// archive and the gateway's asynchronous requests.
//
// It is a Kafka client (franz-go kadm/kgo) and never reads the broker's
// internals, so it runs unchanged against a real Kafka cluster: mounted on
// /ui/ by `spool serve`, or standalone with `spool console --brokers ...`.
//
// The pages are Go templates rendered on the server; the embedded htmx
// library (static/htmx.min.js, 0BSD) swaps fragments for live updates and
// forms, so there is no JavaScript build step. Every write (create or
// delete a topic, produce, reset offsets, redrive) is a POST that answers
// application/problem+json on failure and is refused in read-only mode and
// by the ACLs when an Authorizer is set.
package console

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

//go:embed templates/*.html static/*
var assets embed.FS

// Config configures a Console. The zero value of every field is its
// default.
type Config struct {
	// Brokers are the seed brokers (default 127.0.0.1:9092).
	Brokers []string
	// ClientOptions are extra franz-go options (TLS, SASL) for the
	// console's Kafka clients (default none).
	ClientOptions []kgo.Opt
	// BasePath is the path the console is mounted on, starting and ending
	// in "/" (default "/ui/"); every link of the pages starts with it.
	BasePath string
	// ReadOnly refuses every write with 403 (default false).
	ReadOnly bool
	// Authorizer decides what the principal of a request may see and do
	// (default nil: no authentication, everything is allowed).
	Authorizer Authorizer
	// Lookback is the lookback archive's HTTP API (its /api/lookback/
	// routes), in process or a reverse proxy to a remote one (default nil:
	// the lookback pages say it is off and message filters scan the
	// broker).
	Lookback http.Handler
	// Gateway is the gateway's HTTP API (its /api/ routes), in process or
	// a reverse proxy (default nil: the requests page says it is off).
	Gateway http.Handler
	// Metrics is the broker's Prometheus /metrics endpoint, in process or
	// a reverse proxy, scraped with every sample for the overview's fsync
	// latency and request rate charts (default nil: the overview says
	// where those numbers would come from).
	Metrics http.Handler
	// SampleInterval is how often the console samples the cluster's
	// offsets for its charts and rates (default 5s).
	SampleInterval time.Duration
	// History is how far back the charts go (default 15m).
	History time.Duration
	// RequestTimeout bounds the Kafka requests of one page (default 10s).
	RequestTimeout time.Duration
	// Logger receives the console's logs (default: discard).
	Logger *slog.Logger
	// DeadLetterTopics are the name patterns (path.Match globs) of the
	// dead-letter topics (default DefaultDeadLetterTopics); a topic whose
	// latest records carry dead-letter headers is one whatever its name.
	DeadLetterTopics []string
}

// Console serves the web console. Create it with New, then Start it.
type Console struct {
	cfg     Config
	tmpl    *templates
	mux     http.Handler
	sampler *sampler
	dlq     dlqState    // dead letters pages: header probes, redrive jobs
	times   recordTimes // the timestamps of the groups' oldest unconsumed records (lagtime.go)

	mu     sync.Mutex
	cl     *kgo.Client
	adm    *kadm.Client
	closed bool
	stop   context.CancelFunc
	done   chan struct{}

	closing chan struct{} // closed by EndStreams (and Close): long-lived responses (SSE) end
	endOnce sync.Once
}

// New returns a Console for cfg; Start connects it.
func New(cfg Config) (*Console, error) {
	if len(cfg.Brokers) == 0 {
		cfg.Brokers = []string{"127.0.0.1:9092"}
	}
	if cfg.BasePath == "" {
		cfg.BasePath = "/ui/"
	}
	if !strings.HasPrefix(cfg.BasePath, "/") || !strings.HasSuffix(cfg.BasePath, "/") {
		return nil, fmt.Errorf("console: base path %q must start and end with /", cfg.BasePath)
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 10 * time.Second
	}
	if cfg.SampleInterval <= 0 {
		cfg.SampleInterval = 5 * time.Second
	}
	if cfg.History <= 0 {
		cfg.History = 15 * time.Minute
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	c := &Console{cfg: cfg, sampler: newSampler(cfg.SampleInterval, cfg.History), closing: make(chan struct{})}
	if h := cfg.Metrics; h != nil {
		c.sampler.scrape = func(ctx context.Context) *metricsSample { return scrapeMetrics(ctx, h) }
	}
	t, err := parseTemplates(cfg.BasePath)
	if err != nil {
		return nil, err
	}
	c.tmpl = t
	c.mux = c.routes()
	return c, nil
}

// Start opens the Kafka client and checks that the cluster answers.
func (c *Console) Start(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return errors.New("console: closed")
	}
	if c.cl != nil {
		return nil
	}
	// A page must see a topic created a moment ago (by the console or
	// anyone): the client may refresh its metadata every 100ms instead of
	// franz-go's default 5s.
	opts := append([]kgo.Opt{kgo.SeedBrokers(c.cfg.Brokers...), kgo.MetadataMinAge(100 * time.Millisecond)}, c.cfg.ClientOptions...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("console: kafka client: %w", err)
	}
	if err := cl.Ping(ctx); err != nil {
		cl.Close()
		return fmt.Errorf("console: kafka %v: %w", c.cfg.Brokers, err)
	}
	c.cl, c.adm = cl, kadm.NewClient(cl)
	// The sampler uses the clients it is given, never c.client: Close
	// holds c.mu while it waits for the sampler to end.
	adm := c.adm
	c.sampler.lagTimes = func(ctx context.Context, lags ...kadm.DescribedGroupLag) map[tpOffset]time.Time {
		return c.lagTimes(ctx, cl, adm, lags...)
	}
	sctx, stop := context.WithCancel(context.Background())
	c.stop, c.done = stop, make(chan struct{})
	go func() {
		defer close(c.done)
		c.sampler.run(sctx, c.adm, c.cfg.RequestTimeout)
	}()
	return nil
}

// Close closes the Kafka client; it is idempotent.
func (c *Console) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	c.EndStreams()
	c.dlq.close()
	if c.stop != nil {
		c.stop()
		<-c.done
	}
	if c.cl != nil {
		c.cl.Close()
	}
	return nil
}

// EndStreams ends the pages' live streams (server-sent events), so that
// an http.Server's Shutdown does not wait for them: register it with
// RegisterOnShutdown. The pages keep working; Close ends the streams too.
func (c *Console) EndStreams() { c.endOnce.Do(func() { close(c.closing) }) }

// Handler serves the console under Config.BasePath (mount it there, e.g.
// mux.Handle("/ui/", c.Handler())).
func (c *Console) Handler() http.Handler { return c.mux }

// client returns the Kafka clients, or a 503 error before Start or after
// Close.
func (c *Console) client() (*kgo.Client, *kadm.Client, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cl == nil || c.closed {
		return nil, nil, errUnavailable
	}
	return c.cl, c.adm, nil
}

// pageContext bounds the Kafka requests of one page or action.
func (c *Console) pageContext(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), c.cfg.RequestTimeout)
}

// navItem is one entry of the navigation bar.
type navItem struct {
	Path  string // below BasePath, without a leading "/"
	Title string
}

// nav is the navigation bar, in order. A page adds its entry here and its
// routes in routes.
var nav = []navItem{
	{"", "Overview"},
	{"topics", "Topics"},
	{"messages", "Messages"},
	{"groups", "Groups"},
	{"deadletters", "Dead letters"},
	{"lookback", "Lookback"},
	{"requests", "Requests"},
}

// routes registers every page and action below BasePath.
func (c *Console) routes() http.Handler {
	mux := http.NewServeMux()
	b := c.cfg.BasePath
	mux.Handle("GET "+b+"static/", http.StripPrefix(b, staticHandler()))
	mux.HandleFunc("GET "+b+"{$}", c.overview)
	mux.HandleFunc("GET "+b+"topics", c.topics)
	mux.HandleFunc("POST "+b+"topics", c.createTopic)
	mux.HandleFunc("GET "+b+"topics/{topic}", c.topicDetail)
	mux.HandleFunc("POST "+b+"topics/{topic}/delete", c.deleteTopic)
	mux.HandleFunc("POST "+b+"topics/{topic}/configs", c.alterTopicConfig)
	mux.HandleFunc("POST "+b+"topics/{topic}/partitions", c.addPartitions)
	mux.HandleFunc("GET "+b+"messages", c.messagesPick)
	mux.HandleFunc("GET "+b+"topics/{topic}/messages", c.messagesPage)
	mux.HandleFunc("POST "+b+"topics/{topic}/messages", c.messagesProduce)
	mux.HandleFunc("GET "+b+"topics/{topic}/messages/scan", c.messagesScan)
	mux.HandleFunc("GET "+b+"topics/{topic}/messages/export", c.messagesExport)
	mux.HandleFunc("GET "+b+"lookback", c.lookbackSearch)
	mux.HandleFunc("GET "+b+"lookback/events/{topic}/{partition}/{offset}", c.lookbackEvent)
	mux.HandleFunc("GET "+b+"lookback/flows/{id}", c.lookbackFlow)
	mux.HandleFunc("GET "+b+"lookback/rules", c.lookbackRules)
	mux.HandleFunc("GET "+b+"lookback/replays", c.lookbackReplays)
	mux.HandleFunc("POST "+b+"lookback/replays", c.lookbackReplay)
	mux.HandleFunc("GET "+b+"lookback/replays/{id}", c.lookbackReplayState)
	mux.HandleFunc("POST "+b+"lookback/replays/{id}/cancel", c.lookbackReplayCancel)
	mux.HandleFunc("GET "+b+"groups", c.groupsPage)
	mux.HandleFunc("GET "+b+"groups/{group}", c.groupPage)
	mux.HandleFunc("GET "+b+"groups/{group}/live", c.groupLive)
	mux.HandleFunc("POST "+b+"groups/{group}/reset", c.groupReset)
	mux.HandleFunc("POST "+b+"groups/{group}/delete", c.groupDelete)
	mux.HandleFunc("POST "+b+"groups/{group}/delete-offsets", c.groupDeleteOffsets)
	mux.HandleFunc("GET "+b+"requests", c.requests)
	mux.HandleFunc("GET "+b+"requests/{id}", c.request)
	mux.HandleFunc("POST "+b+"requests/{id}/cancel", c.requestCancel)
	mux.HandleFunc("GET "+b+"deadletters", c.deadLetters)
	mux.HandleFunc("GET "+b+"deadletters/{topic}", c.deadLetterTopic)
	mux.HandleFunc("POST "+b+"deadletters/{topic}/redrive/plan", c.redrivePlan)
	mux.HandleFunc("POST "+b+"deadletters/{topic}/redrive", c.redriveStart)
	mux.HandleFunc("GET "+b+"deadletters/{topic}/redrive/{id}", c.redriveStatus)
	mux.HandleFunc("POST "+b+"deadletters/{topic}/redrive/{id}/cancel", c.redriveCancel)
	mux.HandleFunc("GET "+b+"login", c.loginPage)
	mux.HandleFunc("POST "+b+"login", c.login)
	mux.HandleFunc("POST "+b+"logout", c.logout)
	mux.HandleFunc(b, c.notFound)
	return c.authenticate(mux)
}
