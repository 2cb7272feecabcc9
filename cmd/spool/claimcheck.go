package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/spoolmq/spool/claimcheck"
	"github.com/spoolmq/spool/claimcheck/s3store"
)

func newClaimCheckCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "claimcheck",
		Short: "Claim check blob stores: expire blobs no record can refer to any more",
	}
	cf := addClientFlags(cmd)
	cmd.AddCommand(newClaimCheckSweepCmd(cf))
	return cmd
}

// blobStoreFlags say which blob store a claimcheck command works on.
type blobStoreFlags struct {
	dir                          string
	s3Endpoint, s3Bucket, prefix string
	s3Region                     string
	s3Insecure                   bool
}

func (f *blobStoreFlags) add(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.dir, "dir", "", "the blob store is this local directory (claimcheck.Dir)")
	fl.StringVar(&f.s3Endpoint, "s3-endpoint", "", "the blob store is S3-compatible storage at this host[:port] (with --s3-bucket); credentials from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (anonymous if unset)")
	fl.StringVar(&f.s3Bucket, "s3-bucket", "", "the S3 bucket of the blobs")
	fl.StringVar(&f.prefix, "s3-prefix", "", "the prefix of the blobs' object names in the bucket (s3store.Config.Prefix)")
	fl.StringVar(&f.s3Region, "s3-region", os.Getenv("AWS_REGION"), "the bucket's region (default: AWS_REGION, else asked from the endpoint)")
	fl.BoolVar(&f.s3Insecure, "s3-insecure", false, "talk plain HTTP to --s3-endpoint instead of HTTPS")
}

// check reports a store given twice, half or not at all (exit code 2).
func (f *blobStoreFlags) check() error {
	s3 := f.s3Endpoint != "" || f.s3Bucket != ""
	switch {
	case f.dir == "" && !s3:
		return usageErrorf("claimcheck: no blob store: give --dir PATH, or --s3-endpoint and --s3-bucket")
	case f.dir != "" && s3:
		return usageErrorf("claimcheck: give one blob store: --dir or --s3-endpoint/--s3-bucket, not both")
	case s3 && (f.s3Endpoint == "" || f.s3Bucket == ""):
		return usageErrorf("claimcheck: an S3 store needs both --s3-endpoint and --s3-bucket")
	}
	return nil
}

// open opens the store; an S3 bucket must exist.
func (f *blobStoreFlags) open(ctx context.Context) (claimcheck.BlobStore, string, error) {
	if f.dir != "" {
		// NewDir would create a mistyped directory and sweep nothing.
		if fi, err := os.Stat(f.dir); err != nil || !fi.IsDir() {
			return nil, "", usageErrorf("claimcheck: --dir %s is not a directory", f.dir)
		}
		d, err := claimcheck.NewDir(f.dir)
		return d, f.dir, err
	}
	s, err := s3store.New(ctx, s3store.Config{
		Endpoint: f.s3Endpoint, Bucket: f.s3Bucket, Prefix: f.prefix, Region: f.s3Region, Secure: !f.s3Insecure,
		AccessKey: os.Getenv("AWS_ACCESS_KEY_ID"), SecretKey: os.Getenv("AWS_SECRET_ACCESS_KEY"),
	})
	return s, "s3://" + f.s3Bucket + "/" + f.prefix, err
}

func newClaimCheckSweepCmd(cf *clientFlags) *cobra.Command {
	var (
		store  blobStoreFlags
		topics []string
		maxAge time.Duration
		grace  time.Duration
		dryRun bool
	)
	cmd := &cobra.Command{
		Use:   "sweep (--dir PATH | --s3-endpoint HOST --s3-bucket B) (--topic T[,T2] | --max-age D)",
		Short: "Delete the blobs older than the longest retention of the topics that refer to them",
		Long: `Delete the claim check blobs that no record can refer to any more: those written
longer ago than the longest retention.ms + segment.ms of the --topic topics (list
the topic and its retry and dead-letter topics), plus --grace. A topic with
retention.ms -1, or a compacted one, keeps its records forever: then nothing is
deleted. --max-age sweeps with a fixed age instead, without asking the brokers.
Run it periodically (cron, a Kubernetes CronJob), or run claimcheck.Sweeper in
the application.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := store.check(); err != nil {
				return err
			}
			switch {
			case len(topics) == 0 && maxAge == 0:
				return usageErrorf("claimcheck sweep: name the topics whose records refer to the store with --topic, or give --max-age")
			case maxAge < 0:
				return usageErrorf("claimcheck sweep: --max-age %v must be positive", maxAge)
			case grace < 0:
				return usageErrorf("claimcheck sweep: --grace %v is negative", grace)
			}
			ctx, stop := cf.ctx(cmd, false)
			defer stop()
			bs, where, err := store.open(ctx)
			if err != nil {
				return err
			}
			opts := []claimcheck.SweepOption{claimcheck.WithGrace(grace)}
			var adm *kadm.Client
			if maxAge > 0 {
				opts = append(opts, claimcheck.WithMaxAge(maxAge))
			} else {
				if adm, err = cf.admin(); err != nil {
					return err
				}
				defer adm.Close()
			}
			s, err := claimcheck.NewSweeper(bs, adm, topics, opts...)
			if err != nil {
				return usageErrorf("%v", err)
			}
			return sweepOnce(ctx, cmd, s, bs, where, dryRun, grace, cf.brokers)
		},
	}
	store.add(cmd)
	fl := cmd.Flags()
	fl.StringSliceVar(&topics, "topic", nil, "topics whose records refer to the store (comma-separated or repeated)")
	fl.DurationVar(&maxAge, "max-age", 0, "delete blobs older than this, instead of reading the topics' retention (no grace added)")
	fl.DurationVar(&grace, "grace", claimcheck.DefaultGrace, "margin added to the topics' retention (consumers lagging at the edge of retention, clock skew)")
	fl.BoolVar(&dryRun, "dry-run", false, "list the blobs that would be deleted, delete none")
	return cmd
}

// sweepOnce runs one round of s and prints what it did (or, with dryRun,
// would do).
func sweepOnce(ctx context.Context, cmd *cobra.Command, s *claimcheck.Sweeper, bs claimcheck.BlobStore, where string, dryRun bool, grace time.Duration, brokers string) error {
	out := cmd.OutOrStdout()
	age, r, err := s.Age(ctx)
	if err != nil {
		return describeErr(err, brokers)
	}
	if r.Forever {
		fmt.Fprintf(out, "nothing swept: %s (retention.ms -1 or compacted)\n", r)
		return nil
	}
	why := fmt.Sprintf("older than %v", age)
	if r.Topic != "" {
		why += fmt.Sprintf(": %s, plus %v grace", r, grace)
	}
	if dryRun {
		n := 0
		err := claimcheck.Expired(ctx, bs, age, time.Now(), func(b claimcheck.BlobInfo) error {
			n++
			_, err := fmt.Fprintf(out, "%s\t%d\t%s\n", b.Name, b.Size, b.Modified.UTC().Format(time.RFC3339))
			return err
		})
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "dry run: would delete %d blobs in %s %s\n", n, where, why)
		return nil
	}
	n, err := claimcheck.Sweep(ctx, bs, age, time.Now())
	fmt.Fprintf(out, "deleted %d blobs in %s %s\n", n, where, why)
	return err
}
