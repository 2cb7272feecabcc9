package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/spoolmq/spool/auth/httpauth"
	"github.com/spoolmq/spool/broker"
	"github.com/spoolmq/spool/lookback"
	"github.com/spoolmq/spool/lookback/lookbackprom"
)

func newLookbackCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "lookback",
		Short: "The archive of every event: search, show, flows, replay, verification, erasure",
		Long: `The lookback archive keeps every event of every topic, independently of the
broker's retention. spool serve runs it by default (--lookback=false turns it
off); "spool lookback serve" runs it standalone against any Kafka.

The other subcommands talk to the HTTP API of a running lookback service
(--server, default http://127.0.0.1:8080, also SPOOL_SERVER).`,
	}
	sf := addServerFlags(cmd)
	cmd.AddCommand(newLookbackServeCmd(), newLookbackSearchCmd(sf), newLookbackShowCmd(sf),
		newLookbackEraseCmd(sf), newLookbackFlowCmd(sf), newLookbackVerifyCmd(sf), newLookbackReplayCmd(sf))
	return cmd
}

// lookbackFlags are the service flags shared by `spool serve` and
// `spool lookback serve`.
type lookbackFlags struct {
	store    string
	rules    string
	maxAge   time.Duration
	maxBytes int64
	include  []string
	exclude  []string
}

func bindLookbackFlags(fl *pflag.FlagSet, prefix, storeDefault string) *lookbackFlags {
	f := &lookbackFlags{}
	fl.StringVar(&f.store, prefix+"store", storeDefault, "archive store: a directory (embedded store), pebble:DIR, sqlite:DIR or a postgres:// URL")
	fl.StringVar(&f.rules, prefix+"rules", "", "verification rules file (YAML or JSON)")
	fl.DurationVar(&f.maxAge, prefix+"max-age", 0, "remove archived events older than this (0: keep forever)")
	fl.Int64Var(&f.maxBytes, prefix+"max-bytes", 0, "remove the oldest archived events beyond this many compressed payload bytes (0: no limit)")
	fl.StringSliceVar(&f.include, prefix+"include", nil, "regular expressions of topics to archive (default every topic)")
	fl.StringSliceVar(&f.exclude, prefix+"exclude", nil, "regular expressions of topics not to archive (internal __ and spool.replay.* topics never are)")
	return f
}

// openLookbackStore opens the store a --store flag names.
func openLookbackStore(ctx context.Context, spec string) (lookback.Store, error) {
	return lookback.Open(ctx, spec)
}

// config builds the service configuration (the store is opened by the
// caller).
func (f *lookbackFlags) config(brokers []string, log *slog.Logger) (lookback.Config, error) {
	cfg := lookback.Config{Brokers: brokers, MaxAge: f.maxAge, MaxBytes: f.maxBytes, Include: f.include,
		Exclude: f.exclude, Logger: log}
	if f.rules != "" {
		rules, err := lookback.LoadRules(f.rules)
		if err != nil {
			return cfg, usageErrorf("%v", err)
		}
		cfg.Rules = rules
	}
	return cfg, nil
}

func newLookbackServeCmd() *cobra.Command {
	var brokers, httpAddr, group string
	var f *lookbackFlags
	var af *httpAuthFlags
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the lookback service standalone against any Kafka-compatible cluster",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := f.config(splitList(brokers), slog.New(slog.NewTextHandler(os.Stderr, nil)))
			if err != nil {
				return err
			}
			cfg.Group = group
			if _, _, err := net.SplitHostPort(httpAddr); err != nil {
				return usageErrorf("--http %q: %v", httpAddr, err)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			tr, stopTracing, err := startTracing(ctx, "spool-lookback", cfg.Logger, cmd.OutOrStdout(), cmd.ErrOrStderr())
			if err != nil {
				return fmt.Errorf("lookback: %w", err)
			}
			defer stopTracing() // after the service closed (defers run last in, first out)
			cfg.TracerProvider = tr.Provider
			st, err := openLookbackStore(ctx, f.store)
			if err != nil {
				return err
			}
			defer st.Close()
			cfg.Store = st
			ha, stopAuth, err := af.standalone(ctx, splitList(brokers), nil, cfg.Logger)
			if err != nil {
				return err
			}
			defer stopAuth()
			if ha != nil {
				cfg.Authorizer = ha
			}
			reg := prometheus.NewRegistry()
			if cfg.Hooks, err = lookbackprom.New(reg, cfg.Rules); err != nil {
				return err
			}
			svc, err := lookback.New(cfg)
			if err != nil {
				return usageErrorf("%v", err)
			}
			if err := svc.Start(ctx); err != nil {
				return err
			}
			defer svc.Close()
			ln, err := net.Listen("tcp", httpAddr)
			if err != nil {
				return fmt.Errorf("lookback: http listener: %w", err)
			}
			mux := http.NewServeMux()
			mux.Handle("/api/lookback/", svc.Handler())
			mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
			srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
			fmt.Fprintf(cmd.OutOrStdout(), "spool: lookback archiving from %s into %s, http on %s\n", brokers, f.store, ln.Addr())
			go func() { <-ctx.Done(); srv.Close() }()
			if err := srv.Serve(ln); err != nil && err != http.ErrServerClosed {
				return err
			}
			return nil
		},
	}
	def := defaultBrokers
	if env := os.Getenv("SPOOL_BROKERS"); env != "" {
		def = env
	}
	cmd.Flags().StringVarP(&brokers, "brokers", "b", def, "comma-separated seed brokers (host:port); also SPOOL_BROKERS")
	cmd.Flags().StringVar(&httpAddr, "http", "127.0.0.1:8080", "HTTP listener for /api/lookback/")
	cmd.Flags().StringVar(&group, "group", "spool-lookback", "the archiver's consumer group")
	f = bindLookbackFlags(cmd.Flags(), "", "./lookback-data")
	af = bindHTTPAuthFlags(cmd.Flags(), true)
	return cmd
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// filterFlags are the selection flags of search and replay.
type filterFlags struct {
	f lookback.Filter
}

func bindFilterFlags(cmd *cobra.Command) *filterFlags {
	ff := &filterFlags{}
	fl := cmd.Flags()
	fl.StringVar(&ff.f.Key, "key", "", "events with this record key")
	fl.StringVar(&ff.f.Type, "type", "", "events with this ce_type")
	fl.StringVar(&ff.f.CorrelationID, "correlation", "", "events with this correlation_id")
	fl.StringVar(&ff.f.CausationID, "causation", "", "events with this causation_id")
	fl.StringVar(&ff.f.ID, "id", "", "the event with this ce_id")
	fl.StringVar(&ff.f.Source, "source", "", "events with this ce_source")
	fl.StringVar(&ff.f.Subject, "subject", "", "events with this ce_subject")
	fl.StringVar(&ff.f.Topic, "topic", "", "events of this topic")
	fl.StringVar(&ff.f.Since, "since", "", "events of the last DURATION (e.g. 1h); not with --from")
	fl.StringVar(&ff.f.From, "from", "", "events at or after this RFC 3339 time")
	fl.StringVar(&ff.f.To, "to", "", "events before this RFC 3339 time")
	fl.StringVar(&ff.f.Q, "contains", "", "events whose payload contains this text")
	fl.StringVar(&ff.f.Where, "where", "", "events whose JSON payload has PATH=VALUE (e.g. data.customer.id=c-42)")
	return ff
}

// check validates the filter locally, so a mistake exits 2 before any
// request.
func (ff *filterFlags) check() error {
	if _, err := ff.f.Query(time.Now()); err != nil {
		return usageErrorf("%s", strings.TrimPrefix(err.Error(), "lookback: bad query: "))
	}
	return nil
}

func newLookbackSearchCmd(sf *serverFlags) *cobra.Command {
	var limit int
	var asJSON, oldest bool
	var ff *filterFlags
	cmd := &cobra.Command{
		Use:   "search",
		Short: "Search the archive by key, type, correlation id, topic, time and payload",
		Long: `Search the archive. Filters combine (AND). Newest events come first unless
--oldest is given. --json prints JSON Lines, one event per line.`,
		Example: `  spool lookback search --key customer-42 --since 24h
  spool lookback search --correlation 0193a1b2-... --json
  spool lookback search --type order.placed --where data.total=99.5 --limit 10`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := ff.check(); err != nil {
				return err
			}
			if limit < 1 {
				return usageErrorf("--limit %d: must be at least 1", limit)
			}
			q := ff.f.Values()
			if oldest {
				q.Set("order", "oldest")
			}
			out := cmd.OutOrStdout()
			var tw *tabwriter.Writer
			if !asJSON {
				tw = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "TIMESTAMP\tTOPIC/PARTITION/OFFSET\tKEY\tTYPE\tID\tCORRELATION")
				defer tw.Flush()
			}
			n := 0
			for n < limit {
				q.Set("limit", strconv.Itoa(min(limit-n, 1000)))
				var page lookback.SearchResponse
				if err := sf.do(cmd.Context(), http.MethodGet, "/api/lookback/events", q, nil, &page); err != nil {
					return err
				}
				for _, e := range page.Events {
					if asJSON {
						b, _ := json.Marshal(e)
						fmt.Fprintf(out, "%s\n", b)
					} else {
						fmt.Fprintf(tw, "%s\t%s/%d/%d\t%s\t%s\t%s\t%s\n", e.Timestamp.Format(time.RFC3339Nano), e.Topic, e.Partition,
							e.Offset, printable(e.Key), dash(e.Type), dash(e.ID), dash(e.CorrelationID))
					}
					n++
				}
				if page.Next == "" {
					break
				}
				q.Set("cursor", page.Next)
			}
			return nil
		},
	}
	ff = bindFilterFlags(cmd)
	cmd.Flags().IntVar(&limit, "limit", 100, "print at most this many events")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON Lines, one event per line")
	cmd.Flags().BoolVar(&oldest, "oldest", false, "oldest events first")
	return cmd
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func printable(b []byte) string {
	if b == nil {
		return "-"
	}
	return strconv.Quote(string(b))[1 : len(strconv.Quote(string(b)))-1]
}

// parseTPO parses TOPIC/PARTITION/OFFSET.
func parseTPO(s string) (string, int32, int64, error) {
	i := strings.LastIndexByte(s, '/')
	j := -1
	if i > 0 {
		j = strings.LastIndexByte(s[:i], '/')
	}
	if j <= 0 {
		return "", 0, 0, usageErrorf("%q: want TOPIC/PARTITION/OFFSET, e.g. orders/0/42", s)
	}
	p, err1 := strconv.ParseInt(s[j+1:i], 10, 32)
	o, err2 := strconv.ParseInt(s[i+1:], 10, 64)
	if err1 != nil || err2 != nil || p < 0 || o < 0 {
		return "", 0, 0, usageErrorf("%q: want TOPIC/PARTITION/OFFSET with a non-negative partition and offset", s)
	}
	return s[:j], int32(p), o, nil
}

func newLookbackShowCmd(sf *serverFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "show TOPIC/PARTITION/OFFSET",
		Short: "Print one archived event whole (JSON)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			topic, p, o, err := parseTPO(args[0])
			if err != nil {
				return err
			}
			var e lookback.Event
			path := "/api/lookback/events/" + url.PathEscape(topic) + "/" + strconv.Itoa(int(p)) + "/" + strconv.FormatInt(o, 10)
			if err := sf.do(cmd.Context(), http.MethodGet, path, nil, nil, &e); err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), &e)
		},
	}
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func newLookbackEraseCmd(sf *serverFlags) *cobra.Command {
	var key, topic string
	cmd := &cobra.Command{
		Use:   "erase --key K",
		Short: "Remove every archived event of a key (right-to-erasure requests)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if key == "" {
				return usageErrorf("--key is required")
			}
			var resp lookback.EraseResponse
			if err := sf.do(cmd.Context(), http.MethodPost, "/api/lookback/erasures", nil, lookback.EraseRequest{Key: key, Topic: topic}, &resp); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "erased %d events\n", resp.Erased)
			return nil
		},
	}
	cmd.Flags().StringVar(&key, "key", "", "the record key whose events are removed")
	cmd.Flags().StringVar(&topic, "topic", "", "only in this topic (default every topic)")
	return cmd
}

func newLookbackFlowCmd(sf *serverFlags) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "flow CORRELATION_ID",
		Short: "Show every event of a correlation id on a timeline, with its causes and who handled it",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var f lookback.Flow
			if err := sf.do(cmd.Context(), http.MethodGet, "/api/lookback/flows/"+url.PathEscape(args[0]), nil, nil, &f); err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), &f)
			}
			printFlow(cmd.OutOrStdout(), &f)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the flow as JSON")
	return cmd
}

func printFlow(w io.Writer, f *lookback.Flow) {
	fmt.Fprintf(w, "flow %s: %d events over %s\n", f.CorrelationID, len(f.Events), time.Duration(f.Duration*float64(time.Millisecond)))
	for _, fe := range f.Events {
		e := fe.Event
		gap := ""
		if fe.GapMS > 0 {
			gap = "+" + time.Duration(fe.GapMS*float64(time.Millisecond)).String()
		}
		fmt.Fprintf(w, "%s %8s %s%s  %s/%d/%d  id=%s", e.Timestamp.Format("15:04:05.000"), gap, strings.Repeat("  ", fe.Depth),
			dash(e.Type), e.Topic, e.Partition, e.Offset, dash(e.ID))
		if fe.MissingCause {
			fmt.Fprintf(w, "  (cause %s not archived)", e.CausationID)
		}
		fmt.Fprintln(w)
		for _, r := range fe.Receipts {
			fmt.Fprintf(w, "%s %8s %s  -> %s: %s after %d attempt(s), %.1fms\n", strings.Repeat(" ", 12), "", strings.Repeat("  ", fe.Depth),
				r.Group, r.Outcome, r.Attempts, r.Duration)
		}
	}
	if f.Truncated {
		fmt.Fprintf(w, "(truncated at %d events)\n", lookback.MaxFlowEvents)
	}
}

// startServeLookback starts the lookback service of `spool serve`: a Kafka
// client of the embedded broker over loopback (its advertised address), its
// store in <data>/__lookback unless --lookback-store names another.
func startServeLookback(ctx context.Context, cfg broker.Config, brokerAddr string, f *lookbackFlags, reg prometheus.Registerer, ha *httpauth.Authenticator) (*lookback.Service, lookback.Store, error) {
	lcfg, err := f.config([]string{brokerAddr}, cfg.Logger)
	if err != nil {
		return nil, nil, err
	}
	if ha != nil {
		lcfg.Authorizer = ha
	}
	if lcfg.Hooks, err = lookbackprom.New(reg, lcfg.Rules); err != nil {
		return nil, nil, err
	}
	spec := f.store
	if spec == "" {
		spec = filepath.Join(cfg.DataDir, "__lookback")
	}
	st, err := openLookbackStore(ctx, spec)
	if err != nil {
		return nil, nil, err
	}
	lcfg.Store = st
	lcfg.TracerProvider = cfg.TracerProvider // the broker's: one service, "spool"
	svc, err := lookback.New(lcfg)
	if err != nil {
		st.Close()
		return nil, nil, err
	}
	if err := svc.Start(ctx); err != nil {
		st.Close()
		return nil, nil, err
	}
	return svc, st, nil
}

func newLookbackVerifyCmd(sf *serverFlags) *cobra.Command {
	var rulesFile, since, from, to string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Check verification rules over a past range of the archive and report the holes",
		Long: `Evaluate verification rules over the events archived in a time range (--since,
or --from and --to) and report, per rule, how many expectations were checked,
the holes (expectations not met: the event, its correlation id, when it was due)
and the late completions. --rules names a YAML or JSON rules file; without it
the service's own rules (spool serve --lookback-rules) are used. Exits 3 when
there are holes.`,
		Example: `  spool lookback verify --rules rules.yaml --since 24h`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			req := lookback.VerifyRequest{Since: since, From: from, To: to}
			if rulesFile != "" {
				rules, err := lookback.LoadRules(rulesFile)
				if err != nil {
					return usageErrorf("%v", err)
				}
				req.Rules = rules
			}
			if _, err := (lookback.Filter{Since: since, From: from, To: to}).Query(time.Now()); err != nil {
				return usageErrorf("%s", strings.TrimPrefix(err.Error(), "lookback: bad query: "))
			}
			if since == "" && from == "" {
				return usageErrorf("give a range: --since, or --from (and --to)")
			}
			var rep lookback.Report
			if err := sf.do(cmd.Context(), http.MethodPost, "/api/lookback/verify", nil, req, &rep); err != nil {
				return err
			}
			holes := 0
			for _, r := range rep.Rules {
				holes += len(r.Holes)
			}
			if asJSON {
				if err := printJSON(cmd.OutOrStdout(), &rep); err != nil {
					return err
				}
			} else {
				printReport(cmd.OutOrStdout(), &rep)
			}
			if holes > 0 {
				return &exitError{code: 3, err: fmt.Errorf("%d holes", holes)}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&rulesFile, "rules", "", "rules file (YAML or JSON); default the service's rules")
	cmd.Flags().StringVar(&since, "since", "", "check events of the last DURATION (e.g. 24h)")
	cmd.Flags().StringVar(&from, "from", "", "check events at or after this RFC 3339 time")
	cmd.Flags().StringVar(&to, "to", "", "check events before this RFC 3339 time (default now)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	return cmd
}

func printReport(w io.Writer, rep *lookback.Report) {
	for _, r := range rep.Rules {
		fmt.Fprintf(w, "rule %s: %d checked, %d violations, %d holes open, %d late, %d pending\n",
			r.Rule.Name, r.Checked, r.Violations, len(r.Holes), len(r.Late), r.Pending)
		for _, h := range r.Holes {
			fmt.Fprintf(w, "  HOLE  correlation %s: %s %s/%d/%d (id %s) at %s, due %s\n", dash(h.CorrelationID), dash(h.Event.Type),
				h.Event.Topic, h.Event.Partition, h.Event.Offset, dash(h.Event.ID), h.Event.Timestamp.Format(time.RFC3339Nano), h.Due.Format(time.RFC3339Nano))
		}
		for _, h := range r.Late {
			fmt.Fprintf(w, "  LATE  correlation %s: %s %s/%d/%d completed %s, %s late\n", dash(h.CorrelationID), dash(h.Event.Type),
				h.Event.Topic, h.Event.Partition, h.Event.Offset, h.CompletedAt.Format(time.RFC3339Nano), time.Duration(h.LateBy*float64(time.Millisecond)))
		}
	}
}

func newLookbackReplayCmd(sf *serverFlags) *cobra.Command {
	var spec lookback.ReplaySpec
	var detach bool
	var ff *filterFlags
	cmd := &cobra.Command{
		Use:   "replay [filters] [--to-topic T | --to-group G] [--rate N] [--dry-run]",
		Short: "Send archived events again: to their topics, to a topic, or to one consumer group",
		Long: `Replay the archived events a selection matches (the filters of "search"),
oldest first, keeping each key's order. By default each event goes back to its
original topic and partition; --to-topic sends all to one topic; --to-group G
sends them to G's replay topic (spool.replay.G), which only G's agents read
(agent.WithReplay), so no other group handles them again. Every replayed record
carries spool_replay_id and spool_replay_of (original topic/partition/offset).

--dry-run prints what would be replayed (counts per topic and the first events)
and produces nothing. --rate caps events per second. The replay runs in the
lookback service and checkpoints its progress: if the service restarts, it
resumes. The command shows progress until the replay ends (--detach returns at
once; Ctrl-C stops watching, not the replay).`,
		Example: `  spool lookback replay --type order.placed --since 2h --to-group billing --rate 500
  spool lookback replay --key customer-42 --dry-run`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := ff.check(); err != nil {
				return err
			}
			if spec.ToTopic != "" && spec.ToGroup != "" {
				return usageErrorf("give --to-topic or --to-group, not both")
			}
			if spec.Rate < 0 {
				return usageErrorf("--rate %v: must not be negative", spec.Rate)
			}
			spec.Filter = ff.f
			out := cmd.OutOrStdout()
			var st lookback.ReplayState
			if err := sf.do(cmd.Context(), http.MethodPost, "/api/lookback/replays", nil, spec, &st); err != nil {
				return err
			}
			if spec.DryRun {
				printDryRun(out, &st)
				return nil
			}
			fmt.Fprintf(out, "replay %s: %d events\n", st.ID, st.Total)
			if detach {
				return nil
			}
			return watchReplay(cmd.Context(), sf, st.ID, cmd.ErrOrStderr(), out)
		},
	}
	ff = bindFilterFlags(cmd)
	cmd.Flags().StringVar(&spec.ToTopic, "to-topic", "", "send every event to this topic")
	cmd.Flags().StringVar(&spec.ToGroup, "to-group", "", "send every event to this consumer group only (its spool.replay.<group> topic)")
	cmd.Flags().Float64Var(&spec.Rate, "rate", 0, "at most this many events per second (0: no limit)")
	cmd.Flags().BoolVar(&spec.DryRun, "dry-run", false, "print what would be replayed; produce nothing")
	cmd.Flags().BoolVar(&detach, "detach", false, "start the replay and return without watching it")
	return cmd
}

func printDryRun(w io.Writer, st *lookback.ReplayState) {
	fmt.Fprintf(w, "dry run: %d events would be replayed\n", st.Total)
	topics := make([]string, 0, len(st.ByTopic))
	for t := range st.ByTopic {
		topics = append(topics, t)
	}
	slices.Sort(topics)
	for _, t := range topics {
		fmt.Fprintf(w, "  %s: %d\n", t, st.ByTopic[t])
	}
	if len(st.Preview) > 0 {
		fmt.Fprintln(w, "first events:")
	}
	for _, e := range st.Preview {
		fmt.Fprintf(w, "  %s  %s/%d/%d  key=%s  %s  %s\n", e.Timestamp.Format(time.RFC3339Nano), e.Topic, e.Partition, e.Offset,
			printable(e.Key), dash(e.Type), dash(e.ID))
	}
}

// watchReplay polls a replay and draws a progress bar on errOut until it
// ends; a failed or cancelled replay is an error.
func watchReplay(ctx context.Context, sf *serverFlags, id string, errOut, out io.Writer) error {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		var st lookback.ReplayState
		if err := sf.do(ctx, http.MethodGet, "/api/lookback/replays/"+url.PathEscape(id), nil, nil, &st); err != nil {
			return err
		}
		fmt.Fprintf(errOut, "\r%s", progressBar(st.Done, st.Total))
		switch st.Status {
		case "done":
			fmt.Fprintln(errOut)
			fmt.Fprintf(out, "replay %s: done, %d events replayed\n", id, st.Done)
			return nil
		case "failed", "cancelled":
			fmt.Fprintln(errOut)
			return fmt.Errorf("replay %s %s after %d of %d events: %s", id, st.Status, st.Done, st.Total, st.Error)
		}
		select {
		case <-ctx.Done():
			fmt.Fprintln(errOut)
			return fmt.Errorf("stopped watching replay %s (it goes on in the service): %w", id, ctx.Err())
		case <-t.C:
		}
	}
}

func progressBar(done, total int64) string {
	const width = 40
	frac := 1.0
	if total > 0 {
		frac = min(float64(done)/float64(total), 1)
	}
	n := int(frac * width)
	return fmt.Sprintf("[%s%s] %d/%d (%.0f%%)", strings.Repeat("=", n), strings.Repeat(" ", width-n), done, total, frac*100)
}
