// Package broker is Spool's Kafka wire-protocol server: the listener, one
// read loop per connection, the table of API keys it serves (apis.go) and one
// file per API key (00_produce.go, 01_fetch.go, ...), each opening with the
// versions it serves and how it behaves. Topics live in package storage, one
// partition log each; the broker keeps which topics exist, with their
// partition counts and configs, in a metadata file in the data directory.
//
// Spool is a single node: it is the only broker (node ID 0), the leader of
// every partition and the controller, and it reports leader epoch -1 so that
// clients skip epoch fencing.
package broker

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/semaphore"

	"github.com/spoolmq/spool/broker/group"
	"github.com/spoolmq/spool/broker/producers"
	"github.com/spoolmq/spool/storage"
)

// nodeID is the broker's node ID, the leader of every partition.
const nodeID int32 = 0

// Broker is a running Spool broker. Create one with New, then Start it;
// Close stops it.
type Broker struct {
	cfg     Config
	tracer  trace.Tracer // nil: Config.TracerProvider not set, no spans
	apis    []api        // indexed by API key; zero entries are not served
	metrics *metrics
	// queued bounds the bytes of requests read but not answered, over all
	// connections (Config.QueuedMaxRequestBytes; see conn.go).
	queued *semaphore.Weighted

	// Set by Start.
	listeners []*listener
	sec       *security
	store     *storage.Store
	ln        net.Listener
	advHost   string
	advPort   int32
	clusterID string

	// started is set once Start has succeeded: what Start set is then
	// visible to whoever loads it (the metrics collector, scraped from
	// another goroutine).
	started atomic.Bool

	// hooks, when set (only by tests, through export_test.go), are told
	// of the moments tests wait for, so they wait on a signal instead of
	// polling a metric.
	hooks atomic.Pointer[testHooks]

	topicSet atomic.Pointer[topicSet]
	// metaMu serialises topic changes (create, delete, partitions,
	// configs) and the metadata file writes that make them durable. The
	// produce and fetch paths never take it.
	metaMu sync.Mutex
	// tombstones are the deleted topics whose logs are not all removed
	// yet, written into the metadata file with it. Guarded by metaMu.
	tombstones []metaTombstone

	// groups is the group coordinator and producers the idempotent-producer
	// state (groups.go); set by Start.
	groups    *group.Coordinator
	producers *producers.Manager

	// ctx is cancelled by Close: long polls return what they have.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu struct {
		sync.Mutex
		started bool
		closed  bool
		conns   map[*conn]struct{}
		perIP   map[string]int // open connections by client IP
	}
	closeOnce sync.Once
	closeErr  error
}

// New returns a broker for cfg (after cfg.WithDefaults()). It does no I/O;
// Start opens the data directory and the listener.
func New(cfg Config) (*Broker, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	b := &Broker{cfg: cfg, metrics: newMetrics(cfg.Registerer), queued: semaphore.NewWeighted(cfg.QueuedMaxRequestBytes)}
	if cfg.Registerer != nil {
		if err := cfg.Registerer.Register(newStateCollector(b)); err != nil {
			return nil, fmt.Errorf("broker: metrics: %w", err)
		}
	}
	if cfg.TracerProvider != nil {
		b.tracer = cfg.TracerProvider.Tracer(tracerScope)
	}
	b.apis = buildAPIs(apiTable())
	b.ctx, b.cancel = context.WithCancel(context.Background())
	b.mu.conns = make(map[*conn]struct{})
	b.mu.perIP = make(map[string]int)
	b.topicSet.Store(newTopicSet(nil))
	return b, nil
}

// Start opens the storage in DataDir (recovering it), loads the topics and
// starts listening. ctx bounds start-up only; Close stops the broker. A
// broker is started at most once.
func (b *Broker) Start(ctx context.Context) error {
	b.mu.Lock()
	if b.mu.started || b.mu.closed {
		b.mu.Unlock()
		return errors.New("broker: Start called twice or after Close")
	}
	b.mu.started = true
	b.mu.Unlock()

	store, err := storage.Open(storage.Options{
		Dir:                     b.cfg.DataDir,
		FS:                      b.cfg.FS,
		Fsync:                   b.cfg.Fsync,
		FsyncInterval:           b.cfg.FsyncInterval,
		CommitLogMaxBatch:       b.cfg.CommitLogMaxBatch,
		CommitLogRoundsInFlight: b.cfg.CommitLogRoundsInFlight,
		CommitLogFileBytes:      b.cfg.CommitLogFileBytes,
		CommitLogShareWindow:    b.cfg.CommitLogShareWindow,
		RetentionCheckInterval:  b.cfg.RetentionCheckInterval,
		Logger:                  b.cfg.Logger,
		Now:                     b.cfg.Now,
		OnFsync:                 b.metrics.observeFsync,
	})
	if err != nil {
		return fmt.Errorf("broker: open storage: %w", err)
	}
	b.store = store
	if err := b.loadTopics(); err != nil {
		store.Close()
		return err
	}
	if err := b.startGroups(ctx); err != nil {
		store.Close()
		return err
	}
	if err := b.loadSecurity(); err != nil {
		b.closeGroups()
		store.Close()
		return err
	}
	if err := b.listen(ctx); err != nil {
		b.closeGroups()
		store.Close()
		return err
	}
	for _, l := range b.listeners {
		b.wg.Add(1)
		go b.acceptLoop(l)
		b.cfg.Logger.Info("broker: listening", "listener", l.cfg.Name, "protocol", l.cfg.Protocol, "addr", l.ln.Addr().String(), "advertised", l.advertised())
	}
	b.started.Store(true)
	return nil
}

// listener is one bound Kafka listener.
type listener struct {
	cfg     Listener
	ln      net.Listener
	advHost string
	advPort int32
}

func (l *listener) advertised() string {
	return net.JoinHostPort(l.advHost, strconv.Itoa(int(l.advPort)))
}

// listen binds every listener (Config.Listeners, or one PLAINTEXT on
// Listen) and works out what each advertises.
func (b *Broker) listen(ctx context.Context) error {
	cfgs := b.cfg.Listeners
	if len(cfgs) == 0 {
		cfgs = []Listener{{Name: ProtocolPlaintext, Protocol: ProtocolPlaintext, Addr: b.cfg.Listen, Advertise: b.cfg.Advertise}}
	}
	var lc net.ListenConfig
	for _, c := range cfgs {
		ln, err := lc.Listen(ctx, "tcp", c.Addr)
		if err == nil && c.TLS != nil {
			ln = tls.NewListener(ln, c.TLS)
		}
		if err != nil {
			for _, l := range b.listeners {
				l.ln.Close()
			}
			b.listeners = nil
			return fmt.Errorf("broker: listen %s on %s: %w", c.Name, c.Addr, err)
		}
		l := &listener{cfg: c, ln: ln}
		if err := l.setAdvertised(); err != nil {
			ln.Close()
			return err
		}
		b.listeners = append(b.listeners, l)
	}
	// The primary listener (Addr, AdvertisedAddr: what the embedded
	// services of spool serve connect to) is the first PLAINTEXT one, else
	// the first.
	first := b.listeners[0]
	for _, l := range b.listeners {
		if l.cfg.Protocol == ProtocolPlaintext {
			first = l
			break
		}
	}
	b.ln, b.advHost, b.advPort = first.ln, first.advHost, first.advPort
	return nil
}

func (l *listener) setAdvertised() error {
	tcp := l.ln.Addr().(*net.TCPAddr)
	if l.cfg.Advertise != "" {
		host, port, _ := net.SplitHostPort(l.cfg.Advertise)
		p, err := strconv.ParseInt(port, 10, 32)
		if err != nil {
			return fmt.Errorf("broker: config: listener %s: advertised port %q: %w", l.cfg.Name, port, err)
		}
		l.advHost, l.advPort = host, int32(p)
		return nil
	}
	host, _, _ := net.SplitHostPort(l.cfg.Addr)
	switch ip := net.ParseIP(host); {
	case host == "" || ip != nil && ip.IsUnspecified():
		host = "localhost"
	case ip != nil:
		host = tcp.IP.String()
	}
	l.advHost, l.advPort = host, int32(tcp.Port)
	return nil
}

// ListenerAddrs returns each listener's bound address by name (after
// Start).
func (b *Broker) ListenerAddrs() map[string]string {
	out := map[string]string{}
	for _, l := range b.listeners {
		out[l.cfg.Name] = l.ln.Addr().String()
	}
	return out
}

// Addr returns the address the Kafka listener is bound to (with the actual
// port when Listen asked for port 0), or "" before Start.
func (b *Broker) Addr() string {
	if b.ln == nil {
		return ""
	}
	return b.ln.Addr().String()
}

func (b *Broker) advertised() string {
	return net.JoinHostPort(b.advHost, strconv.Itoa(int(b.advPort)))
}

// AdvertisedAddr returns the host:port that Metadata tells clients to use.
func (b *Broker) AdvertisedAddr() string { return b.advertised() }

// ClusterID returns the cluster ID, generated on the first start and kept in
// the metadata file.
func (b *Broker) ClusterID() string { return b.clusterID }

// Store returns the broker's storage (nil before Start). Other components of
// the broker (group coordinator, producer state) keep their files in it.
func (b *Broker) Store() *storage.Store { return b.store }

// Config returns the broker's configuration with defaults applied.
func (b *Broker) Config() Config { return b.cfg }

func (b *Broker) acceptLoop(l *listener) {
	defer b.wg.Done()
	var backoff time.Duration
	for {
		nc, err := l.ln.Accept()
		if err != nil {
			if b.isClosed() {
				return
			}
			// Out of file descriptors or similar: back off, as net/http does.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			b.cfg.Logger.Warn("broker: accept", "err", err, "retry_in", backoff)
			select {
			case <-time.After(backoff):
			case <-b.ctx.Done():
				return
			}
			continue
		}
		backoff = 0
		c := newConn(b, nc)
		c.lis = l
		b.mu.Lock()
		if b.mu.closed {
			b.mu.Unlock()
			nc.Close()
			return
		}
		if len(b.mu.conns) >= b.cfg.MaxConnections || b.mu.perIP[c.ip] >= b.cfg.MaxConnectionsPerIP {
			open, fromIP := len(b.mu.conns), b.mu.perIP[c.ip]
			b.mu.Unlock()
			b.metrics.refused.Inc() // before the close a client can observe
			nc.Close()
			c.cancel()
			b.cfg.Logger.Debug("broker: connection refused: too many connections", "remote", c.remote, "open", open, "from_ip", fromIP,
				"max", b.cfg.MaxConnections, "max_per_ip", b.cfg.MaxConnectionsPerIP)
			continue
		}
		b.mu.conns[c] = struct{}{}
		b.mu.perIP[c.ip]++
		b.wg.Add(1)
		b.mu.Unlock()
		go c.serve()
	}
}

func (b *Broker) removeConn(c *conn) {
	b.mu.Lock()
	delete(b.mu.conns, c)
	if b.mu.perIP[c.ip]--; b.mu.perIP[c.ip] <= 0 {
		delete(b.mu.perIP, c.ip)
	}
	b.mu.Unlock()
}

func (b *Broker) isClosed() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.mu.closed
}

// Close stops the broker: it stops accepting connections and reading
// requests, answers the requests already read (long polls return what they
// have), waits for its goroutines, then closes the storage, which syncs every
// log and writes its clean-shutdown checkpoint. Close is idempotent; every
// call returns the first call's result.
func (b *Broker) Close() error {
	b.closeOnce.Do(func() {
		b.mu.Lock()
		b.mu.closed = true
		conns := make([]*conn, 0, len(b.mu.conns))
		for c := range b.mu.conns {
			conns = append(conns, c)
		}
		b.mu.Unlock()
		for _, l := range b.listeners {
			l.ln.Close()
		}
		if h := b.hooks.Load(); h != nil && h.listenersClosed != nil {
			h.listenersClosed()
		}
		for _, c := range conns {
			c.stop()
		}
		b.cancel()
		b.wg.Wait()
		if b.store != nil {
			b.closeErr = errors.Join(b.closeGroups(), b.store.Close())
		}
		b.cfg.Logger.Info("broker: closed")
	})
	return b.closeErr
}

// testHooks are the moments tests wait for (see Broker.hooks); a nil
// func is not called.
type testHooks struct {
	handling        func(apiKey int16) // a request's handler starts (conn.handle)
	listenersClosed func()             // Close has closed every listener
}
