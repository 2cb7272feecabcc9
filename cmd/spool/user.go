package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
)

// spool user: SCRAM users through the Kafka admin API (KIP-554), so it
// works against Spool and against Kafka alike.
func newUserCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "user",
		Short: "Create, list and delete SASL/SCRAM users (DescribeUserScramCredentials, AlterUserScramCredentials)",
	}
	f := addClientFlags(cmd)
	cmd.AddCommand(newUserCreateCmd(f), newUserListCmd(f), newUserDeleteCmd(f))
	return cmd
}

func parseMechanisms(ms []string) ([]kadm.ScramMechanism, error) {
	var out []kadm.ScramMechanism
	for _, m := range ms {
		switch strings.ToUpper(m) {
		case "SCRAM-SHA-256":
			out = append(out, kadm.ScramSha256)
		case "SCRAM-SHA-512":
			out = append(out, kadm.ScramSha512)
		default:
			return nil, usageErrorf("--mechanism %q: want SCRAM-SHA-256 or SCRAM-SHA-512", m)
		}
	}
	return out, nil
}

func newUserCreateCmd(f *clientFlags) *cobra.Command {
	var mechs []string
	var iterations int32
	cmd := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a user (or set its password); the password is read from stdin or SPOOL_USER_PASSWORD",
		Long: `Create a user, or change its password, for the SCRAM mechanisms given (both by
default; PLAIN authenticates against the same credentials). The password is
read from the first line of standard input, or from SPOOL_USER_PASSWORD; it
never goes on the command line. The client salts and hashes it (PBKDF2), so the
password itself never reaches the broker.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ms, err := parseMechanisms(mechs)
			if err != nil {
				return err
			}
			pw := os.Getenv("SPOOL_USER_PASSWORD")
			if pw == "" {
				line, err := bufio.NewReader(cmd.InOrStdin()).ReadString('\n')
				if err != nil && line == "" {
					return usageErrorf("user create: no password: pipe it on stdin or set SPOOL_USER_PASSWORD")
				}
				pw = strings.TrimRight(line, "\r\n")
			}
			if pw == "" {
				return usageErrorf("user create: empty password")
			}
			var ups []kadm.UpsertSCRAM
			for _, m := range ms {
				ups = append(ups, kadm.UpsertSCRAM{User: args[0], Mechanism: m, Iterations: iterations, Password: pw})
			}
			return alterUsers(cmd, f, nil, ups, "created")
		},
	}
	cmd.Flags().StringSliceVar(&mechs, "mechanism", []string{"SCRAM-SHA-256", "SCRAM-SHA-512"}, "SCRAM mechanisms to set")
	cmd.Flags().Int32Var(&iterations, "iterations", 4096, "PBKDF2 iterations (4096 to 16384)")
	return cmd
}

func newUserDeleteCmd(f *clientFlags) *cobra.Command {
	var mechs []string
	cmd := &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a user's SCRAM credentials",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !cmd.Flags().Changed("mechanism") {
				found, err := userMechanisms(cmd, f, args[0])
				if err != nil {
					return err
				}
				mechs = found
			}
			ms, err := parseMechanisms(mechs)
			if err != nil {
				return err
			}
			var dels []kadm.DeleteSCRAM
			for _, m := range ms {
				dels = append(dels, kadm.DeleteSCRAM{User: args[0], Mechanism: m})
			}
			return alterUsers(cmd, f, dels, nil, "deleted")
		},
	}
	cmd.Flags().StringSliceVar(&mechs, "mechanism", nil, "SCRAM mechanisms to delete (default: every one the user has)")
	return cmd
}

// userMechanisms returns the SCRAM mechanisms user has a credential for.
func userMechanisms(cmd *cobra.Command, f *clientFlags, user string) ([]string, error) {
	adm, err := f.admin()
	if err != nil {
		return nil, err
	}
	defer adm.Close()
	ctx, cancel := f.ctx(cmd, true)
	defer cancel()
	res, err := adm.DescribeUserSCRAMs(ctx, user)
	if err != nil {
		return nil, fmt.Errorf("user: %w", describeErr(err, f.brokers))
	}
	r, ok := res[user]
	if !ok || r.Err != nil {
		return nil, fmt.Errorf("user %s: no such user", user)
	}
	var out []string
	for _, c := range r.CredInfos {
		out = append(out, c.Mechanism.String())
	}
	return out, nil
}

func alterUsers(cmd *cobra.Command, f *clientFlags, dels []kadm.DeleteSCRAM, ups []kadm.UpsertSCRAM, did string) error {
	adm, err := f.admin()
	if err != nil {
		return err
	}
	defer adm.Close()
	ctx, cancel := f.ctx(cmd, true)
	defer cancel()
	res, err := adm.AlterUserSCRAMs(ctx, dels, ups)
	if err != nil {
		return fmt.Errorf("user: %w", describeErr(err, f.brokers))
	}
	var errs []error
	for user, r := range res {
		if r.Err != nil {
			msg := r.ErrMessage
			if msg == "" {
				msg = r.Err.Error()
			}
			errs = append(errs, fmt.Errorf("user %s: %v: %s", user, r.Err, msg))
			continue
		}
		fmt.Fprintf(cmd.OutOrStdout(), "user %s %s\n", user, did)
	}
	return errors.Join(errs...)
}

func newUserListCmd(f *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List users and their SCRAM mechanisms",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			adm, err := f.admin()
			if err != nil {
				return err
			}
			defer adm.Close()
			ctx, cancel := f.ctx(cmd, true)
			defer cancel()
			res, err := adm.DescribeUserSCRAMs(ctx)
			if err != nil {
				return fmt.Errorf("user list: %w", describeErr(err, f.brokers))
			}
			names := make([]string, 0, len(res))
			for n := range res {
				names = append(names, n)
			}
			sort.Strings(names)
			tw := newTable(cmd.OutOrStdout())
			fmt.Fprintln(tw, "USER\tMECHANISMS")
			for _, n := range names {
				var ms []string
				for _, c := range res[n].CredInfos {
					ms = append(ms, fmt.Sprintf("%s (%d iterations)", c.Mechanism, c.Iterations))
				}
				sort.Strings(ms)
				fmt.Fprintf(tw, "%s\t%s\n", n, strings.Join(ms, ", "))
			}
			return tw.Flush()
		},
	}
}
