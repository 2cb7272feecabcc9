package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// spool acl: Kafka ACLs through CreateAcls, DescribeAcls and DeleteAcls, so
// it works against Spool and against Kafka alike.
func newACLCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "acl",
		Short: "Add, list and remove ACLs (Kafka's model: principal, resource, pattern, operation, allow/deny)",
	}
	f := addClientFlags(cmd)
	cmd.AddCommand(newACLAddCmd(f), newACLListCmd(f), newACLRemoveCmd(f))
	return cmd
}

// aclFlags are the flags that name ACLs.
type aclFlags struct {
	allow, deny   []string
	hosts         []string
	operations    []string
	topics        []string
	groups        []string
	txnIDs        []string
	cluster       bool
	prefixed, any bool
}

func bindACLFlags(cmd *cobra.Command, filter bool) *aclFlags {
	a := &aclFlags{}
	fl := cmd.Flags()
	fl.StringSliceVar(&a.allow, "allow", nil, "principal(s) to allow, e.g. User:alice or User:*")
	fl.StringSliceVar(&a.deny, "deny", nil, "principal(s) to deny")
	fl.StringSliceVar(&a.hosts, "host", nil, "host(s) the ACL applies to (default every host, *)")
	fl.StringSliceVar(&a.operations, "operation", nil, "operation(s): all, read, write, create, delete, alter, describe, describe_configs, alter_configs, idempotent_write, cluster_action")
	fl.StringSliceVar(&a.topics, "topic", nil, "topic name(s) or prefix(es) with --prefixed; * for every topic")
	fl.StringSliceVar(&a.groups, "group", nil, "consumer group(s)")
	fl.StringSliceVar(&a.txnIDs, "transactional-id", nil, "transactional id(s)")
	fl.BoolVar(&a.cluster, "cluster", false, "the cluster resource")
	fl.BoolVar(&a.prefixed, "prefixed", false, "the names are prefixes (PREFIXED pattern) instead of exact names (LITERAL)")
	if filter {
		fl.BoolVar(&a.any, "any-pattern", false, "match LITERAL and PREFIXED ACLs alike")
	}
	return a
}

func (a *aclFlags) builder(create bool) (*kadm.ACLBuilder, error) {
	b := kadm.NewACLs()
	if len(a.allow)+len(a.deny) == 0 && create {
		return nil, usageErrorf("name a principal with --allow or --deny")
	}
	if len(a.allow) > 0 {
		b = b.Allow(a.allow...).AllowHosts(a.hosts...)
	}
	if len(a.deny) > 0 {
		b = b.Deny(a.deny...).DenyHosts(a.hosts...)
	}
	if len(a.topics)+len(a.groups)+len(a.txnIDs) == 0 && !a.cluster {
		if create {
			return nil, usageErrorf("name a resource: --topic, --group, --transactional-id or --cluster")
		}
		b = b.AnyResource()
	} else {
		b = b.MaybeTopics(a.topics...).MaybeGroups(a.groups...).MaybeTransactionalIDs(a.txnIDs...).MaybeClusters(a.cluster)
	}
	switch {
	case a.any:
		b = b.ResourcePatternType(kadm.ACLPatternAny)
	case a.prefixed:
		b = b.ResourcePatternType(kadm.ACLPatternPrefixed)
	default:
		b = b.ResourcePatternType(kadm.ACLPatternLiteral)
	}
	if len(a.operations) == 0 {
		if create {
			return nil, usageErrorf("name the operation(s) with --operation")
		}
		b = b.Operations(kadm.OpAny)
	}
	var ops []kadm.ACLOperation
	for _, o := range a.operations {
		op, err := kmsg.ParseACLOperation(o)
		if err != nil || op <= kmsg.ACLOperationAny {
			return nil, usageErrorf("--operation %q: want all, read, write, create, delete, alter, describe, describe_configs, alter_configs, idempotent_write or cluster_action", o)
		}
		ops = append(ops, op)
	}
	if len(ops) > 0 {
		b = b.Operations(ops...)
	}
	return b, nil
}

func newACLAddCmd(f *clientFlags) *cobra.Command {
	var a *aclFlags
	cmd := &cobra.Command{
		Use:   "add",
		Short: "Add ACLs: spool acl add --allow User:alice --operation read --topic orders",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			b, err := a.builder(true)
			if err != nil {
				return err
			}
			return runACL(cmd, f, func(adm *kadm.Client) error {
				ctx, cancel := f.ctx(cmd, true)
				defer cancel()
				res, err := adm.CreateACLs(ctx, b)
				if err != nil {
					return err
				}
				var errs []error
				for _, r := range res {
					if r.Err != nil {
						errs = append(errs, fmt.Errorf("%s %s %s on %s:%s: %v %s", r.Permission, r.Principal, r.Operation, r.Type, r.Name, r.Err, r.ErrMessage))
						continue
					}
					fmt.Fprintf(cmd.OutOrStdout(), "added: %s %s %s on %s:%s (%s) from %s\n", r.Permission, r.Principal, r.Operation, r.Type, r.Name, r.Pattern, r.Host)
				}
				return errors.Join(errs...)
			})
		},
	}
	a = bindACLFlags(cmd, false)
	return cmd
}

func newACLListCmd(f *clientFlags) *cobra.Command {
	var a *aclFlags
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List ACLs (all, or those the flags name)",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			b, err := a.builder(false)
			if err != nil {
				return err
			}
			if len(a.allow)+len(a.deny) == 0 {
				b = b.Allow().AllowHosts().Deny().DenyHosts() // every principal
			}
			return runACL(cmd, f, func(adm *kadm.Client) error {
				ctx, cancel := f.ctx(cmd, true)
				defer cancel()
				res, err := adm.DescribeACLs(ctx, b)
				if err != nil {
					return err
				}
				tw := newTable(cmd.OutOrStdout())
				fmt.Fprintln(tw, "PERMISSION\tPRINCIPAL\tOPERATION\tRESOURCE\tPATTERN\tHOST")
				seen := map[string]bool{}
				for _, r := range res {
					if r.Err != nil {
						return fmt.Errorf("%v %s", r.Err, r.ErrMessage)
					}
					for _, d := range r.Described {
						line := fmt.Sprintf("%s\t%s\t%s\t%s:%s\t%s\t%s", d.Permission, d.Principal, d.Operation, d.Type, d.Name, d.Pattern, d.Host)
						if !seen[line] {
							seen[line] = true
							fmt.Fprintln(tw, line)
						}
					}
				}
				return tw.Flush()
			})
		},
	}
	a = bindACLFlags(cmd, true)
	return cmd
}

func newACLRemoveCmd(f *clientFlags) *cobra.Command {
	var a *aclFlags
	cmd := &cobra.Command{
		Use:     "remove",
		Aliases: []string{"rm"},
		Short:   "Remove the ACLs the flags name",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			b, err := a.builder(true)
			if err != nil {
				return err
			}
			return runACL(cmd, f, func(adm *kadm.Client) error {
				ctx, cancel := f.ctx(cmd, true)
				defer cancel()
				res, err := adm.DeleteACLs(ctx, b)
				if err != nil {
					return err
				}
				n := 0
				for _, r := range res {
					if r.Err != nil {
						return fmt.Errorf("%v %s", r.Err, r.ErrMessage)
					}
					for _, d := range r.Deleted {
						n++
						fmt.Fprintf(cmd.OutOrStdout(), "removed: %s %s %s on %s:%s (%s) from %s\n", d.Permission, d.Principal, d.Operation, d.Type, d.Name, d.Pattern, d.Host)
					}
				}
				if n == 0 {
					return errors.New("acl remove: no ACL matched")
				}
				return nil
			})
		},
	}
	a = bindACLFlags(cmd, true)
	return cmd
}

func runACL(cmd *cobra.Command, f *clientFlags, fn func(*kadm.Client) error) error {
	adm, err := f.admin()
	if err != nil {
		return err
	}
	defer adm.Close()
	if err := fn(adm); err != nil {
		return fmt.Errorf("acl %s: %w", cmd.Name(), describeErr(err, f.brokers))
	}
	return nil
}
