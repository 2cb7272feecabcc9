package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

func newGroupCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "group",
		Short: "List, describe, reset and delete consumer groups",
	}
	f := addClientFlags(cmd)
	cmd.AddCommand(newGroupListCmd(f), newGroupDescribeCmd(f), newGroupResetCmd(f), newGroupDeleteCmd(f))
	return cmd
}

func newGroupListCmd(f *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List consumer groups with their state",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			adm, err := f.admin()
			if err != nil {
				return err
			}
			defer adm.Close()
			ctx, cancel := f.ctx(cmd, true)
			defer cancel()
			groups, err := adm.ListGroups(ctx)
			if err != nil {
				return fmt.Errorf("group list: %w", describeErr(err, f.brokers))
			}
			tw := newTable(cmd.OutOrStdout())
			fmt.Fprintln(tw, "GROUP\tSTATE\tPROTOCOL-TYPE")
			for _, g := range groups.Sorted() {
				fmt.Fprintf(tw, "%s\t%s\t%s\n", g.Group, g.State, g.ProtocolType)
			}
			return tw.Flush()
		},
	}
}

// describeGroup describes one group with its lag and fails clearly when the
// group does not exist (no members and no committed offsets).
func describeGroup(ctx context.Context, adm *kadm.Client, group string) (kadm.DescribedGroupLag, error) {
	lags, err := adm.Lag(ctx, group)
	if err != nil {
		return kadm.DescribedGroupLag{}, err
	}
	l, ok := lags[group]
	if !ok {
		return l, fmt.Errorf("group %q not found", group)
	}
	if err := l.Error(); errors.Is(err, kerr.GroupIDNotFound) {
		return l, fmt.Errorf("group %q not found: %w", group, err)
	} else if err != nil {
		return l, err
	}
	if (l.State == "Dead" || l.State == "") && len(l.Members) == 0 && len(l.Lag) == 0 {
		return l, fmt.Errorf("group %q not found", group)
	}
	return l, nil
}

func newGroupDescribeCmd(f *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "describe GROUP",
		Short: "Show a group's members, assignments, committed offsets and lag",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			group := args[0]
			adm, err := f.admin()
			if err != nil {
				return err
			}
			defer adm.Close()
			ctx, cancel := f.ctx(cmd, true)
			defer cancel()
			l, err := describeGroup(ctx, adm, group)
			if err != nil {
				return fmt.Errorf("group describe %s: %w", group, describeErr(err, f.brokers))
			}
			return printGroup(cmd.OutOrStdout(), l)
		},
	}
}

func printGroup(out io.Writer, l kadm.DescribedGroupLag) error {
	fmt.Fprintf(out, "Group:    %s\nState:    %s\nProtocol: %s\nMembers:  %d\n", l.Group, l.State,
		strings.Trim(l.ProtocolType+"/"+l.Protocol, "/"), len(l.Members))
	if len(l.Members) > 0 {
		fmt.Fprintln(out)
		tw := newTable(out)
		fmt.Fprintln(tw, "MEMBER\tINSTANCE\tCLIENT-ID\tHOST\tASSIGNMENT")
		for _, m := range l.Members {
			inst := "-"
			if m.InstanceID != nil {
				inst = *m.InstanceID
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", m.MemberID, inst, m.ClientID, m.ClientHost, assignment(m))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	fmt.Fprintln(out)
	tw := newTable(out)
	fmt.Fprintln(tw, "TOPIC\tPARTITION\tCOMMITTED\tEND\tLAG\tMEMBER")
	for _, pl := range l.Lag.Sorted() {
		committed := "-"
		if pl.Commit.At >= 0 {
			committed = strconv.FormatInt(pl.Commit.At, 10)
		}
		lag := strconv.FormatInt(pl.Lag, 10)
		if pl.Err != nil {
			lag = "error: " + pl.Err.Error()
		}
		member := "-"
		if pl.Member != nil {
			member = pl.Member.MemberID
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\n", pl.Topic, pl.Partition, committed, fmtOffset(pl.End.Offset), lag, member)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(out, "\nTotal lag: %d\n", l.Lag.Total())
	return nil
}

// assignment formats a member's assigned partitions as topic:0,1 topic2:3.
func assignment(m kadm.DescribedGroupMember) string {
	c, ok := m.Assigned.AsConsumer()
	if !ok || len(c.Topics) == 0 {
		return "-"
	}
	var parts []string
	for _, t := range c.Topics {
		ps := append([]int32(nil), t.Partitions...)
		sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
		s := make([]string, len(ps))
		for i, p := range ps {
			s[i] = strconv.Itoa(int(p))
		}
		parts = append(parts, t.Topic+":"+strings.Join(s, ","))
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}

func newGroupDeleteCmd(f *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:     "delete GROUP...",
		Aliases: []string{"rm"},
		Short:   "Delete consumer groups and their committed offsets (the groups must have no members)",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, groups []string) error {
			adm, err := f.admin()
			if err != nil {
				return err
			}
			defer adm.Close()
			ctx, cancel := f.ctx(cmd, true)
			defer cancel()
			resps, err := adm.DeleteGroups(ctx, groups...)
			if err != nil {
				return fmt.Errorf("group delete: %w", describeErr(err, f.brokers))
			}
			var firstErr error
			for _, r := range resps.Sorted() {
				if r.Err != nil {
					if firstErr == nil {
						firstErr = fmt.Errorf("group delete %s: %w", r.Group, r.Err)
					}
					continue
				}
				fmt.Fprintf(cmd.OutOrStdout(), "deleted group %q\n", r.Group)
			}
			return firstErr
		},
	}
}

// resetSpec is one reset-offsets target; exactly one mode is set.
type resetSpec struct {
	earliest, latest bool
	datetime         string
	offset           int64
	shiftBy          int64
	set              map[string]bool // which of offset/shift-by were given
}

func newGroupResetCmd(f *clientFlags) *cobra.Command {
	var (
		topics  []string
		execute bool
		spec    = resetSpec{}
	)
	cmd := &cobra.Command{
		Use:   "reset-offsets GROUP --topic T[:P,P...] (--to-earliest|--to-latest|--to-datetime T|--to-offset N|--shift-by N)",
		Short: "Move a group's committed offsets (dry run unless --execute)",
		Long: `reset-offsets computes new committed offsets for the group on the given topics
and prints the plan. Nothing changes unless --execute is given. The group must
have no live members: stop its consumers first (Kafka refuses commits from
outside a live generation, and the members would overwrite the reset).

--to-offset and --shift-by results are clamped to each partition's start and
end offsets. --shift-by moves from the current commit and needs one.`,
		Example: `  spool group reset-offsets billing --topic orders --to-earliest
  spool group reset-offsets billing --topic orders:0,1 --shift-by -100 --execute
  spool group reset-offsets billing --topic orders --to-datetime 2024-05-01T12:00:00Z --execute`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			group := args[0]
			spec.set = map[string]bool{}
			cmd.Flags().Visit(func(fl *pflag.Flag) { spec.set[fl.Name] = true })
			if err := spec.validate(); err != nil {
				return fmt.Errorf("group reset-offsets: %w", err)
			}
			if len(topics) == 0 {
				return errors.New("group reset-offsets: give at least one --topic")
			}
			adm, err := f.admin()
			if err != nil {
				return err
			}
			defer adm.Close()
			ctx, cancel := f.ctx(cmd, true)
			defer cancel()
			plan, err := planReset(ctx, adm, group, topics, spec)
			if err != nil {
				return fmt.Errorf("group reset-offsets %s: %w", group, describeErr(err, f.brokers))
			}
			out := cmd.OutOrStdout()
			tw := newTable(out)
			fmt.Fprintln(tw, "TOPIC\tPARTITION\tCURRENT\tNEW")
			for _, r := range plan {
				fmt.Fprintf(tw, "%s\t%d\t%s\t%d\n", r.topic, r.partition, fmtOffset(r.current), r.next)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			if !execute {
				fmt.Fprintln(out, "\nDry run: nothing changed. Run again with --execute to apply.")
				return nil
			}
			os := make(kadm.Offsets)
			for _, r := range plan {
				os.Add(kadm.Offset{Topic: r.topic, Partition: r.partition, At: r.next, LeaderEpoch: -1})
			}
			if err := adm.CommitAllOffsets(ctx, group, os); err != nil {
				return fmt.Errorf("group reset-offsets %s: commit: %w", group, describeErr(err, f.brokers))
			}
			fmt.Fprintf(out, "\nReset %d partitions of group %q.\n", len(plan), group)
			return nil
		},
	}
	cmd.Flags().StringArrayVarP(&topics, "topic", "t", nil, "topic to reset, optionally with partitions: orders or orders:0,1 (repeatable)")
	cmd.Flags().BoolVar(&spec.earliest, "to-earliest", false, "reset to each partition's start offset")
	cmd.Flags().BoolVar(&spec.latest, "to-latest", false, "reset to each partition's end offset")
	cmd.Flags().StringVar(&spec.datetime, "to-datetime", "", "reset to the first record at or after this time (RFC3339 or @MILLIS)")
	cmd.Flags().Int64Var(&spec.offset, "to-offset", 0, "reset to this offset")
	cmd.Flags().Int64Var(&spec.shiftBy, "shift-by", 0, "move the committed offset by N (negative: re-read N records)")
	cmd.Flags().BoolVar(&execute, "execute", false, "apply the plan (default: print it only)")
	return cmd
}

func (s resetSpec) validate() error {
	n := 0
	for _, b := range []bool{s.earliest, s.latest, s.datetime != "", s.set["to-offset"], s.set["shift-by"]} {
		if b {
			n++
		}
	}
	if n != 1 {
		return errors.New("give exactly one of --to-earliest, --to-latest, --to-datetime, --to-offset, --shift-by")
	}
	if s.datetime != "" {
		if _, err := parseTimestamp(s.datetime); err != nil {
			return fmt.Errorf("bad --to-datetime %q: want RFC3339 (2024-05-01T12:00:00Z) or @MILLIS", s.datetime)
		}
	}
	return nil
}

type resetRow struct {
	topic         string
	partition     int32
	current, next int64
}

// planReset computes the new offset of every selected partition. It refuses
// when the group has live members.
func planReset(ctx context.Context, adm *kadm.Client, group string, topicArgs []string, spec resetSpec) ([]resetRow, error) {
	described, err := adm.DescribeGroups(ctx, group)
	if err != nil {
		return nil, err
	}
	if d, ok := described[group]; ok {
		if d.Err != nil && !errors.Is(d.Err, kerr.GroupIDNotFound) {
			return nil, d.Err
		}
		if len(d.Members) > 0 {
			return nil, fmt.Errorf("group has %d live members (state %s): stop its consumers before resetting offsets", len(d.Members), d.State)
		}
	}
	committed, err := fetchCommitted(ctx, adm, group)
	if err != nil {
		return nil, fmt.Errorf("fetch offsets: %w", err)
	}
	var rows []resetRow
	for _, arg := range topicArgs {
		topic, parts, err := parseTopicPartitions(arg)
		if err != nil {
			return nil, err
		}
		starts, ends, err := listBounds(ctx, adm, topic)
		if err != nil {
			return nil, fmt.Errorf("topic %s: %w", topic, err)
		}
		var byTime kadm.ListedOffsets
		if spec.datetime != "" {
			ms, _ := parseTimestamp(spec.datetime)
			if byTime, err = adm.ListOffsetsAfterMilli(ctx, ms, topic); err == nil {
				err = byTime.Error()
			}
			if err != nil {
				return nil, fmt.Errorf("topic %s: list offsets by time: %w", topic, err)
			}
		}
		if len(parts) == 0 {
			parts = sortedPartitions(ends[topic])
		}
		for _, p := range parts {
			if _, ok := ends.Lookup(topic, p); !ok {
				return nil, fmt.Errorf("topic %s has no partition %d", topic, p)
			}
			start, end := offsetOf(starts, topic, p), offsetOf(ends, topic, p)
			cur := int64(-1)
			if o, ok := committed.Lookup(topic, p); ok && o.Err == nil {
				cur = o.At
			}
			var next int64
			switch {
			case spec.earliest:
				next = start
			case spec.latest:
				next = end
			case spec.datetime != "":
				if next = offsetOf(byTime, topic, p); next < 0 {
					next = end
				}
			case spec.set["to-offset"]:
				next = spec.offset
			default:
				if cur < 0 {
					return nil, fmt.Errorf("topic %s partition %d: no committed offset to shift from", topic, p)
				}
				next = cur + spec.shiftBy
			}
			next = min(max(next, start), end)
			rows = append(rows, resetRow{topic: topic, partition: p, current: cur, next: next})
		}
	}
	return rows, nil
}

// parseTopicPartitions parses "topic" or "topic:0,1,2".
func parseTopicPartitions(s string) (string, []int32, error) {
	topic, list, ok := strings.Cut(s, ":")
	if topic == "" {
		return "", nil, fmt.Errorf("bad --topic %q", s)
	}
	if !ok {
		return topic, nil, nil
	}
	var ps []int32
	for _, f := range strings.Split(list, ",") {
		p, err := strconv.ParseInt(strings.TrimSpace(f), 10, 32)
		if err != nil || p < 0 {
			return "", nil, fmt.Errorf("bad --topic %q: want topic or topic:0,1", s)
		}
		ps = append(ps, int32(p))
	}
	return topic, ps, nil
}
