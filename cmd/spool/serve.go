package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/spoolmq/spool/auth"
	"github.com/spoolmq/spool/auth/httpauth"
	"github.com/spoolmq/spool/broker"
	"github.com/spoolmq/spool/console"
	"github.com/spoolmq/spool/gateway"
	"github.com/spoolmq/spool/gateway/gatewayprom"
	"github.com/spoolmq/spool/lookback"
	"github.com/spoolmq/spool/storage"
)

// serveFlags are the flags of `spool serve`; each can also be set with the
// SPOOL_* environment variable named after it (--data: SPOOL_DATA,
// --auto-create-topics: SPOOL_AUTO_CREATE_TOPICS). A flag given on the
// command line wins over the environment.
type serveFlags struct {
	data              string
	listen            string
	advertise         string
	http              string
	fsync             string
	commitLogMaxBatch int
	commitLogRounds   int
	commitLogFile     int64
	commitLogWindow   time.Duration
	autoCreateTopics  bool
	defaultPartitions int32
	maxFrameBytes     int32
	groupMinSession   time.Duration
	groupMaxSession   time.Duration
	logLevel          string
	recoverMetadata   bool
	gateway           *gatewayFlags
	console           *consoleFlags

	fsyncInterval     time.Duration
	logRetentionMs    int64
	logRetentionBytes int64
	logSegmentBytes   int64
	messageMaxBytes   int32
	groupInitialDelay time.Duration
	logFormat         string
	configFile        string
	sec               *securityFlags
	httpTLS           *tls.Config // from --http-tls, set by config
	httpAuth          *httpAuthFlags
	httpTokens        *auth.Tokens // from --http-tokens, set by config
	pprof             bool
	lookback          bool
	lookbackFlags     *lookbackFlags
	// Limits against hostile or broken clients (broker.Config).
	maxConns, maxConnsPerIP   int
	queuedBytes, connQueued   int64
	idleTimeout, frameTimeout time.Duration
	maxFetchBytes             int32
	groupMaxSize              int
	maxDecompressed           int
}

func newServeCmd() *cobra.Command {
	var f *serveFlags
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the Spool broker (Kafka protocol listener and HTTP /metrics)",
		Long: `Run the Spool broker: a Kafka-protocol listener with its data in --data, and an
HTTP listener serving Prometheus metrics on /metrics.

Every flag can also be set with an environment variable: SPOOL_ and the flag
name in upper case with '-' as '_' (SPOOL_DATA, SPOOL_LISTEN, SPOOL_FSYNC, ...).
A flag on the command line wins. SIGINT or SIGTERM stops the broker cleanly:
it stops accepting, answers the requests in flight, syncs and checkpoints the
logs, and exits 0.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := applyEnv(cmd.Flags(), os.LookupEnv); err != nil {
				return err
			}
			if f.configFile != "" {
				if err := applyConfigFile(cmd.Flags(), f.configFile); err != nil {
					return err
				}
			}
			cfg, err := f.config()
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			tr, stopTracing, err := startTracing(ctx, "spool", cfg.Logger, cmd.OutOrStdout(), cmd.ErrOrStderr())
			if err != nil {
				return fmt.Errorf("serve: %w", err)
			}
			defer stopTracing() // after runServe closed everything that makes spans
			cfg.TracerProvider = tr.Provider
			var lbf *lookbackFlags
			if f.lookback {
				lbf = f.lookbackFlags
			}
			return runServe(ctx, cfg, f.httpOptions(), f.gateway, lbf, f.console, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f = bindServeFlags(cmd.Flags())
	return cmd
}

// bindServeFlags defines the serve flags on fl.
func bindServeFlags(fl *pflag.FlagSet) *serveFlags {
	f := &serveFlags{sec: bindSecurityFlags(fl)}
	fl.StringVar(&f.data, "data", "./spool-data", "data directory (partition logs and topic metadata)")
	fl.StringVar(&f.listen, "listen", "127.0.0.1:9092", "Kafka listener address host:port (port 0 picks a free port)")
	fl.StringVar(&f.advertise, "advertise", "", "host:port clients are told to connect to (default: the listen address)")
	fl.StringVar(&f.http, "http", "127.0.0.1:8080", `HTTP listener for /metrics (port 0 picks a free port; "" disables it)`)
	fl.StringVar(&f.fsync, "fsync", "always", "durability: always (fsync before acknowledging), interval or never")
	fl.IntVar(&f.commitLogMaxBatch, "commit-log-max-batch", 32<<10, "fsync always: batches up to this many bytes are acknowledged through the shared commit log (one fsync for all partitions); -1: every partition fsyncs its own segment")
	fl.Int64Var(&f.commitLogFile, "commit-log-file-bytes", 16<<20, "fsync always: size of each commit log file (prewritten; its segments are checkpointed when it is full)")
	fl.IntVar(&f.commitLogRounds, "commit-log-rounds-in-flight", 2, "fsync always: commit log rounds that may wait for their fsyncs at once (acknowledged in order); 1: one round at a time")
	fl.DurationVar(&f.commitLogWindow, "commit-log-share-window", 50*time.Millisecond, "fsync always: small batches take the commit log while more than one partition appends, that is for this long after an append switched partitions; -1ns: always")
	fl.BoolVar(&f.autoCreateTopics, "auto-create-topics", true, "create unknown topics when clients ask for their metadata")
	fl.Int32Var(&f.defaultPartitions, "default-partitions", 1, "partitions of auto-created topics")
	fl.Int32Var(&f.maxFrameBytes, "max-frame-bytes", 100<<20, "largest request frame accepted; larger ones close the connection")
	fl.DurationVar(&f.groupMinSession, "group-min-session-timeout", 6*time.Second, "smallest session timeout a consumer group member may ask for (group.min.session.timeout.ms)")
	fl.DurationVar(&f.groupMaxSession, "group-max-session-timeout", 30*time.Minute, "largest session timeout a consumer group member may ask for (group.max.session.timeout.ms)")
	fl.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fl.BoolVar(&f.recoverMetadata, "recover-metadata", false, "rebuild broker-meta.json from the partition directories (after it was lost); partitions missing from disk are recreated empty")
	f.gateway = bindGatewayFlags(fl, "gateway-", true)
	f.console = bindConsoleFlags(fl, true)
	f.httpAuth = bindHTTPAuthFlags(fl, false)
	fl.DurationVar(&f.fsyncInterval, "fsync-interval", 50*time.Millisecond, "how often --fsync interval syncs the logs")
	fl.Int64Var(&f.logRetentionMs, "log-retention-ms", 7*24*3600*1000, "default retention.ms of topics (log.retention.ms); -1 keeps forever")
	fl.Int64Var(&f.logRetentionBytes, "log-retention-bytes", -1, "default retention.bytes of topics (log.retention.bytes), per partition; -1 is no limit")
	fl.Int64Var(&f.logSegmentBytes, "log-segment-bytes", 1<<30, "default segment.bytes of topics (log.segment.bytes)")
	fl.Int32Var(&f.messageMaxBytes, "message-max-bytes", 1048588, "default max.message.bytes of topics (message.max.bytes): the largest record batch accepted")
	fl.DurationVar(&f.groupInitialDelay, "group-initial-rebalance-delay", 3*time.Second, "how long an empty consumer group's first rebalance waits for more members (group.initial.rebalance.delay.ms); 0 disables it")
	fl.StringVar(&f.logFormat, "log-format", "text", "log format on stderr: text (logfmt) or json (one JSON object per line)")
	fl.StringVar(&f.configFile, "config", "", "YAML file of flag values (keys are flag names); flags and SPOOL_* environment variables override it")
	fl.BoolVar(&f.pprof, "pprof", false, "serve Go's profiler on the HTTP listener under /debug/pprof/ (do not expose it)")
	fl.BoolVar(&f.lookback, "lookback", true, "run the lookback archive (every event of every topic, searchable, replayable) on /api/lookback/")
	f.lookbackFlags = bindLookbackFlags(fl, "lookback-", "")
	fl.Lookup("lookback-store").Usage = "lookback archive store: a directory (embedded), pebble:DIR, sqlite:DIR or a postgres:// URL (default <data>/__lookback)"
	fl.IntVar(&f.maxConns, "max-connections", 10000, "most open client connections; more are closed on accept (max.connections)")
	fl.IntVar(&f.maxConnsPerIP, "max-connections-per-ip", 1000, "most open client connections from one IP address (max.connections.per.ip)")
	fl.Int64Var(&f.queuedBytes, "queued-max-request-bytes", 512<<20, "bytes of requests read but not answered, over all connections; at the bound reading waits (queued.max.request.bytes)")
	fl.Int64Var(&f.connQueued, "conn-queued-max-bytes", 0, "bytes of requests read but not answered on one connection (0: --max-frame-bytes)")
	fl.DurationVar(&f.idleTimeout, "idle-timeout", 10*time.Minute, "close a connection that sends nothing with no request in flight for this long (connections.max.idle.ms)")
	fl.DurationVar(&f.frameTimeout, "frame-timeout", 30*time.Second, "close a connection whose announced request frame does not arrive whole within this time")
	fl.Int32Var(&f.maxFetchBytes, "max-fetch-bytes", 57671680, "most bytes of records in one fetch response, whatever the client asks (fetch.max.bytes)")
	fl.IntVar(&f.groupMaxSize, "group-max-size", 1000, "most members of one consumer group (group.max.size)")
	fl.IntVar(&f.maxDecompressed, "max-decompressed-bytes", storage.DefaultMaxDecompressedBytes, "most bytes the records of one compressed batch may decompress to when a produce is validated")
	return f
}

// applyEnv sets every flag not given on the command line from its SPOOL_*
// environment variable, if set.
func applyEnv(fs *pflag.FlagSet, lookup func(string) (string, bool)) error {
	var err error
	fs.VisitAll(func(fl *pflag.Flag) {
		if err != nil || fl.Changed {
			return
		}
		name := "SPOOL_" + strings.ToUpper(strings.ReplaceAll(fl.Name, "-", "_"))
		if v, ok := lookup(name); ok {
			if e := fs.Set(fl.Name, v); e != nil {
				err = fmt.Errorf("serve: environment %s=%q: %w", name, v, e)
			}
		}
	})
	return err
}

// config turns the flags into a broker.Config.
func (f *serveFlags) config() (broker.Config, error) {
	mode, err := storage.ParseFsyncMode(f.fsync)
	if err != nil {
		return broker.Config{}, fmt.Errorf("serve: --fsync: %w", err)
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(f.logLevel)); err != nil {
		return broker.Config{}, fmt.Errorf("serve: --log-level %q: %w", f.logLevel, err)
	}
	logger, err := newLogger(os.Stderr, f.logFormat, level)
	if err != nil {
		return broker.Config{}, err
	}
	// 0 means "the default" in broker.Config; on the command line it is
	// a mistake.
	if f.defaultPartitions < 1 {
		return broker.Config{}, fmt.Errorf("serve: --default-partitions %d: must be at least 1 (DefaultPartitions)", f.defaultPartitions)
	}
	if f.maxFrameBytes < 1 {
		return broker.Config{}, fmt.Errorf("serve: --max-frame-bytes %d: must be positive", f.maxFrameBytes)
	}
	if f.groupMinSession <= 0 || f.groupMaxSession <= 0 {
		return broker.Config{}, fmt.Errorf("serve: --group-min-session-timeout %v, --group-max-session-timeout %v: must be positive", f.groupMinSession, f.groupMaxSession)
	}
	switch {
	case f.fsyncInterval < time.Millisecond:
		return broker.Config{}, fmt.Errorf("serve: --fsync-interval %v: must be at least 1ms", f.fsyncInterval)
	case f.logRetentionMs < 1 && f.logRetentionMs != -1:
		// As Kafka refuses log.retention.ms=0.
		return broker.Config{}, fmt.Errorf("serve: --log-retention-ms %d: must be -1 (forever) or at least 1", f.logRetentionMs)
	case f.logRetentionBytes < 1 && f.logRetentionBytes != -1:
		return broker.Config{}, fmt.Errorf("serve: --log-retention-bytes %d: must be -1 (no limit) or at least 1; for a topic that keeps only its active segment set retention.bytes=0 on it", f.logRetentionBytes)
	case f.logSegmentBytes < 1024 || f.logSegmentBytes > 1<<31-1:
		return broker.Config{}, fmt.Errorf("serve: --log-segment-bytes %d: must be in [1024, 2147483647]", f.logSegmentBytes)
	case f.messageMaxBytes < 1:
		return broker.Config{}, fmt.Errorf("serve: --message-max-bytes %d: must be positive", f.messageMaxBytes)
	case f.groupInitialDelay < 0:
		return broker.Config{}, fmt.Errorf("serve: --group-initial-rebalance-delay %v: must not be negative", f.groupInitialDelay)
	}
	retention := time.Duration(f.logRetentionMs) * time.Millisecond
	if f.logRetentionMs == -1 || f.logRetentionMs > int64(1<<63-1)/int64(time.Millisecond) {
		retention = -1
	}
	initialDelay := f.groupInitialDelay
	if initialDelay == 0 {
		initialDelay = -1 // none; 0 would mean the default in broker.Config
	}
	for name, v := range map[string]int64{"--max-connections": int64(f.maxConns), "--max-connections-per-ip": int64(f.maxConnsPerIP),
		"--queued-max-request-bytes": f.queuedBytes, "--idle-timeout": int64(f.idleTimeout), "--frame-timeout": int64(f.frameTimeout),
		"--max-fetch-bytes": int64(f.maxFetchBytes), "--group-max-size": int64(f.groupMaxSize), "--max-decompressed-bytes": int64(f.maxDecompressed)} {
		if v <= 0 {
			return broker.Config{}, fmt.Errorf("serve: %s: must be positive", name)
		}
	}
	if f.connQueued < 0 {
		return broker.Config{}, fmt.Errorf("serve: --conn-queued-max-bytes %d: must not be negative", f.connQueued)
	}
	if f.http != "" {
		if _, _, err := net.SplitHostPort(f.http); err != nil {
			return broker.Config{}, fmt.Errorf("serve: --http %q: %w", f.http, err)
		}
	}
	cfg := broker.Config{
		DataDir:                    f.data,
		Listen:                     f.listen,
		Advertise:                  f.advertise,
		Fsync:                      mode,
		CommitLogMaxBatch:          f.commitLogMaxBatch,
		CommitLogRoundsInFlight:    f.commitLogRounds,
		CommitLogFileBytes:         f.commitLogFile,
		CommitLogShareWindow:       f.commitLogWindow,
		DisableAutoCreateTopics:    !f.autoCreateTopics,
		DefaultPartitions:          f.defaultPartitions,
		MaxFrameBytes:              f.maxFrameBytes,
		GroupMinSessionTimeout:     f.groupMinSession,
		GroupMaxSessionTimeout:     f.groupMaxSession,
		FsyncInterval:              f.fsyncInterval,
		LogRetention:               retention,
		LogRetentionBytes:          f.logRetentionBytes,
		LogSegmentBytes:            f.logSegmentBytes,
		MaxMessageBytes:            f.messageMaxBytes,
		GroupInitialRebalanceDelay: initialDelay,
		RecoverMetadata:            f.recoverMetadata,
		MaxConnections:             f.maxConns,
		MaxConnectionsPerIP:        f.maxConnsPerIP,
		QueuedMaxRequestBytes:      f.queuedBytes,
		ConnQueuedMaxBytes:         f.connQueued,
		IdleTimeout:                f.idleTimeout,
		FrameTimeout:               f.frameTimeout,
		MaxFetchBytes:              f.maxFetchBytes,
		GroupMaxSize:               f.groupMaxSize,
		MaxDecompressedBytes:       f.maxDecompressed,
		Logger:                     logger,
	}.WithDefaults()
	if f.httpTLS, err = f.sec.apply(&cfg); err != nil {
		return broker.Config{}, err
	}
	if f.httpTokens, err = loadTokens(f.httpAuth.tokens); err != nil {
		return broker.Config{}, fmt.Errorf("serve: %w", err)
	}
	f.gateway.httpTokens = f.httpTokens != nil
	if err := cfg.Validate(); err != nil {
		return broker.Config{}, fmt.Errorf("serve: %w", err)
	}
	return cfg, nil
}

// runServe runs the broker and the HTTP listener until ctx is done, then
// shuts both down cleanly. It prints the addresses it listens on to out.
func runServe(ctx context.Context, cfg broker.Config, hopts httpOptions, gwf *gatewayFlags, lbf *lookbackFlags, kf *consoleFlags, out, errOut io.Writer) error {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	cfg.Registerer = reg
	b, err := broker.New(cfg)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	var (
		ready    readiness
		srv      *http.Server
		mux      *http.ServeMux
		httpAddr string
		gw       *gateway.Gateway
		lb       *lookback.Service
		con      *console.Console
	)
	httpErr := make(chan error, 1)
	if hopts.addr != "" {
		// The HTTP listener comes up first, so /healthz answers and /readyz
		// says "starting" while storage recovers.
		ln, err := net.Listen("tcp", hopts.addr)
		if err != nil {
			return fmt.Errorf("serve: http listener: %w", err)
		}
		mux = newServeMux(reg, &ready, hopts)
		srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		httpAddr = ln.Addr().String()
		if hopts.tls != nil {
			ln = tls.NewListener(ln, hopts.tls)
		}
		go func() { httpErr <- srv.Serve(ln) }()
	}
	if err := b.Start(ctx); err != nil {
		if srv != nil {
			srv.Close()
		}
		return fmt.Errorf("serve: %w", err)
	}
	fmt.Fprintf(out, "spool: kafka listener on %s (advertised as %s), data in %s, fsync=%s\n", b.Addr(), b.AdvertisedAddr(), cfg.DataDir, cfg.Fsync)
	// With --http-tokens the HTTP services decide with the broker's own
	// live authorizer: an ACL changed through the admin APIs applies to the
	// next HTTP request.
	var ha *httpauth.Authenticator
	if hopts.tokens != nil {
		if ha, err = newAuthenticator(hopts.tokens, b.Authorizer(), cfg.Logger); err != nil {
			if srv != nil {
				srv.Close()
			}
			b.Close()
			return fmt.Errorf("serve: %w", err)
		}
	}
	if len(cfg.Listeners) > 1 {
		addrs := b.ListenerAddrs()
		for _, l := range cfg.Listeners {
			fmt.Fprintf(out, "spool: listener %s (%s) on %s\n", l.Name, l.Protocol, addrs[l.Name])
		}
	}
	if lbf != nil {
		// The archive runs without the HTTP listener too.
		var lbStore lookback.Store
		if lb, lbStore, err = startServeLookback(ctx, cfg, b.AdvertisedAddr(), lbf, reg, ha); err != nil {
			if srv != nil {
				srv.Close()
			}
			b.Close()
			return fmt.Errorf("serve: %w", err)
		}
		defer lbStore.Close()
		defer lb.Close()
	}
	if srv != nil {
		// The services are Kafka clients of the broker over loopback,
		// mounted on the running mux (ServeMux registration is safe while
		// it serves).
		served := "/metrics, /healthz, /readyz"
		if gwf != nil && gwf.enabled {
			if gw, err = startServeGateway(ctx, cfg, b.AdvertisedAddr(), httpAddr, gwf, ha); err != nil {
				srv.Close()
				b.Close()
				return fmt.Errorf("serve: %w", err)
			}
			mountGateway(mux, gw)
			srv.RegisterOnShutdown(gw.EndStreams)
			served += ", /api gateway"
		}
		if lb != nil {
			mux.Handle("/api/lookback/", lb.Handler())
			served += ", /api/lookback"
		}
		if kf != nil && kf.enabled {
			var lbh, gwh http.Handler
			if lb != nil {
				lbh = lb.Handler()
			}
			if gw != nil {
				gwh = gw.Handler()
			}
			if con, err = startServeConsole(ctx, b.AdvertisedAddr(), kf, lbh, gwh, promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), ha, cfg.Logger); err != nil {
				srv.Close()
				b.Close()
				return fmt.Errorf("serve: %w", err)
			}
			mux.Handle("/ui/", con.Handler())
			srv.RegisterOnShutdown(con.EndStreams)
			mux.Handle("GET /{$}", http.RedirectHandler("/ui/", http.StatusFound))
			served += ", /ui console"
		}
		if ha != nil {
			served += "; bearer tokens and ACLs on the gateway, lookback and console"
		}
		fmt.Fprintf(out, "spool: http listener on %s (%s)\n", httpAddr, served)
	}
	ready.setReady()

	var runErr error
	select {
	case <-ctx.Done():
		fmt.Fprintln(errOut, "spool: shutting down")
	case err := <-httpErr:
		runErr = fmt.Errorf("serve: http: %w", err)
	}
	ready.setStopping()
	if srv != nil {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintln(errOut, "spool: http shutdown:", err)
		}
		cancel()
	}
	if con != nil {
		con.Close()
	}
	if gw != nil {
		if err := gw.Close(); err != nil {
			fmt.Fprintln(errOut, "spool: gateway close:", err)
		}
	}
	if lb != nil {
		// Before the broker: the archiver commits what it has archived.
		lb.Close()
	}
	if err := b.Close(); err != nil {
		return errors.Join(runErr, fmt.Errorf("serve: close: %w", err))
	}
	if runErr == nil {
		fmt.Fprintln(errOut, "spool: stopped cleanly")
	}
	return runErr
}

// startServeGateway starts the gateway of `spool serve`: a Kafka client of
// the embedded broker over loopback (its advertised address), its store in
// the data directory unless --gateway-store names another.
func startServeGateway(ctx context.Context, cfg broker.Config, brokerAddr, httpAddr string, gwf *gatewayFlags, ha *httpauth.Authenticator) (*gateway.Gateway, error) {
	gcfg, err := gwf.config([]string{brokerAddr}, httpAddr, cfg.Logger)
	if err != nil {
		return nil, err
	}
	gcfg.TracerProvider = cfg.TracerProvider // the broker's: one service, "spool"
	if ha != nil {
		gcfg.Auth = gatewayAuth(ha, gcfg.Auth)
	}
	if gcfg.StorePath == "" {
		gcfg.StorePath = filepath.Join(cfg.DataDir, "__gateway", "gateway.db")
	}
	if cfg.Registerer != nil {
		h, err := gatewayprom.New(cfg.Registerer)
		if err != nil {
			return nil, fmt.Errorf("gateway metrics: %w", err)
		}
		gcfg.Hooks = h
	}
	gw, err := gateway.New(gcfg)
	if err != nil {
		return nil, err
	}
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := gw.Start(sctx); err != nil {
		return nil, err
	}
	return gw, nil
}
