package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/spoolmq/spool/broker"
)

// securityFlags are serve's listener and security flags, Kafka-style.
type securityFlags struct {
	listeners  []string // NAME=PROTOCOL://HOST:PORT
	advertised []string // NAME=HOST:PORT
	tlsCert    string
	tlsKey     string
	clientCA   string
	clientAuth string
	superUsers []string
	authorizer bool
	saslReauth time.Duration
	httpTLS    bool
}

func bindSecurityFlags(fl *pflag.FlagSet) *securityFlags {
	s := &securityFlags{}
	fl.StringArrayVar(&s.listeners, "listener", nil, "a Kafka listener NAME=PROTOCOL://HOST:PORT, PROTOCOL one of PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL; repeat for several (replaces --listen)")
	fl.StringArrayVar(&s.advertised, "advertised-listener", nil, "NAME=HOST:PORT clients of listener NAME are told to connect to (default its bound address)")
	fl.StringVar(&s.tlsCert, "tls-cert", "", "PEM server certificate (chain) for SSL and SASL_SSL listeners and --http-tls")
	fl.StringVar(&s.tlsKey, "tls-key", "", "PEM key of --tls-cert")
	fl.StringVar(&s.clientCA, "tls-client-ca", "", "PEM CA(s) that sign client certificates (mutual TLS; the certificate's subject becomes the principal)")
	fl.StringVar(&s.clientAuth, "tls-client-auth", "", "client certificates on TLS listeners: none, requested or required (default required with --tls-client-ca, else none)")
	fl.StringSliceVar(&s.superUsers, "super-users", nil, "principals allowed everything, e.g. User:admin (super.users)")
	fl.BoolVar(&s.authorizer, "authorizer", false, "check ACLs even before the first ACL exists (only super users may act until ACLs allow more)")
	fl.DurationVar(&s.saslReauth, "sasl-reauth", 0, "SASL session lifetime before clients re-authenticate (connections.max.reauth.ms, KIP-368); 0: sessions do not expire")
	fl.BoolVar(&s.httpTLS, "http-tls", false, "serve the HTTP listener over TLS with --tls-cert/--tls-key")
	return s
}

// tlsConfig builds the server TLS configuration, or nil without a
// certificate.
func (s *securityFlags) tlsConfig() (*tls.Config, error) {
	if s.tlsCert == "" && s.tlsKey == "" {
		if s.clientCA != "" {
			return nil, fmt.Errorf("serve: --tls-client-ca needs --tls-cert and --tls-key")
		}
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(s.tlsCert, s.tlsKey)
	if err != nil {
		return nil, fmt.Errorf("serve: --tls-cert/--tls-key: %w", err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if s.clientCA != "" {
		pem, err := os.ReadFile(s.clientCA)
		if err != nil {
			return nil, fmt.Errorf("serve: --tls-client-ca: %w", err)
		}
		cfg.ClientCAs = x509.NewCertPool()
		if !cfg.ClientCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("serve: --tls-client-ca %s: no PEM certificate in it", s.clientCA)
		}
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	switch s.clientAuth {
	case "":
	case "none":
		cfg.ClientAuth = tls.NoClientCert
	case "requested":
		cfg.ClientAuth = tls.VerifyClientCertIfGiven
	case "required":
		if cfg.ClientCAs == nil {
			return nil, fmt.Errorf("serve: --tls-client-auth required needs --tls-client-ca")
		}
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	default:
		return nil, fmt.Errorf("serve: --tls-client-auth %q: want none, requested or required", s.clientAuth)
	}
	return cfg, nil
}

// apply sets the listeners and security of cfg from the flags.
func (s *securityFlags) apply(cfg *broker.Config) (*tls.Config, error) {
	tc, err := s.tlsConfig()
	if err != nil {
		return nil, err
	}
	adv := map[string]string{}
	for _, a := range s.advertised {
		name, hp, ok := strings.Cut(a, "=")
		if _, _, err := net.SplitHostPort(hp); !ok || err != nil {
			return nil, fmt.Errorf("serve: --advertised-listener %q: want NAME=HOST:PORT", a)
		}
		adv[name] = hp
	}
	for _, l := range s.listeners {
		name, rest, ok1 := strings.Cut(l, "=")
		proto, addr, ok2 := strings.Cut(rest, "://")
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("serve: --listener %q: want NAME=PROTOCOL://HOST:PORT, e.g. EXTERNAL=SASL_SSL://0.0.0.0:9093", l)
		}
		lc := broker.Listener{Name: name, Protocol: strings.ToUpper(proto), Addr: addr, Advertise: adv[name]}
		if lc.Protocol == broker.ProtocolSSL || lc.Protocol == broker.ProtocolSASLSSL {
			if tc == nil {
				return nil, fmt.Errorf("serve: --listener %s uses %s: give --tls-cert and --tls-key", name, lc.Protocol)
			}
			lc.TLS = tc
		}
		cfg.Listeners = append(cfg.Listeners, lc)
		delete(adv, name)
	}
	for name := range adv {
		return nil, fmt.Errorf("serve: --advertised-listener %s: no --listener of that name", name)
	}
	cfg.SuperUsers, cfg.Authorizer, cfg.SASLReauth = s.superUsers, s.authorizer, s.saslReauth
	if s.httpTLS {
		if tc == nil {
			return nil, fmt.Errorf("serve: --http-tls needs --tls-cert and --tls-key")
		}
		return tc, nil
	}
	return nil, nil
}
