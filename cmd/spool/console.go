package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/spoolmq/spool/auth/httpauth"
	"github.com/spoolmq/spool/console"
)

// consoleFlags are the console's flags, in `spool serve` (--console,
// --console-read-only) and in `spool console`.
type consoleFlags struct {
	enabled     bool
	readOnly    bool
	dlqPatterns []string
}

func bindConsoleFlags(fl *pflag.FlagSet, inServe bool) *consoleFlags {
	f := &consoleFlags{}
	if inServe {
		fl.BoolVar(&f.enabled, "console", true, "serve the web console on /ui/ of the HTTP listener")
	}
	fl.BoolVar(&f.readOnly, "console-read-only", false, "the console shows everything and changes nothing (every write answers 403)")
	fl.StringSliceVar(&f.dlqPatterns, "console-dlq-patterns", nil, "name patterns (globs, comma-separated) of dead-letter topics (default: "+strings.Join(console.DefaultDeadLetterTopics, ",")+")")
	return f
}

// proxyTo returns a reverse proxy to the HTTP API at rawURL ("" gives
// nil: that part of the console is off).
func proxyTo(flag, rawURL string) (http.Handler, error) {
	if rawURL == "" {
		return nil, nil
	}
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, usageErrorf("console: --%s %q: want http(s)://host:port", flag, rawURL)
	}
	p := httputil.NewSingleHostReverseProxy(u)
	director := p.Director
	p.Director = func(r *http.Request) {
		director(r)
		// The principal the console authenticated (a browser session has
		// no Authorization header) goes on with its token, so the remote
		// API decides for the same principal.
		if id, ok := httpauth.FromContext(r.Context()); ok && id.Token != "" && r.Header.Get("Authorization") == "" {
			r.Header.Set("Authorization", "Bearer "+id.Token)
		}
	}
	return p, nil
}

// metricsProxy returns a handler that answers with the Prometheus metrics
// at rawURL, whatever the path it is asked for ("" gives nil).
func metricsProxy(rawURL string) (http.Handler, error) {
	if rawURL == "" {
		return nil, nil
	}
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, usageErrorf("console: --metrics-url %q: want http(s)://host:port/path", rawURL)
	}
	return &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		pr.Out.URL.Scheme, pr.Out.URL.Host, pr.Out.Host = u.Scheme, u.Host, u.Host
		pr.Out.URL.Path, pr.Out.URL.RawPath, pr.Out.URL.RawQuery = u.Path, u.RawPath, u.RawQuery
	}}, nil
}

func newConsoleCmd() *cobra.Command {
	var (
		cf          *clientFlags
		kf          *consoleFlags
		af          *httpAuthFlags
		httpAddr    string
		lookbackURL string
		gatewayURL  string
		metricsURL  string
		logLevel    string
	)
	cmd := &cobra.Command{
		Use:   "console",
		Short: "Run the web console standalone against any Kafka cluster",
		Long: `Run the web console (topics, messages, consumer groups and lag, dead letters,
lookback, async requests) as a Kafka client of --brokers, on --http under /ui/.
--lookback-url and --gateway-url point it at a lookback archive and a gateway
(spool serve's HTTP listener, spool lookback serve, spool gateway) for the
archive pages and the requests page; --metrics-url at the broker's Prometheus
metrics for the overview's fsync latency and request rates. docs/console.md describes every page.
SIGINT or SIGTERM stops it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var level slog.Level
			if err := level.UnmarshalText([]byte(logLevel)); err != nil {
				return usageErrorf("console: --log-level %q: %v", logLevel, err)
			}
			seeds, err := cf.seeds()
			if err != nil {
				return err
			}
			secOpts, err := cf.sec.Opts()
			if err != nil {
				return usageErrorf("%v", err)
			}
			cfg := console.Config{
				Brokers: seeds, ClientOptions: secOpts, ReadOnly: kf.readOnly, DeadLetterTopics: kf.dlqPatterns,
				Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})),
			}
			if cfg.Lookback, err = proxyTo("lookback-url", lookbackURL); err != nil {
				return err
			}
			if cfg.Gateway, err = proxyTo("gateway-url", gatewayURL); err != nil {
				return err
			}
			if cfg.Metrics, err = metricsProxy(metricsURL); err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			ha, stopAuth, err := af.standalone(ctx, seeds, secOpts, cfg.Logger)
			if err != nil {
				return err
			}
			defer stopAuth()
			if ha != nil {
				cfg.Authorizer = ha
			}
			return runConsole(ctx, cfg, httpAddr, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	cf = addClientFlags(cmd)
	kf = bindConsoleFlags(cmd.Flags(), false)
	af = bindHTTPAuthFlags(cmd.Flags(), true)
	cmd.Flags().StringVar(&httpAddr, "http", "127.0.0.1:8082", "HTTP listener address")
	cmd.Flags().StringVar(&lookbackURL, "lookback-url", "", "base URL of a lookback archive's HTTP API (e.g. http://127.0.0.1:8080)")
	cmd.Flags().StringVar(&gatewayURL, "gateway-url", "", "base URL of a gateway's HTTP API (e.g. http://127.0.0.1:8080)")
	cmd.Flags().StringVar(&metricsURL, "metrics-url", "", "URL of the broker's Prometheus metrics, for the overview's fsync latency and request rates (e.g. http://127.0.0.1:8080/metrics)")
	cmd.Flags().StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn or error")
	return cmd
}

// runConsole serves a standalone console until ctx is done.
func runConsole(ctx context.Context, cfg console.Config, httpAddr string, out, errOut io.Writer) error {
	c, err := console.New(cfg)
	if err != nil {
		return err
	}
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err = c.Start(sctx)
	cancel()
	if err != nil {
		return err
	}
	defer c.Close()
	ln, err := net.Listen("tcp", httpAddr)
	if err != nil {
		return fmt.Errorf("console: http listener: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/ui/", c.Handler())
	mux.Handle("GET /{$}", http.RedirectHandler("/ui/", http.StatusFound))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	fmt.Fprintf(out, "spool: console on http://%s/ui/ (brokers %v)\n", ln.Addr(), cfg.Brokers)
	// Open group pages must not hold the shutdown.
	return serveUntilDone(ctx, "console", ln, mux, c.EndStreams, errOut)
}

// serveUntilDone serves h on ln until ctx is done or serving fails, then
// shuts the server down (at most 10s), calling endStreams first so that
// open SSE and WebSocket streams let it finish. It is the HTTP loop of the
// standalone services (spool console, spool gateway).
func serveUntilDone(ctx context.Context, name string, ln net.Listener, h http.Handler, endStreams func(), errOut io.Writer) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	srv.RegisterOnShutdown(endStreams)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case <-ctx.Done():
	case err := <-errc:
		return fmt.Errorf("%s: http: %w", name, err)
	}
	shctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintf(errOut, "spool: %s shutdown: %v\n", name, err)
	}
	return nil
}

// startServeConsole starts the console of `spool serve`: a Kafka client of
// the embedded broker over loopback, with the in-process lookback and
// gateway APIs (nil when they are off), the broker's own metrics and, with
// --http-tokens, the authenticator.
func startServeConsole(ctx context.Context, brokerAddr string, kf *consoleFlags, lookback, gateway, metrics http.Handler, ha *httpauth.Authenticator, log *slog.Logger) (*console.Console, error) {
	cfg := console.Config{
		Brokers: []string{brokerAddr}, ReadOnly: kf.readOnly, DeadLetterTopics: kf.dlqPatterns,
		Lookback: lookback, Gateway: gateway, Metrics: metrics, Logger: log,
	}
	if ha != nil {
		cfg.Authorizer = ha
	}
	c, err := console.New(cfg)
	if err != nil {
		return nil, err
	}
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := c.Start(sctx); err != nil {
		return nil, err
	}
	return c, nil
}
