package main

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/spoolmq/spool/console"
)

// spool dlq: the console's dead-letter engine (console.FindDeadLetterTopics,
// PlanRedrive, Redrive) on the command line, against any Kafka cluster.

func newDLQCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dlq",
		Short: "List dead-letter topics and redrive their records (dry run unless --execute)",
	}
	f := addClientFlags(cmd)
	cmd.AddCommand(newDLQListCmd(f), newDLQRedriveCmd(f))
	return cmd
}

// engineOpts are the client options the redrive engine's own clients use.
func (f *clientFlags) engineOpts() ([]kgo.Opt, error) {
	seeds, err := f.seeds()
	if err != nil {
		return nil, err
	}
	sec, err := f.sec.Opts()
	if err != nil {
		return nil, usageErrorf("%v", err)
	}
	return append([]kgo.Opt{kgo.SeedBrokers(seeds...), kgo.ClientID("spool-cli"), kgo.RetryTimeout(f.timeout),
		kgo.DialTimeout(minDuration(f.timeout, 10*time.Second))}, sec...), nil
}

func newDLQListCmd(f *clientFlags) *cobra.Command {
	var patterns []string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the dead-letter topics (by name pattern or by the headers of their latest records)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts, err := f.engineOpts()
			if err != nil {
				return err
			}
			ctx, cancel := f.ctx(cmd, true)
			defer cancel()
			list, err := console.FindDeadLetterTopics(ctx, opts, patterns)
			if err != nil {
				return fmt.Errorf("dlq list: %w", describeErr(err, f.brokers))
			}
			tw := newTable(cmd.OutOrStdout())
			fmt.Fprintln(tw, "TOPIC\tFOUND BY\tPARTITIONS\tDEPTH")
			for _, d := range list {
				by := d.By
				if d.Convention != "" {
					by += " (" + d.Convention + ")"
				}
				fmt.Fprintf(tw, "%s\t%s\t%d\t%d\n", d.Name, by, d.Partitions, d.Depth)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringArrayVar(&patterns, "pattern", nil, "dead-letter topic name pattern, a glob (repeatable; default: "+strings.Join(console.DefaultDeadLetterTopics, " ")+")")
	return cmd
}

func newDLQRedriveCmd(f *clientFlags) *cobra.Command {
	var (
		spec     console.RedriveSpec
		from, to string
		execute  bool
	)
	cmd := &cobra.Command{
		Use:   "redrive DLQ [filters] [--to-topic T] [--rate N] [--execute]",
		Short: "Send dead letters back to their original topic or another (dry run unless --execute)",
		Long: `redrive selects records of the dead-letter topic DLQ (all, or those matching every
filter given) and prints what a redrive would do. With --execute it sends them, to each
record's original topic (from its dlq_* or kafka_dlt-* headers) or to --to-topic, with their
key, value and headers minus the dead-letter ones, plus spool_redrive_id, spool_redrive_at
and spool_redrive_of. The dead-letter topic is never changed; records an earlier redrive
sent are skipped unless --again. The redrive sends exactly what the dry run counted, even
if more dead letters arrive meanwhile. Interrupting it (Ctrl-C) stops it after the records
in flight are acknowledged. It exits 3 when records failed (they stay in DLQ).`,
		Example: `  spool dlq redrive orders.dlq --reason retries-exhausted
  spool dlq redrive orders.dlq --error "timeout" --from 2026-12-01T00:00:00Z --execute
  spool dlq redrive orders.dlq --key customer-7 --to-topic orders-replay --rate 500 --execute`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			spec.DLQ = args[0]
			for _, tf := range []struct {
				flag, v string
				t       *time.Time
			}{{"--from", from, &spec.Select.From}, {"--to", to, &spec.Select.To}} {
				if tf.v == "" {
					continue
				}
				ms, err := parseTimestamp(tf.v)
				if err != nil {
					return usageErrorf("dlq redrive: bad %s %q: want RFC3339 (2026-12-01T12:00:00Z) or @MILLIS", tf.flag, tf.v)
				}
				*tf.t = time.UnixMilli(ms)
			}
			if spec.Rate < 0 {
				return usageErrorf("dlq redrive: --rate must be 0 (unlimited) or more")
			}
			opts, err := f.engineOpts()
			if err != nil {
				return err
			}
			ctx, cancel := f.ctx(cmd, false)
			defer cancel()
			out := cmd.OutOrStdout()
			plan, err := console.PlanRedrive(ctx, opts, spec)
			if err != nil {
				return fmt.Errorf("dlq redrive %s: %w", spec.DLQ, describeErr(err, f.brokers))
			}
			if err := printRedrivePlan(out, plan); err != nil {
				return err
			}
			if !execute {
				fmt.Fprintln(out, "\nDry run: nothing sent. Run again with --execute to redrive.")
				return nil
			}
			if plan.Redrive == 0 {
				fmt.Fprintln(out, "\nNothing to redrive.")
				return nil
			}
			spec.Through = plan.Through
			errOut := cmd.ErrOrStderr()
			var last time.Time
			rep, err := console.Redrive(ctx, opts, spec, func(p console.RedriveReport) {
				if time.Since(last) >= time.Second && !p.Done() {
					last = time.Now()
					fmt.Fprintf(errOut, "read %d of %d, redriven %d, failed %d\n", p.Scanned, p.Records, p.Redriven, p.Failed)
				}
			})
			if err != nil {
				return fmt.Errorf("dlq redrive %s: %w", spec.DLQ, describeErr(err, f.brokers))
			}
			return printRedriveReport(out, rep)
		},
	}
	fl := cmd.Flags()
	fl.StringArrayVar(&spec.Select.Reasons, "reason", nil, "only records with this dlq_reason (or Spring exception class); repeatable")
	fl.StringVar(&spec.Select.ErrorContains, "error", "", "only records whose error text contains this (case insensitive)")
	fl.StringVar(&spec.Select.OriginalTopic, "original", "", "only records consumed from this topic")
	fl.StringVar(&spec.Select.Group, "group", "", "only records of this consumer group")
	fl.StringArrayVar(&spec.Select.Keys, "key", nil, "only records with this key; repeatable")
	fl.StringVar(&from, "from", "", "only records dead-lettered at or after this time (RFC3339 or @MILLIS)")
	fl.StringVar(&to, "to", "", "only records dead-lettered before this time (RFC3339 or @MILLIS)")
	fl.StringVar(&spec.Target, "to-topic", "", "send every record to this topic (default: each record's original topic)")
	fl.IntVar(&spec.Rate, "rate", console.DefaultRedriveRate, "records per second, 0 for unlimited")
	fl.BoolVar(&spec.Again, "again", false, "also send records an earlier redrive already sent")
	fl.BoolVar(&execute, "execute", false, "send the records (default: print the dry run only)")
	return cmd
}

func printRedrivePlan(w io.Writer, p *console.RedrivePlan) error {
	fmt.Fprintf(w, "%d of %d matching records to redrive (%d read from %s)", p.Redrive, p.Matched, p.Scanned, p.DLQ)
	if p.AlreadyRedriven > 0 {
		fmt.Fprintf(w, "; %d already redriven, skipped", p.AlreadyRedriven)
	}
	if p.NoTarget > 0 {
		fmt.Fprintf(w, "; %d name no original topic, skipped", p.NoTarget)
	}
	fmt.Fprintln(w)
	if p.Redrive == 0 {
		return nil
	}
	tw := newTable(w)
	fmt.Fprintln(tw, "\nTO TOPIC\tRECORDS\t")
	for _, c := range sortedByCount(p.ByTarget) {
		note := ""
		if slices.Contains(p.MissingTargets, c.k) {
			note = "does not exist: these will fail"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\n", c.k, c.n, note)
	}
	fmt.Fprintln(tw, "\nREASON\tRECORDS\t")
	for _, c := range sortedByCount(p.ByReason) {
		fmt.Fprintf(tw, "%s\t%d\t\n", c.k, c.n)
	}
	return tw.Flush()
}

func printRedriveReport(w io.Writer, r *console.RedriveReport) error {
	state := "done"
	if r.Cancelled {
		state = "cancelled"
	} else if r.Error != "" {
		state = "stopped: " + r.Error
	}
	fmt.Fprintf(w, "\nRedrive %s %s: redriven %d, failed %d, skipped %d (of %d matching, %d read).\n",
		r.ID, state, r.Redriven, r.Failed, r.Skipped, r.Matched, r.Scanned)
	if r.JournalError != "" {
		fmt.Fprintf(w, "Not recorded in %s (%s): a later redrive will not skip these records.\n", console.RedriveJournalTopic, r.JournalError)
	}
	if r.Failed == 0 {
		return nil
	}
	tw := newTable(w)
	fmt.Fprintln(tw, "\nPARTITION/OFFSET\tKEY\tTO\tERROR")
	for _, fl := range r.Failures {
		fmt.Fprintf(tw, "%d/%d\t%s\t%s\t%s\n", fl.Partition, fl.Offset, fl.Key, fl.Target, fl.Error)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	return &exitError{code: 3, err: fmt.Errorf("dlq redrive %s: %d records failed; they are still in %s", r.DLQ, r.Failed, r.DLQ)}
}

type countRow struct {
	k string
	n int64
}

func sortedByCount(m map[string]int64) []countRow {
	out := make([]countRow, 0, len(m))
	for k, n := range m {
		out = append(out, countRow{k, n})
	}
	slices.SortFunc(out, func(a, b countRow) int {
		if c := cmp.Compare(b.n, a.n); c != 0 {
			return c
		}
		return strings.Compare(a.k, b.k)
	})
	return out
}
