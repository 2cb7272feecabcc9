package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/spoolmq/spool/gateway"
	"github.com/spoolmq/spool/gateway/gatewayprom"
)

// gatewayFlags configure the HTTP gateway, inside `spool serve` (with the
// prefix "gateway-") and in `spool gateway`.
type gatewayFlags struct {
	enabled        bool
	store          string
	replyTopic     string
	tokens         []string
	tokenFile      string
	insecure       bool
	requestTimeout time.Duration
	maxBody        int64
	rateLimit      float64
	rateBurst      int
	callbackAllow  []string
	callbackSecret string
	// httpTokens is set by the caller when --http-tokens authenticates
	// the gateway's requests.
	httpTokens bool
}

func bindGatewayFlags(fl *pflag.FlagSet, prefix string, inServe bool) *gatewayFlags {
	f := &gatewayFlags{}
	if inServe {
		fl.BoolVar(&f.enabled, "gateway", true, "serve the HTTP gateway (/api/topics, /api/commands, /api/requests) on the HTTP listener")
	}
	storeDefault := "spool-gateway.db"
	storeHelp := "request status store: a SQLite file, or a postgres:// URL to share it between instances"
	if inServe {
		storeDefault = ""
		storeHelp += " (default <data>/__gateway/gateway.db)"
	}
	fl.StringVar(&f.store, prefix+"store", storeDefault, storeHelp)
	fl.StringVar(&f.replyTopic, prefix+"reply-topic", "spool.gateway.replies", "topic services reply to commands on")
	fl.StringArrayVar(&f.tokens, prefix+"token", nil, "bearer token NAME:SECRET:SCOPE[,SCOPE...], scopes produce:TOPIC and read:TOPIC (TOPIC may end in *); repeatable")
	fl.StringVar(&f.tokenFile, prefix+"token-file", "", "file of tokens, one NAME:SECRET:SCOPES per line")
	fl.BoolVar(&f.insecure, prefix+"insecure", false, "allow requests without tokens on a non-loopback listener")
	fl.DurationVar(&f.requestTimeout, prefix+"request-timeout", time.Hour, "how long an async request waits for its reply before it expires")
	fl.Int64Var(&f.maxBody, prefix+"max-body-bytes", 1<<20, "largest request body accepted")
	fl.Float64Var(&f.rateLimit, prefix+"rate-limit", 0, "requests per second per token (per client IP without tokens); 0: unlimited")
	fl.IntVar(&f.rateBurst, prefix+"rate-burst", 0, "burst above the rate limit (default twice the rate)")
	fl.StringArrayVar(&f.callbackAllow, prefix+"callback-allow", nil, "URL prefix callbacks may target (SSRF allow-list); repeatable")
	fl.StringVar(&f.callbackSecret, prefix+"callback-secret", "", "Standard Webhooks signing secret (whsec_...) for callbacks; also SPOOL_GATEWAY_CALLBACK_SECRET")
	return f
}

// config builds the gateway config for an HTTP listener at httpAddr.
func (f *gatewayFlags) config(brokers []string, httpAddr string, log *slog.Logger) (gateway.Config, error) {
	cfg := gateway.Config{
		Brokers: brokers, StorePath: f.store, ReplyTopic: f.replyTopic, RequestTimeout: f.requestTimeout,
		MaxBodyBytes: f.maxBody, RateLimit: f.rateLimit, RateBurst: f.rateBurst, Logger: log,
		Callback: gateway.CallbackConfig{Allow: f.callbackAllow, Secret: f.callbackSecret},
	}
	if cfg.Callback.Secret == "" {
		cfg.Callback.Secret = os.Getenv("SPOOL_GATEWAY_CALLBACK_SECRET")
	}
	var ts []gateway.Token
	for _, s := range f.tokens {
		t, err := gateway.ParseToken(s)
		if err != nil {
			return cfg, err
		}
		ts = append(ts, t)
	}
	if f.tokenFile != "" {
		fh, err := os.Open(f.tokenFile)
		if err != nil {
			return cfg, fmt.Errorf("gateway: token file: %w", err)
		}
		more, err := gateway.ReadTokens(fh)
		fh.Close()
		if err != nil {
			return cfg, fmt.Errorf("gateway: token file %s: %w", f.tokenFile, err)
		}
		ts = append(ts, more...)
	}
	switch {
	case len(ts) > 0:
		a, err := gateway.NewTokens(ts)
		if err != nil {
			return cfg, err
		}
		cfg.Auth = a
	case f.httpTokens:
	case !loopback(httpAddr) && !f.insecure:
		return cfg, fmt.Errorf("gateway: the HTTP listener %s is not on loopback, so the gateway needs tokens (--http-tokens, --token or --token-file; --insecure to run without)", httpAddr)
	}
	return cfg, nil
}

// loopback reports whether addr (host:port) listens on loopback only.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// mountGateway mounts g's routes on mux.
func mountGateway(mux *http.ServeMux, g *gateway.Gateway) {
	for _, p := range gateway.Prefixes() {
		mux.Handle(p, g.Handler())
	}
}

func newGatewayCmd() *cobra.Command {
	var (
		cf       *clientFlags
		gf       *gatewayFlags
		af       *httpAuthFlags
		httpAddr string
		logLevel string
	)
	cmd := &cobra.Command{
		Use:   "gateway",
		Short: "Run the HTTP gateway standalone against any Kafka cluster",
		Long: `Run the HTTP gateway (produce over HTTP, async commands with 202 + polling,
signed callbacks, SSE and WebSocket push) as a Kafka client of --brokers.
Several instances share request status through --store postgres://...;
docs/gateway.md has the API. SIGINT or SIGTERM stops it cleanly.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var level slog.Level
			if err := level.UnmarshalText([]byte(logLevel)); err != nil {
				return fmt.Errorf("gateway: --log-level %q: %w", logLevel, err)
			}
			log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
			seeds, err := cf.seeds()
			if err != nil {
				return err
			}
			gf.httpTokens = af.tokens != ""
			cfg, err := gf.config(seeds, httpAddr, log)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			tr, stopTracing, err := startTracing(ctx, "spool-gateway", log, cmd.OutOrStdout(), cmd.ErrOrStderr())
			if err != nil {
				return fmt.Errorf("gateway: %w", err)
			}
			defer stopTracing() // after runGateway closed the gateway
			cfg.TracerProvider = tr.Provider
			secOpts, err := cf.sec.Opts()
			if err != nil {
				return usageErrorf("%v", err)
			}
			ha, stopAuth, err := af.standalone(ctx, seeds, secOpts, log)
			if err != nil {
				return err
			}
			defer stopAuth()
			if ha != nil {
				cfg.Auth = gatewayAuth(ha, cfg.Auth)
			}
			return runGateway(ctx, cfg, httpAddr, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	cf = addClientFlags(cmd)
	gf = bindGatewayFlags(cmd.Flags(), "", false)
	af = bindHTTPAuthFlags(cmd.Flags(), true)
	cmd.Flags().StringVar(&httpAddr, "http", "127.0.0.1:8081", "HTTP listener address")
	cmd.Flags().StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn or error")
	return cmd
}

// runGateway serves a standalone gateway until ctx is done.
func runGateway(ctx context.Context, cfg gateway.Config, httpAddr string, out, errOut io.Writer) error {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	hooks, err := gatewayprom.New(reg)
	if err != nil {
		return err
	}
	cfg.Hooks = hooks
	g, err := gateway.New(cfg)
	if err != nil {
		return err
	}
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err = g.Start(sctx)
	cancel()
	if err != nil {
		return err
	}
	defer g.Close()
	ln, err := net.Listen("tcp", httpAddr)
	if err != nil {
		return fmt.Errorf("gateway: http listener: %w", err)
	}
	mux := http.NewServeMux()
	mountGateway(mux, g)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	fmt.Fprintf(out, "spool: gateway on http://%s (brokers %v)\n", ln.Addr(), cfg.Brokers)
	return serveUntilDone(ctx, "gateway", ln, mux, g.EndStreams, errOut)
}
