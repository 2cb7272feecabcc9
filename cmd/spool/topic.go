package main

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

func newTopicCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "topic",
		Short: "Create, list, describe, alter and delete topics",
	}
	f := addClientFlags(cmd)
	cmd.AddCommand(newTopicCreateCmd(f), newTopicListCmd(f), newTopicDescribeCmd(f),
		newTopicAlterCmd(f), newTopicDeleteCmd(f))
	return cmd
}

func newTopicCreateCmd(f *clientFlags) *cobra.Command {
	var (
		partitions  int32
		replication int16
		configs     []string
		ifNotExists bool
	)
	cmd := &cobra.Command{
		Use:   "create TOPIC...",
		Short: "Create topics",
		Example: `  spool topic create orders -p 8
  spool topic create audit -c retention.ms=604800000 -c max.message.bytes=2097152`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, topics []string) error {
			cfg, err := parseKeyValues("config", configs)
			if err != nil {
				return err
			}
			ptrs := make(map[string]*string, len(cfg))
			for k, v := range cfg {
				ptrs[k] = kadm.StringPtr(v)
			}
			adm, err := f.admin()
			if err != nil {
				return err
			}
			defer adm.Close()
			ctx, cancel := f.ctx(cmd, true)
			defer cancel()
			resps, err := adm.CreateTopics(ctx, partitions, replication, ptrs, topics...)
			if err != nil {
				return fmt.Errorf("topic create: %w", describeErr(err, f.brokers))
			}
			var firstErr error
			for _, r := range resps.Sorted() {
				switch {
				case r.Err != nil && ifNotExists && errors.Is(r.Err, kerr.TopicAlreadyExists):
					fmt.Fprintf(cmd.OutOrStdout(), "topic %q already exists\n", r.Topic)
				case r.Err != nil:
					if firstErr == nil {
						firstErr = fmt.Errorf("topic create %s: %w%s", r.Topic, r.Err, errDetail(r.ErrMessage))
					}
				default:
					fmt.Fprintf(cmd.OutOrStdout(), "created topic %q with %d partitions\n", r.Topic, r.NumPartitions)
				}
			}
			return firstErr
		},
	}
	cmd.Flags().Int32VarP(&partitions, "partitions", "p", -1, "number of partitions (-1: the broker's default)")
	cmd.Flags().Int16VarP(&replication, "replication-factor", "r", -1, "replication factor (-1: the broker's default)")
	cmd.Flags().StringArrayVarP(&configs, "config", "c", nil, "topic config key=value (repeatable)")
	cmd.Flags().BoolVar(&ifNotExists, "if-not-exists", false, "do not fail when the topic already exists")
	return cmd
}

// errDetail formats a broker's optional error message.
func errDetail(msg string) string {
	if msg == "" {
		return ""
	}
	return " (" + msg + ")"
}

func newTopicListCmd(f *clientFlags) *cobra.Command {
	var internal bool
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List topics with their partition counts",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			adm, err := f.admin()
			if err != nil {
				return err
			}
			defer adm.Close()
			ctx, cancel := f.ctx(cmd, true)
			defer cancel()
			list := adm.ListTopics
			if internal {
				list = adm.ListTopicsWithInternal
			}
			details, err := list(ctx)
			if err != nil {
				return fmt.Errorf("topic list: %w", describeErr(err, f.brokers))
			}
			tw := newTable(cmd.OutOrStdout())
			fmt.Fprintln(tw, "TOPIC\tPARTITIONS")
			for _, d := range details.Sorted() {
				fmt.Fprintf(tw, "%s\t%d\n", d.Topic, len(d.Partitions))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&internal, "internal", false, "include internal topics")
	return cmd
}

func newTopicDescribeCmd(f *clientFlags) *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "describe TOPIC",
		Short: "Show a topic's partitions (leader, start and end offsets) and configs",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			topic := args[0]
			adm, err := f.admin()
			if err != nil {
				return err
			}
			defer adm.Close()
			ctx, cancel := f.ctx(cmd, true)
			defer cancel()
			md, err := adm.ListTopics(ctx, topic)
			if err != nil {
				return fmt.Errorf("topic describe %s: %w", topic, describeErr(err, f.brokers))
			}
			td, ok := md[topic]
			if !ok {
				return fmt.Errorf("topic describe %s: topic not found", topic)
			}
			if td.Err != nil {
				return fmt.Errorf("topic describe %s: %w", topic, td.Err)
			}
			starts, err := adm.ListStartOffsets(ctx, topic)
			if err != nil {
				return fmt.Errorf("topic describe %s: start offsets: %w", topic, err)
			}
			ends, err := adm.ListEndOffsets(ctx, topic)
			if err != nil {
				return fmt.Errorf("topic describe %s: end offsets: %w", topic, err)
			}
			rcs, err := adm.DescribeTopicConfigs(ctx, topic)
			if err != nil {
				return fmt.Errorf("topic describe %s: configs: %w", topic, err)
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "Topic:      %s\nPartitions: %d\n\n", topic, len(td.Partitions))
			tw := newTable(out)
			fmt.Fprintln(tw, "PARTITION\tLEADER\tSTART\tEND\tRECORDS")
			for _, p := range td.Partitions.Sorted() {
				s, e := offsetOf(starts, topic, p.Partition), offsetOf(ends, topic, p.Partition)
				fmt.Fprintf(tw, "%d\t%d\t%s\t%s\t%s\n", p.Partition, p.Leader, fmtOffset(s), fmtOffset(e), fmtCount(s, e))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			return printConfigs(out, rcs, all)
		},
	}
	cmd.Flags().BoolVar(&all, "all-configs", false, "also show configs that are at their default value")
	return cmd
}

// offsetOf returns the listed offset of a partition, or -1.
func offsetOf(l kadm.ListedOffsets, topic string, p int32) int64 {
	o, ok := l.Lookup(topic, p)
	if !ok || o.Err != nil {
		return -1
	}
	return o.Offset
}

func fmtOffset(o int64) string {
	if o < 0 {
		return "-"
	}
	return fmt.Sprint(o)
}

func fmtCount(start, end int64) string {
	if start < 0 || end < 0 {
		return "-"
	}
	return fmt.Sprint(end - start)
}

func printConfigs(out io.Writer, rcs kadm.ResourceConfigs, all bool) error {
	fmt.Fprintln(out, "\nConfigs:")
	tw := newTable(out)
	fmt.Fprintln(tw, "KEY\tVALUE\tSOURCE")
	for _, rc := range rcs {
		if rc.Err != nil {
			return fmt.Errorf("topic describe %s: configs: %w%s", rc.Name, rc.Err, errDetail(rc.ErrMessage))
		}
		cfgs := append([]kadm.Config(nil), rc.Configs...)
		sort.Slice(cfgs, func(i, j int) bool { return cfgs[i].Key < cfgs[j].Key })
		for _, c := range cfgs {
			src := strings.ToLower(strings.TrimSuffix(c.Source.String(), "_CONFIG"))
			if !all && c.Source.String() != "DYNAMIC_TOPIC_CONFIG" {
				continue
			}
			v := c.MaybeValue()
			if c.Sensitive {
				v = "(sensitive)"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\n", c.Key, v, src)
		}
	}
	return tw.Flush()
}

func newTopicAlterCmd(f *clientFlags) *cobra.Command {
	var (
		partitions int
		set        []string
		del        []string
	)
	cmd := &cobra.Command{
		Use:   "alter TOPIC",
		Short: "Change a topic's configs or grow its partition count",
		Example: `  spool topic alter orders -c retention.ms=86400000
  spool topic alter orders --delete-config retention.ms
  spool topic alter orders --partitions 16`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			topic := args[0]
			cfg, err := parseKeyValues("config", set)
			if err != nil {
				return err
			}
			if len(cfg) == 0 && len(del) == 0 && partitions == 0 {
				return fmt.Errorf("topic alter %s: nothing to do: give --config, --delete-config or --partitions", topic)
			}
			adm, err := f.admin()
			if err != nil {
				return err
			}
			defer adm.Close()
			ctx, cancel := f.ctx(cmd, true)
			defer cancel()
			out := cmd.OutOrStdout()
			if len(cfg) > 0 || len(del) > 0 {
				var alters []kadm.AlterConfig
				for k, v := range cfg {
					alters = append(alters, kadm.AlterConfig{Op: kadm.SetConfig, Name: k, Value: kadm.StringPtr(v)})
				}
				for _, k := range del {
					alters = append(alters, kadm.AlterConfig{Op: kadm.DeleteConfig, Name: k})
				}
				sort.Slice(alters, func(i, j int) bool { return alters[i].Name < alters[j].Name })
				resps, err := adm.AlterTopicConfigs(ctx, alters, topic)
				if err != nil {
					return fmt.Errorf("topic alter %s: %w", topic, describeErr(err, f.brokers))
				}
				for _, r := range resps {
					if r.Err != nil {
						return fmt.Errorf("topic alter %s: %w%s", topic, r.Err, errDetail(r.ErrMessage))
					}
				}
				fmt.Fprintf(out, "altered configs of topic %q\n", topic)
			}
			if partitions > 0 {
				resps, err := adm.UpdatePartitions(ctx, partitions, topic)
				if err != nil {
					return fmt.Errorf("topic alter %s: %w", topic, describeErr(err, f.brokers))
				}
				for _, r := range resps {
					if r.Err != nil {
						return fmt.Errorf("topic alter %s: partitions: %w%s", topic, r.Err, errDetail(r.ErrMessage))
					}
				}
				fmt.Fprintf(out, "topic %q now has %d partitions\n", topic, partitions)
			}
			return nil
		},
	}
	cmd.Flags().IntVarP(&partitions, "partitions", "p", 0, "grow the topic to this many partitions in total")
	cmd.Flags().StringArrayVarP(&set, "config", "c", nil, "set topic config key=value (repeatable)")
	cmd.Flags().StringArrayVar(&del, "delete-config", nil, "reset a topic config to its default (repeatable)")
	return cmd
}

func newTopicDeleteCmd(f *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:     "delete TOPIC...",
		Aliases: []string{"rm"},
		Short:   "Delete topics and all their records",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, topics []string) error {
			adm, err := f.admin()
			if err != nil {
				return err
			}
			defer adm.Close()
			ctx, cancel := f.ctx(cmd, true)
			defer cancel()
			resps, err := adm.DeleteTopics(ctx, topics...)
			if err != nil {
				return fmt.Errorf("topic delete: %w", describeErr(err, f.brokers))
			}
			var firstErr error
			for _, r := range resps.Sorted() {
				if r.Err != nil {
					if firstErr == nil {
						firstErr = fmt.Errorf("topic delete %s: %w%s", r.Topic, r.Err, errDetail(r.ErrMessage))
					}
					continue
				}
				fmt.Fprintf(cmd.OutOrStdout(), "deleted topic %q\n", r.Topic)
			}
			return firstErr
		},
	}
}

// newTable returns a tab writer for aligned, space-separated columns.
func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
}
