package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/spoolmq/spool/internal/kopt"
)

// defaultBrokers is where the client commands connect unless --brokers or
// SPOOL_BROKERS says otherwise: the default listener of `spool serve`.
const defaultBrokers = "localhost:9092"

// clientFlags are the connection flags shared by every client command (topic,
// produce, consume, group, bench). They are persistent flags of each command
// tree, so `spool topic --brokers x list` and `spool topic list --brokers x`
// both work.
type clientFlags struct {
	brokers string
	timeout time.Duration
	sec     kopt.Security
}

// addClientFlags registers --brokers and --timeout on cmd and its subcommands.
func addClientFlags(cmd *cobra.Command) *clientFlags {
	f := &clientFlags{}
	def := defaultBrokers
	if env := os.Getenv("SPOOL_BROKERS"); env != "" {
		def = env
	}
	cmd.PersistentFlags().StringVarP(&f.brokers, "brokers", "b", def,
		"comma-separated seed brokers (host:port); also SPOOL_BROKERS")
	cmd.PersistentFlags().DurationVar(&f.timeout, "timeout", 30*time.Second,
		"give up on a request (metadata, admin, produce) after this long")
	pf := cmd.PersistentFlags()
	pf.BoolVar(&f.sec.TLS, "tls", false, "connect with TLS (implied by --tls-ca and --tls-cert)")
	pf.StringVar(&f.sec.CAFile, "tls-ca", "", "PEM file of the CA that signed the broker's certificate (default: the system's)")
	pf.StringVar(&f.sec.CertFile, "tls-cert", "", "PEM client certificate, for listeners that require one (mTLS)")
	pf.StringVar(&f.sec.KeyFile, "tls-key", "", "PEM key of --tls-cert")
	pf.StringVar(&f.sec.SASLMechanism, "sasl-mechanism", os.Getenv("SPOOL_SASL_MECHANISM"), "SASL mechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512; also SPOOL_SASL_MECHANISM")
	pf.StringVar(&f.sec.User, "sasl-user", os.Getenv("SPOOL_SASL_USER"), "SASL user; also SPOOL_SASL_USER")
	f.sec.Password = os.Getenv("SPOOL_SASL_PASSWORD") // never a flag: it would show in ps
	return f
}

// seeds returns the seed broker list from --brokers.
func (f *clientFlags) seeds() ([]string, error) {
	var out []string
	for _, s := range strings.Split(f.brokers, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no brokers given: set --brokers or SPOOL_BROKERS")
	}
	return out, nil
}

// client opens a franz-go client to the seed brokers with extra options.
// Requests that cannot reach any broker fail after --timeout instead of
// retrying forever.
func (f *clientFlags) client(opts ...kgo.Opt) (*kgo.Client, error) {
	seeds, err := f.seeds()
	if err != nil {
		return nil, err
	}
	base := []kgo.Opt{
		kgo.SeedBrokers(seeds...),
		kgo.ClientID("spool-cli"),
		kgo.RetryTimeout(f.timeout),
		kgo.DialTimeout(minDuration(f.timeout, 10*time.Second)),
		// Read deadlines are the request's own timeout plus this; for
		// requests without one (ApiVersions, Metadata) it is the whole
		// deadline, so a silent broker fails after --timeout.
		kgo.RequestTimeoutOverhead(f.timeout),
	}
	secOpts, err := f.sec.Opts()
	if err != nil {
		return nil, usageErrorf("%v", err)
	}
	base = append(base, secOpts...)
	cl, err := kgo.NewClient(append(base, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", f.brokers, err)
	}
	return cl, nil
}

// admin opens a kadm client; close it with closeAdmin.
func (f *clientFlags) admin() (*kadm.Client, error) {
	cl, err := f.client()
	if err != nil {
		return nil, err
	}
	adm := kadm.NewClient(cl)
	adm.SetTimeoutMillis(int32(f.timeout / time.Millisecond))
	return adm, nil
}

// ctx returns a context that ends on SIGINT/SIGTERM or after --timeout (when
// bounded is true).
func (f *clientFlags) ctx(cmd *cobra.Command, bounded bool) (context.Context, context.CancelFunc) {
	parent := cmd.Context()
	if parent == nil {
		parent = context.Background()
	}
	ctx, stop := signal.NotifyContext(parent, os.Interrupt, syscall.SIGTERM)
	if !bounded {
		return ctx, stop
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	return ctx, func() { cancel(); stop() }
}

// describeErr adds a hint to errors that mean no broker answered in time.
// Kafka errors already carry their protocol name (UNKNOWN_TOPIC_OR_PARTITION,
// ...) and pass through unchanged.
func describeErr(err error, brokers string) error {
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return fmt.Errorf("%w (is a broker running at %s?)", err, brokers)
	}
	return err
}

// parseKeyValues parses repeated key=value flags; empty keys are rejected.
func parseKeyValues(flag string, kvs []string) (map[string]string, error) {
	out := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--%s %q: want key=value", flag, kv)
		}
		out[k] = v
	}
	return out, nil
}

func minDuration(a, b time.Duration) time.Duration {
	if a < b {
		return a
	}
	return b
}
