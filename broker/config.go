package broker

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/spoolmq/spool/storage"
)

// Config configures a Broker. The zero value of every field except DataDir
// means "use the default" stated in the field's comment; WithDefaults fills
// them in. Only cmd/spool reads flags and environment variables into it.
type Config struct {
	// DataDir holds every partition log and the broker's metadata file.
	// Required.
	DataDir string

	// Listen is the Kafka listener address, host:port. Port 0 picks a free
	// port (see Broker.Addr). Default "127.0.0.1:9092".
	Listen string

	// Advertise is the host:port that Metadata and DescribeCluster tell
	// clients to connect to. Default: the address the listener is actually
	// bound to; when that host is unspecified (0.0.0.0 or ::), "localhost"
	// with the bound port.
	Advertise string

	// Listeners, when set, replace Listen and Advertise: each is bound
	// with its protocol (PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL), and a
	// client is told the advertised address of the listener it connected
	// through. Default: one PLAINTEXT listener named PLAINTEXT on Listen.
	Listeners []Listener

	// SuperUsers are principals ("User:admin") the authorizer always
	// allows (Kafka's super.users). Default none.
	SuperUsers []string

	// Authorizer turns ACL checks on even before the first ACL exists
	// (then only super users may act until ACLs allow more). Default
	// false: ACLs are checked once one exists.
	Authorizer bool

	// SASLReauth is the longest a SASL session lasts before the client
	// must re-authenticate on its connection (KIP-368,
	// connections.max.reauth.ms); a request after that, other than the
	// re-authentication, closes the connection. Default 0: sessions do
	// not expire.
	SASLReauth time.Duration

	// Fsync is the storage durability mode. Default storage.FsyncAlways: a
	// produce with acks=1/all is answered after its batch is fsynced.
	Fsync storage.FsyncMode

	// FsyncInterval is the sync period in storage.FsyncInterval mode.
	// Default 50ms.
	FsyncInterval time.Duration

	// LogRetention is the broker-wide default of the topic config
	// retention.ms (Kafka's log.retention.ms). Default 7 days; negative:
	// keep forever.
	LogRetention time.Duration

	// LogRetentionBytes is the broker-wide default of retention.bytes
	// (log.retention.bytes): a partition's closed segments are deleted,
	// oldest first, while it is larger. Default -1 (0 too): no limit.
	LogRetentionBytes int64

	// LogSegmentBytes is the broker-wide default of segment.bytes
	// (log.segment.bytes). Default 1 GiB; at least 1024.
	LogSegmentBytes int64

	// CommitLogMaxBatch is storage.Options.CommitLogMaxBatch: with
	// FsyncAlways, batches up to this many bytes are acknowledged through
	// storage's shared commit log (one fsync for every partition). Default
	// 32 KiB; negative: off (each partition fsyncs its own segment).
	CommitLogMaxBatch int
	// CommitLogRoundsInFlight is storage.Options.CommitLogRoundsInFlight:
	// how many commit log rounds may wait for their fsyncs at once
	// (acknowledged in order). Default 2; 1: one round at a time.
	CommitLogRoundsInFlight int
	// CommitLogFileBytes is storage.Options.CommitLogFileBytes: the size
	// of each commit log file (0: 16 MiB).
	CommitLogFileBytes int64
	// CommitLogShareWindow is storage.Options.CommitLogShareWindow: small
	// batches take the commit log while more than one partition appends
	// (for this long after an append switched partitions). Default 50 ms;
	// negative: every small batch takes it.
	CommitLogShareWindow time.Duration

	// DisableAutoCreateTopics turns off topic creation by Metadata requests
	// for unknown topics. Default false: topics are auto-created, with
	// DefaultPartitions partitions, as Kafka's auto.create.topics.enable=true.
	DisableAutoCreateTopics bool

	// DefaultPartitions is the partition count of auto-created topics and of
	// CreateTopics requests that ask for -1. Default 1.
	DefaultPartitions int32

	// MaxFrameBytes is the largest request frame accepted; a client sending a
	// larger one is logged and disconnected. Default 100 MiB.
	MaxFrameBytes int32

	// MaxConnections and MaxConnectionsPerIP bound the open client
	// connections in total and from one IP address (Kafka's
	// max.connections and max.connections.per.ip); a connection beyond is
	// closed as soon as it is accepted, and counted in
	// spool_broker_connections_refused_total. Defaults 10000 and 1000.
	MaxConnections, MaxConnectionsPerIP int

	// QueuedMaxRequestBytes bounds the bytes of requests read but not yet
	// answered, over all connections (Kafka's queued.max.request.bytes);
	// ConnQueuedMaxBytes bounds them per connection. A connection at its
	// bound, or any when the total is reached, is not read from until
	// requests are answered. Frames are read incrementally: the memory a
	// frame takes grows with the bytes that actually arrive, not with the
	// size it announces. Defaults 512 MiB and MaxFrameBytes; both must be
	// at least MaxFrameBytes.
	QueuedMaxRequestBytes, ConnQueuedMaxBytes int64

	// IdleTimeout closes a connection that sent nothing and has no request
	// in flight for this long (Kafka's connections.max.idle.ms). Default
	// 10 minutes.
	IdleTimeout time.Duration

	// FrameTimeout closes a connection whose request frame, once its size
	// was read, does not arrive whole within this time: a client that
	// announces a frame and stalls holds nothing for long. Default 30s.
	FrameTimeout time.Duration

	// MaxFetchBytes caps the bytes of records in one Fetch response,
	// whatever the request asks for (Kafka's fetch.max.bytes); as in Kafka,
	// the first batch is returned whole even when larger. Default 55 MiB
	// (57671680, Kafka's default).
	MaxFetchBytes int32

	// GroupMaxSize is group.max.size (see group.Config.MaxGroupSize).
	// Default 1000.
	GroupMaxSize int

	// MaxMessageBytes is the broker-wide default of the topic config
	// max.message.bytes: the largest record batch a produce may append.
	// Default 1048588 (Kafka's message.max.bytes).
	MaxMessageBytes int32

	// MaxDecompressedBytes bounds what the records of one compressed batch
	// may decompress to when a produce is validated (and for ListOffsets by
	// time); a batch that decompresses to more is CORRUPT_MESSAGE. At most
	// max(2, GOMAXPROCS) batches are decompressed at once, so this bounds
	// the memory decompression takes. Default 64 MiB.
	MaxDecompressedBytes int

	// MaxFetchWait caps a Fetch request's MaxWaitMs. Default 30s.
	MaxFetchWait time.Duration

	// RetentionCheckInterval is how often storage enforces retention.
	// Default: the storage default (1 minute); < 0 disables the loop.
	RetentionCheckInterval time.Duration

	// GroupMinSessionTimeout and GroupMaxSessionTimeout bound the session
	// timeout a consumer group member may ask for in JoinGroup (Kafka's
	// group.min.session.timeout.ms and group.max.session.timeout.ms); others
	// get INVALID_SESSION_TIMEOUT. Defaults 6s and 30m, as Kafka. Tests lower
	// the minimum to use short sessions (spooltest does).
	GroupMinSessionTimeout, GroupMaxSessionTimeout time.Duration

	// RecoverMetadata rebuilds the metadata file (broker-meta.json) at
	// start from the one there is, if readable, and the partition
	// directories (each keeps its topic's ID and configs): every topic
	// either names comes back, partitions missing from disk are created
	// empty. Without it (the default), a data directory with partition
	// logs but no metadata, a log with records the metadata does not name,
	// or a partition directory the metadata names but that is missing stops
	// the start with an error saying what was found (spool serve
	// --recover-metadata).
	RecoverMetadata bool

	// GroupInitialRebalanceDelay is how long the first rebalance of an
	// empty consumer group waits for more members to join, each new member
	// extending it by as much up to the rebalance timeout (Kafka's
	// group.initial.rebalance.delay.ms), so members that start together
	// share the first generation. Default 3s; negative: no delay.
	GroupInitialRebalanceDelay time.Duration

	// FS is the file system storage uses. Default: the OS file system.
	// Tests pass storage's in-memory FS to inject faults.
	FS storage.FS

	// Logger receives connection and request errors. Default: discard.
	Logger *slog.Logger

	// Registerer, if set, gets the broker's Prometheus collectors. Default
	// nil: metrics are kept but not registered anywhere.
	Registerer prometheus.Registerer

	// Now is the clock for LogAppendTime and retention. Default time.Now.
	Now func() time.Time

	// TracerProvider, if set, makes the broker start an OpenTelemetry span
	// for each batch it appends ("receive {topic}", a child of the trace
	// in the batch's first traceparent header, linked to the others; see
	// tracing.go and docs/tracing.md). Default nil: no spans, and the
	// produce path does no work for them.
	TracerProvider trace.TracerProvider
}

const (
	defaultListen          = "127.0.0.1:9092"
	defaultMaxFrameBytes   = 100 << 20
	defaultMaxMessageBytes = 1048588
	defaultMaxFetchWait    = 30 * time.Second
	defaultMaxConns        = 10000
	defaultMaxConnsPerIP   = 1000
	defaultQueuedBytes     = 512 << 20
	defaultIdleTimeout     = 10 * time.Minute
	defaultFrameTimeout    = 30 * time.Second
	defaultMaxFetchBytes   = 57671680
	defaultGroupMaxSize    = 1000
	defaultGroupMinSession = 6 * time.Second
	defaultGroupMaxSession = 30 * time.Minute

	defaultFsyncInterval         = 50 * time.Millisecond
	defaultLogRetention          = 7 * 24 * time.Hour
	defaultLogSegmentBytes       = 1 << 30
	defaultInitialRebalanceDelay = 3 * time.Second
	// maxPartitions bounds the partition count of one topic so that one
	// request cannot make the broker create millions of directories.
	maxPartitions = 10000
)

// WithDefaults returns a copy of c with every unset field set to its default.
func (c Config) WithDefaults() Config {
	if c.Listen == "" {
		c.Listen = defaultListen
	}
	if c.FsyncInterval == 0 {
		c.FsyncInterval = defaultFsyncInterval
	}
	if c.LogRetention == 0 {
		c.LogRetention = defaultLogRetention
	}
	if c.LogRetentionBytes <= 0 {
		c.LogRetentionBytes = -1
	}
	if c.LogSegmentBytes == 0 {
		c.LogSegmentBytes = defaultLogSegmentBytes
	}
	if c.GroupInitialRebalanceDelay == 0 {
		c.GroupInitialRebalanceDelay = defaultInitialRebalanceDelay
	}
	if c.DefaultPartitions == 0 {
		c.DefaultPartitions = 1
	}
	if c.MaxFrameBytes == 0 {
		c.MaxFrameBytes = defaultMaxFrameBytes
	}
	if c.MaxMessageBytes == 0 {
		c.MaxMessageBytes = defaultMaxMessageBytes
	}
	if c.MaxConnections == 0 {
		c.MaxConnections = defaultMaxConns
	}
	if c.MaxConnectionsPerIP == 0 {
		c.MaxConnectionsPerIP = defaultMaxConnsPerIP
	}
	if c.QueuedMaxRequestBytes == 0 {
		c.QueuedMaxRequestBytes = max(defaultQueuedBytes, int64(c.MaxFrameBytes))
	}
	if c.ConnQueuedMaxBytes == 0 {
		c.ConnQueuedMaxBytes = int64(c.MaxFrameBytes)
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = defaultIdleTimeout
	}
	if c.FrameTimeout == 0 {
		c.FrameTimeout = defaultFrameTimeout
	}
	if c.MaxFetchBytes == 0 {
		c.MaxFetchBytes = defaultMaxFetchBytes
	}
	if c.GroupMaxSize == 0 {
		c.GroupMaxSize = defaultGroupMaxSize
	}
	if c.MaxDecompressedBytes == 0 {
		c.MaxDecompressedBytes = storage.DefaultMaxDecompressedBytes
	}
	if c.MaxFetchWait == 0 {
		c.MaxFetchWait = defaultMaxFetchWait
	}
	if c.GroupMinSessionTimeout == 0 {
		c.GroupMinSessionTimeout = defaultGroupMinSession
	}
	if c.GroupMaxSessionTimeout == 0 {
		c.GroupMaxSessionTimeout = defaultGroupMaxSession
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Validate reports the first invalid field of c (after WithDefaults).
func (c Config) Validate() error {
	if c.DataDir == "" {
		return errors.New("broker: config: DataDir is required")
	}
	names := map[string]bool{}
	for _, l := range c.Listeners {
		if err := l.validate(); err != nil {
			return fmt.Errorf("broker: config: %w", err)
		}
		if names[l.Name] {
			return fmt.Errorf("broker: config: listener %s listed twice", l.Name)
		}
		names[l.Name] = true
		if _, _, err := net.SplitHostPort(l.Addr); err != nil {
			return fmt.Errorf("broker: config: listener %s address %q: %w", l.Name, l.Addr, err)
		}
	}
	for _, p := range c.SuperUsers {
		if !strings.Contains(p, ":") {
			return fmt.Errorf("broker: config: super user %q: want a principal such as User:admin", p)
		}
	}
	if c.SASLReauth < 0 {
		return fmt.Errorf("broker: config: SASLReauth %v: must not be negative", c.SASLReauth)
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return fmt.Errorf("broker: config: Listen %q: %w", c.Listen, err)
	}
	if c.Advertise != "" {
		host, port, err := net.SplitHostPort(c.Advertise)
		if err != nil {
			return fmt.Errorf("broker: config: Advertise %q: %w", c.Advertise, err)
		}
		if host == "" || port == "" || port == "0" {
			return fmt.Errorf("broker: config: Advertise %q: need an explicit host and port", c.Advertise)
		}
	}
	if c.Fsync < storage.FsyncAlways || c.Fsync > storage.FsyncNever {
		return fmt.Errorf("broker: config: unknown Fsync mode %d", c.Fsync)
	}
	if c.FsyncInterval < time.Millisecond {
		return fmt.Errorf("broker: config: FsyncInterval %v: must be at least 1ms", c.FsyncInterval)
	}
	if c.LogSegmentBytes < minSegmentBytes || c.LogSegmentBytes > math.MaxInt32 {
		return fmt.Errorf("broker: config: LogSegmentBytes %d: must be in [%d, %d]", c.LogSegmentBytes, minSegmentBytes, math.MaxInt32)
	}
	if c.DefaultPartitions < 1 || c.DefaultPartitions > maxPartitions {
		return fmt.Errorf("broker: config: DefaultPartitions %d: must be in [1, %d]", c.DefaultPartitions, maxPartitions)
	}
	if c.MaxFrameBytes < 1024 {
		return fmt.Errorf("broker: config: MaxFrameBytes %d: must be at least 1024", c.MaxFrameBytes)
	}
	if c.MaxConnections < 1 || c.MaxConnectionsPerIP < 1 {
		return fmt.Errorf("broker: config: MaxConnections %d, MaxConnectionsPerIP %d: must be at least 1", c.MaxConnections, c.MaxConnectionsPerIP)
	}
	if c.QueuedMaxRequestBytes < int64(c.MaxFrameBytes) || c.ConnQueuedMaxBytes < int64(c.MaxFrameBytes) {
		return fmt.Errorf("broker: config: QueuedMaxRequestBytes %d and ConnQueuedMaxBytes %d: must be at least MaxFrameBytes %d (a frame must fit)",
			c.QueuedMaxRequestBytes, c.ConnQueuedMaxBytes, c.MaxFrameBytes)
	}
	if c.IdleTimeout < 0 || c.FrameTimeout < 0 {
		return fmt.Errorf("broker: config: IdleTimeout %v, FrameTimeout %v: must not be negative", c.IdleTimeout, c.FrameTimeout)
	}
	if c.MaxFetchBytes < 1024 {
		return fmt.Errorf("broker: config: MaxFetchBytes %d: must be at least 1024", c.MaxFetchBytes)
	}
	if c.GroupMaxSize < 1 {
		return fmt.Errorf("broker: config: GroupMaxSize %d: must be at least 1", c.GroupMaxSize)
	}
	if c.MaxMessageBytes < 0 {
		return fmt.Errorf("broker: config: MaxMessageBytes %d: must not be negative", c.MaxMessageBytes)
	}
	if c.MaxDecompressedBytes < 1024 {
		return fmt.Errorf("broker: config: MaxDecompressedBytes %d: must be at least 1024", c.MaxDecompressedBytes)
	}
	if c.MaxFetchWait < 0 {
		return fmt.Errorf("broker: config: MaxFetchWait %v: must not be negative", c.MaxFetchWait)
	}
	if c.GroupMinSessionTimeout < time.Millisecond || c.GroupMaxSessionTimeout < c.GroupMinSessionTimeout {
		return fmt.Errorf("broker: config: group session timeouts [%v, %v]: need 1ms <= GroupMinSessionTimeout <= GroupMaxSessionTimeout", c.GroupMinSessionTimeout, c.GroupMaxSessionTimeout)
	}
	return nil
}
