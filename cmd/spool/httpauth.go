package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/spf13/pflag"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/spoolmq/spool/auth"
	"github.com/spoolmq/spool/auth/httpauth"
	"github.com/spoolmq/spool/gateway"
)

// httpAuthFlags turn on HTTP tokens: --http-tokens FILE maps bearer tokens
// to Kafka principals, decided by the ACLs. In `spool serve` they are the
// broker's own; the standalone services (--standalone flags) read the
// cluster's with DescribeAcls every --http-acl-refresh.
type httpAuthFlags struct {
	tokens     string
	refresh    time.Duration
	superUsers []string
}

func bindHTTPAuthFlags(fl *pflag.FlagSet, standalone bool) *httpAuthFlags {
	f := &httpAuthFlags{}
	fl.StringVar(&f.tokens, "http-tokens", "", "file of HTTP bearer tokens, one \"TOKEN PRINCIPAL\" per line (e.g. \"s3cr3t-16-chars+ User:alice\"): the gateway, lookback API and console then need a token and decide with the principal's Kafka ACLs")
	if standalone {
		fl.DurationVar(&f.refresh, "http-acl-refresh", 30*time.Second, "with --http-tokens: how often the cluster's ACLs are read again (DescribeAcls; the service's Kafka principal needs Describe on the cluster)")
		fl.StringSliceVar(&f.superUsers, "http-super-users", nil, "with --http-tokens: principals allowed everything over HTTP (the cluster's super.users, which Kafka does not report)")
	}
	return f
}

// loadTokens reads the --http-tokens file; nil without one.
func loadTokens(path string) (*auth.Tokens, error) {
	if path == "" {
		return nil, nil
	}
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--http-tokens: %w", err)
	}
	defer fh.Close()
	t, err := auth.ParseTokens(fh)
	if err != nil {
		return nil, fmt.Errorf("--http-tokens %s: %w", path, err)
	}
	if t.Len() == 0 {
		return nil, fmt.Errorf("--http-tokens %s: no token in it", path)
	}
	return t, nil
}

// newAuthenticator is the HTTP authenticator over tokens and acls, its
// session cookie scoped to the console's /ui/.
func newAuthenticator(tokens *auth.Tokens, acls httpauth.Decider, log *slog.Logger) (*httpauth.Authenticator, error) {
	return httpauth.New(httpauth.Config{Tokens: tokens, ACLs: acls, CookiePath: "/ui/", Logger: log})
}

// standalone returns the authenticator of a standalone service (nil
// without --http-tokens) deciding with the ACLs of the cluster at brokers,
// read now and refreshed until the returned stop is called.
func (f *httpAuthFlags) standalone(ctx context.Context, brokers []string, opts []kgo.Opt, log *slog.Logger) (*httpauth.Authenticator, func(), error) {
	tokens, err := loadTokens(f.tokens)
	if err != nil || tokens == nil {
		return nil, func() {}, usageErr(err)
	}
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(brokers...)}, opts...)...)
	if err != nil {
		return nil, nil, fmt.Errorf("http tokens: kafka client: %w", err)
	}
	var supers []auth.Principal
	for _, p := range f.superUsers {
		supers = append(supers, auth.Principal(p))
	}
	src, err := httpauth.NewACLSource(httpauth.ACLSourceConfig{Admin: kadm.NewClient(cl), Refresh: f.refresh, SuperUsers: supers, Logger: log})
	if err != nil {
		cl.Close()
		return nil, nil, err
	}
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := src.Start(sctx); err != nil {
		cl.Close()
		return nil, nil, err
	}
	a, err := newAuthenticator(tokens, src, log)
	if err != nil {
		src.Close()
		cl.Close()
		return nil, nil, err
	}
	return a, func() { src.Close(); cl.Close() }, nil
}

func usageErr(err error) error {
	if err == nil {
		return nil
	}
	return usageErrorf("%v", err)
}

// gatewayAuth is the gateway's Authorizer with HTTP tokens: the ACLs decide
// for their principals, the scoped --gateway-token tokens (scoped, may be
// nil) keep their scopes.
func gatewayAuth(a *httpauth.Authenticator, scoped gateway.Authorizer) gateway.Authorizer {
	t, _ := scoped.(*gateway.Tokens)
	return gateway.ACLAuth(a, t)
}
