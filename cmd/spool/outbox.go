package main

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"
	_ "modernc.org/sqlite" // database/sql driver "sqlite"

	"github.com/spoolmq/spool/outbox"
	"github.com/spoolmq/spool/outbox/outboxprom"
)

// outboxFlags are the flags every outbox subcommand shares.
type outboxFlags struct {
	db     string
	table  string
	client *clientFlags // --brokers (for relay) and --timeout
}

func newOutboxCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "outbox",
		Short: "Transactional outbox: print or apply its schema, run the relay, show its status",
		Long: `The transactional outbox (Go package outbox): applications write events into an
outbox table in the same database transaction as their business rows; the relay
publishes them to Kafka (or Spool) in commit order per key.

--db takes postgres://... (or postgresql://...) for PostgreSQL, and sqlite:PATH
(or file:PATH) for SQLite; also SPOOL_OUTBOX_DB.`,
	}
	f := &outboxFlags{client: addClientFlags(cmd)}
	def := os.Getenv("SPOOL_OUTBOX_DB")
	cmd.PersistentFlags().StringVar(&f.db, "db", def, "outbox database URL: postgres://... or sqlite:PATH; also SPOOL_OUTBOX_DB")
	cmd.PersistentFlags().StringVar(&f.table, "table", outbox.DefaultTable, "outbox table name")
	cmd.AddCommand(newOutboxSchemaCmd(f), newOutboxMigrateCmd(f), newOutboxRelayCmd(f), newOutboxStatusCmd(f),
		newOutboxResolveCmd(f, "requeue"), newOutboxResolveCmd(f, "discard"))
	return cmd
}

// open opens --db with the driver its scheme names.
func (f *outboxFlags) open() (*sql.DB, error) {
	u := f.db
	switch {
	case u == "":
		return nil, usageErrorf("outbox: no database: set --db or SPOOL_OUTBOX_DB (postgres://... or sqlite:PATH)")
	case strings.HasPrefix(u, "postgres://"), strings.HasPrefix(u, "postgresql://"):
		return sql.Open("pgx", u)
	case strings.HasPrefix(u, "sqlite:"), strings.HasPrefix(u, "file:"):
		path := strings.TrimPrefix(strings.TrimPrefix(strings.TrimPrefix(u, "sqlite:"), "//"), "file:")
		sep := "?"
		if strings.Contains(path, "?") {
			sep = "&"
		}
		db, err := sql.Open("sqlite", "file:"+path+sep+"_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)")
		if err == nil {
			db.SetMaxOpenConns(1)
		}
		return db, err
	}
	return nil, usageErrorf("outbox: --db %q: want postgres://... or sqlite:PATH", u)
}

// relayPGConns is the relay's connection pool on PostgreSQL, open and
// idle: one connection each for the LISTEN (held), the rounds (reads and
// leases), the marker, the read of the next round, and the janitor, so
// that none waits for another and none is closed and reopened (a backend
// fork) between uses; database/sql keeps 2 idle by default.
const relayPGConns = 5

// relayPool sizes the relay's pool: one connection on SQLite (one writer
// at a time), relayPGConns on PostgreSQL.
func relayPool(db *sql.DB, sqlite bool) {
	n := relayPGConns
	if sqlite {
		n = 1
	}
	db.SetMaxOpenConns(n)
	db.SetMaxIdleConns(n)
}

func (f *outboxFlags) opts() []outbox.Option { return []outbox.Option{outbox.Table(f.table)} }

func newOutboxSchemaCmd(f *outboxFlags) *cobra.Command {
	var dialect string
	cmd := &cobra.Command{
		Use:   "schema --dialect postgres|sqlite",
		Short: "Print the outbox schema (SQL) for your own migrations",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			d, err := outbox.ParseDialect(dialect)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			s, err := outbox.Schema(d, f.opts()...)
			if err != nil {
				return err
			}
			_, err = io.WriteString(cmd.OutOrStdout(), s)
			return err
		},
	}
	cmd.Flags().StringVar(&dialect, "dialect", "", "SQL dialect: postgres or sqlite (required)")
	cmd.MarkFlagRequired("dialect")
	return cmd
}

func newOutboxMigrateCmd(f *outboxFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "migrate --db URL",
		Short: "Create the outbox tables, or bring them to the current schema version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			db, err := f.open()
			if err != nil {
				return err
			}
			defer db.Close()
			ctx, cancel := f.client.ctx(cmd, true)
			defer cancel()
			if err := outbox.Migrate(ctx, db, f.opts()...); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "outbox %s at schema version %d\n", f.table, outbox.SchemaVersion)
			return nil
		},
	}
}

func newOutboxRelayCmd(f *outboxFlags) *cobra.Command {
	var (
		cfg      outbox.Config
		metrics  string
		logLevel string
		migrate  bool
	)
	cmd := &cobra.Command{
		Use:   "relay --db URL --brokers host:port",
		Short: "Publish committed outbox rows to Kafka until interrupted",
		Long: `Run an outbox relay: it publishes committed rows in commit order per key with the
idempotent producer, retries forever with backoff, and marks rows published.
Run several (on one machine or many) for availability: they share the outbox
through expiring bucket leases. On PostgreSQL it wakes on LISTEN/NOTIFY
(--no-listen for poll-only mode behind PgBouncer in transaction mode).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var level slog.Level
			var err error
			if err = level.UnmarshalText([]byte(logLevel)); err != nil {
				return fmt.Errorf("outbox relay: --log-level %q: %w", logLevel, err)
			}
			if cfg.Brokers, err = f.client.seeds(); err != nil {
				return fmt.Errorf("outbox relay: %w", err)
			}
			db, err := f.open()
			if err != nil {
				return err
			}
			defer db.Close()
			relayPool(db, sqliteURL(f.db))
			ctx, stop := f.client.ctx(cmd, false)
			defer stop()
			if migrate {
				if err := outbox.Migrate(ctx, db, f.opts()...); err != nil {
					return err
				}
			}
			cfg.DB, cfg.Table = db, f.table
			cfg.Logger = slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level}))
			tr, stopTracing, err := startTracing(ctx, "spool-outbox-relay", cfg.Logger, cmd.OutOrStdout(), cmd.ErrOrStderr())
			if err != nil {
				return fmt.Errorf("outbox relay: %w", err)
			}
			defer stopTracing() // after runRelay closed the relay
			cfg.TracerProvider = tr.Provider
			return runRelay(ctx, cfg, metrics, cmd.OutOrStdout())
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&cfg.ID, "id", "", "relay id in the lease table (default host-pid-random)")
	fl.IntVar(&cfg.BatchSize, "batch", 2000, "most rows read and published per round")
	fl.DurationVar(&cfg.PollInterval, "poll", 200*time.Millisecond, "how often an idle relay polls (x5 while LISTEN is active)")
	fl.BoolVar(&cfg.NoListen, "no-listen", false, "poll only: no LISTEN/NOTIFY (PgBouncer transaction mode)")
	fl.DurationVar(&cfg.LeaseTTL, "lease-ttl", 15*time.Second, "bucket lease lifetime: a dead relay's buckets are taken over after this")
	fl.DurationVar(&cfg.PublishTimeout, "publish-timeout", 5*time.Second, "fail (and retry) a round whose records wait longer for the broker")
	fl.DurationVar(&cfg.Retention, "retention", 24*time.Hour, "keep events this long after they were added (deleted once also published)")
	fl.IntVar(&cfg.MaxRecordBytes, "max-record-bytes", 999000, "reject rows whose record is larger")
	fl.StringVar(&metrics, "metrics", "", `serve Prometheus /metrics on this address (e.g. 127.0.0.1:9464; "" for none)`)
	fl.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fl.BoolVar(&migrate, "migrate", false, "run the schema migration before starting")
	return cmd
}

func sqliteURL(u string) bool {
	return strings.HasPrefix(u, "sqlite:") || strings.HasPrefix(u, "file:")
}

// runRelay runs a relay (and its /metrics listener) until ctx ends.
func runRelay(ctx context.Context, cfg outbox.Config, metricsAddr string, out io.Writer) error {
	m := outboxprom.New()
	cfg.Hooks = m
	r, err := outbox.New(cfg)
	if err != nil {
		return err
	}
	if err := r.Start(ctx); err != nil {
		return err
	}
	defer r.Close()
	fmt.Fprintf(out, "spool: outbox relay publishing %s to %s\n", cfg.Table, strings.Join(cfg.Brokers, ","))
	if metricsAddr != "" {
		ln, err := net.Listen("tcp", metricsAddr)
		if err != nil {
			return fmt.Errorf("outbox relay: --metrics: %w", err)
		}
		reg := prometheus.NewRegistry()
		reg.MustRegister(m, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go srv.Serve(ln)
		defer srv.Close()
		fmt.Fprintf(out, "spool: outbox relay metrics on http://%s/metrics\n", ln.Addr())
	}
	<-ctx.Done()
	return nil
}

func newOutboxStatusCmd(f *outboxFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "status --db URL",
		Short: "Pending rows per topic, age of the oldest, stuck keys and relays",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			db, err := f.open()
			if err != nil {
				return err
			}
			defer db.Close()
			ctx, cancel := f.client.ctx(cmd, true)
			defer cancel()
			st, err := outbox.ReadStatus(ctx, db, f.opts()...)
			if err != nil {
				return err
			}
			return printStatus(cmd.OutOrStdout(), st, time.Now())
		},
	}
}

func printStatus(w io.Writer, st *outbox.Status, now time.Time) error {
	tw := newTable(w)
	fmt.Fprintln(tw, "TOPIC\tPENDING\tREJECTED\tOLDEST")
	if len(st.Topics) == 0 {
		fmt.Fprintln(tw, "(nothing pending)\t\t\t")
	}
	for _, t := range st.Topics {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\n", t.Topic, t.Pending, t.Rejected, now.Sub(t.Oldest).Round(time.Millisecond))
	}
	tw.Flush()
	if len(st.Stuck) > 0 {
		fmt.Fprintln(w, "\nSTUCK KEYS (requeue or discard rejected rows: spool outbox requeue|discard --id N)")
		tw = newTable(w)
		fmt.Fprintln(tw, "ID\tTOPIC\tKEY\tSTATE\tATTEMPTS\tBEHIND\tEVENT\tERROR")
		for _, s := range st.Stuck {
			state := "retrying"
			if s.Rejected {
				state = "rejected"
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%d\t%s %s\t%s\n", s.ID, s.Topic, strconv.Quote(string(s.Key)), state,
				s.Attempts, s.Behind, s.EventType, s.EventID, s.LastError)
		}
		tw.Flush()
	}
	fmt.Fprintln(w, "\nRELAYS")
	tw = newTable(w)
	fmt.Fprintln(tw, "ID\tBUCKETS\tLAST SEEN")
	for _, r := range st.Relays {
		fmt.Fprintf(tw, "%s\t%d\t%s ago\n", r.ID, r.Buckets, now.Sub(r.Seen).Round(time.Millisecond))
	}
	return tw.Flush()
}

func newOutboxResolveCmd(f *outboxFlags, verb string) *cobra.Command {
	var ids []int64
	var all bool
	short := "Publish rejected rows again (after fixing the cause), ahead of the rest of their keys"
	if verb == "discard" {
		short = "Give up on rejected rows (never published), so their keys move on"
	}
	cmd := &cobra.Command{
		Use:   verb + " --db URL (--id N ... | --all)",
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(ids) == 0 && !all {
				return usageErrorf("outbox %s: name rows with --id (see spool outbox status) or pass --all", verb)
			}
			db, err := f.open()
			if err != nil {
				return err
			}
			defer db.Close()
			fn := outbox.Requeue
			if verb == "discard" {
				fn = outbox.Discard
			}
			ctx, cancel := f.client.ctx(cmd, true)
			defer cancel()
			n, err := fn(ctx, db, ids, f.opts()...)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s %d rejected rows\n", map[string]string{"requeue": "requeued", "discard": "discarded"}[verb], n)
			if n == 0 && len(ids) > 0 {
				return fmt.Errorf("outbox %s: no rejected row with id %v", verb, ids)
			}
			return nil
		},
	}
	cmd.Flags().Int64SliceVar(&ids, "id", nil, "row id (repeatable, or comma-separated)")
	cmd.Flags().BoolVar(&all, "all", false, "every rejected row")
	return cmd
}
