package broker_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/spoolmq/spool/broker"
	"github.com/spoolmq/spool/internal/kafkatest"
	"github.com/spoolmq/spool/spooltest"
)

// testPKI is a throwaway CA with a server certificate for 127.0.0.1 and
// client certificates, written as PEM files for kcat and Python too.
type testPKI struct {
	dir    string
	pool   *x509.CertPool
	caKey  *ecdsa.PrivateKey
	caCert *x509.Certificate
	server tls.Certificate
	caFile string
	serial int64
}

func newPKI(t *testing.T) *testPKI {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "spool test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(der)
	p := &testPKI{dir: t.TempDir(), pool: x509.NewCertPool(), caKey: key, caCert: ca, serial: 1}
	p.pool.AddCert(ca)
	p.caFile = filepath.Join(p.dir, "ca.pem")
	os.WriteFile(p.caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	p.server = p.issue(t, pkix.Name{CommonName: "127.0.0.1"}, time.Now().Add(24*time.Hour), true)
	return p
}

// issue signs a certificate for subject, valid until notAfter.
func (p *testPKI) issue(t *testing.T, subject pkix.Name, notAfter time.Time, server bool) tls.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p.serial++
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(p.serial), Subject: subject,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: notAfter,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
		tmpl.DNSNames = []string{"localhost"}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.caCert, &key.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func (p *testPKI) serverTLS(clientAuth tls.ClientAuthType) *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{p.server}, ClientCAs: p.pool, ClientAuth: clientAuth, MinVersion: tls.VersionTLS12}
}

func (p *testPKI) clientTLS(certs ...tls.Certificate) *tls.Config {
	return &tls.Config{RootCAs: p.pool, Certificates: certs, MinVersion: tls.VersionTLS12}
}

// logBuffer collects the broker's log lines for assertions.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// secureBroker starts a broker with four listeners: PLAINTEXT (the admin
// door of the tests), SASL_SSL, SSL with required client certificates, and
// SASL_PLAINTEXT.
func secureBroker(t *testing.T, pki *testPKI, mod func(*broker.Config)) (*spooltest.Server, map[string]string, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	srv := spooltest.Start(t, spooltest.WithLogger(slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))),
		spooltest.WithConfig(func(c *broker.Config) {
			c.Listeners = []broker.Listener{
				{Name: "PLAIN", Protocol: broker.ProtocolPlaintext, Addr: "127.0.0.1:0"},
				{Name: "SECURE", Protocol: broker.ProtocolSASLSSL, Addr: "127.0.0.1:0", TLS: pki.serverTLS(tls.NoClientCert)},
				{Name: "MTLS", Protocol: broker.ProtocolSSL, Addr: "127.0.0.1:0", TLS: pki.serverTLS(tls.RequireAndVerifyClientCert)},
				{Name: "SASL", Protocol: broker.ProtocolSASLPlaintext, Addr: "127.0.0.1:0"},
			}
			if mod != nil {
				mod(c)
			}
		}))
	return srv, srv.Broker().ListenerAddrs(), logs
}

func createUser(t *testing.T, adm *kadm.Client, user, pass string, mechs ...kadm.ScramMechanism) {
	t.Helper()
	var ups []kadm.UpsertSCRAM
	for _, m := range mechs {
		ups = append(ups, kadm.UpsertSCRAM{User: user, Mechanism: m, Iterations: 4096, Password: pass})
	}
	res, err := adm.AlterUserSCRAMs(testCtx(t), nil, ups)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Err != nil {
			t.Fatalf("create user %s: %v", user, r.Err)
		}
	}
}

func plainAdmin(t *testing.T, addr string, opts ...kgo.Opt) *kadm.Client {
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}

// roundTrip produces a record to topic through opts and reads it back.
func roundTrip(t *testing.T, addr, topic string, opts ...kgo.Opt) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic), kgo.AllowAutoTopicCreation(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.RetryTimeout(3 * time.Second)}, opts...)...)
	if err != nil {
		return err
	}
	defer cl.Close()
	pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
	defer pcancel()
	if err := cl.Ping(pctx); err != nil { // a refused authentication fails here, not retried
		return err
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("secret")}).FirstErr(); err != nil {
		return err
	}
	fs := cl.PollFetches(ctx)
	if err := fs.Err(); err != nil {
		return err
	}
	if len(fs.Records()) == 0 {
		return errors.New("nothing consumed")
	}
	return nil
}

// TestSASLAndTLS: franz-go with SCRAM-SHA-256 and SCRAM-SHA-512 over TLS,
// PLAIN over SASL_PLAINTEXT, mutual TLS; and every bad credential refused
// with the broker serving the others afterwards.
func TestSASLAndTLS(t *testing.T) {
	pki := newPKI(t)
	srv, addrs, logs := secureBroker(t, pki, nil)
	adm := plainAdmin(t, addrs["PLAIN"])
	createUser(t, adm, "alice", "alice-pw", kadm.ScramSha256, kadm.ScramSha512)
	createUser(t, adm, "bob", "bob-pw", kadm.ScramSha512)
	createTopic(t, adm, "secure", 1, nil)

	tlsOpt := kgo.DialTLSConfig(pki.clientTLS())
	for name, opts := range map[string][]kgo.Opt{
		"scram-sha-256": {tlsOpt, kgo.SASL(scram.Auth{User: "alice", Pass: "alice-pw"}.AsSha256Mechanism())},
		"scram-sha-512": {tlsOpt, kgo.SASL(scram.Auth{User: "bob", Pass: "bob-pw"}.AsSha512Mechanism())},
	} {
		if err := roundTrip(t, addrs["SECURE"], "secure", opts...); err != nil {
			t.Errorf("%s over SASL_SSL: %v", name, err)
		}
	}
	if err := roundTrip(t, addrs["SASL"], "secure", kgo.SASL(plain.Auth{User: "alice", Pass: "alice-pw"}.AsMechanism())); err != nil {
		t.Errorf("PLAIN over SASL_PLAINTEXT: %v", err)
	}
	client := pki.issue(t, pkix.Name{CommonName: "billing", Organization: []string{"acme"}}, time.Now().Add(time.Hour), false)
	if err := roundTrip(t, addrs["MTLS"], "secure", kgo.DialTLSConfig(pki.clientTLS(client))); err != nil {
		t.Errorf("mTLS: %v", err)
	}

	expired := pki.issue(t, pkix.Name{CommonName: "old"}, time.Now().Add(-time.Minute), false)
	other := newPKI(t) // a certificate from a CA the broker does not trust
	stranger := other.issue(t, pkix.Name{CommonName: "stranger"}, time.Now().Add(time.Hour), false)
	for name, c := range map[string]struct {
		addr string
		opts []kgo.Opt
	}{
		"wrong password":   {addrs["SECURE"], []kgo.Opt{tlsOpt, kgo.SASL(scram.Auth{User: "alice", Pass: "nope"}.AsSha256Mechanism())}},
		"unknown user":     {addrs["SECURE"], []kgo.Opt{tlsOpt, kgo.SASL(scram.Auth{User: "mallory", Pass: "x"}.AsSha512Mechanism())}},
		"wrong mechanism":  {addrs["SECURE"], []kgo.Opt{tlsOpt, kgo.SASL(scram.Auth{User: "bob", Pass: "bob-pw"}.AsSha256Mechanism())}},
		"plain bad pw":     {addrs["SASL"], []kgo.Opt{kgo.SASL(plain.Auth{User: "bob", Pass: "x"}.AsMechanism())}},
		"no client cert":   {addrs["MTLS"], []kgo.Opt{tlsOpt}},
		"expired cert":     {addrs["MTLS"], []kgo.Opt{kgo.DialTLSConfig(pki.clientTLS(expired))}},
		"untrusted cert":   {addrs["MTLS"], []kgo.Opt{kgo.DialTLSConfig(pki.clientTLS(stranger))}},
		"no SASL on SASL":  {addrs["SASL"], nil},
		"plaintext to TLS": {addrs["SECURE"], nil},
	} {
		err := roundTrip(t, c.addr, "secure", c.opts...)
		if err == nil {
			t.Errorf("%s: accepted", name)
		}
		if strings.Contains(name, "password") || strings.Contains(name, "user") || strings.Contains(name, "mechanism") {
			if !errors.Is(err, kerr.SaslAuthenticationFailed) {
				t.Errorf("%s: %v, want SASL_AUTHENTICATION_FAILED", name, err)
			}
		}
	}
	// The broker serves the good clients after all that.
	if err := roundTrip(t, addrs["SECURE"], "secure", tlsOpt, kgo.SASL(scram.Auth{User: "alice", Pass: "alice-pw"}.AsSha512Mechanism())); err != nil {
		t.Fatalf("after the failures: %v", err)
	}
	if !strings.Contains(logs.String(), "SASL authentication failed") {
		t.Error("failed authentications are not logged")
	}

	// Users survive a restart (stored salted and hashed, never the password).
	srv.Restart(t)
	addrs = srv.Broker().ListenerAddrs()
	if err := roundTrip(t, addrs["SECURE"], "secure", kgo.DialTLSConfig(pki.clientTLS()), kgo.SASL(scram.Auth{User: "bob", Pass: "bob-pw"}.AsSha512Mechanism())); err != nil {
		t.Fatalf("after restart: %v", err)
	}
	raw, err := os.ReadFile(filepath.Join(srv.DataDir(), "__state", "security", "users.json"))
	if err != nil || bytes.Contains(raw, []byte("bob-pw")) || !bytes.Contains(raw, []byte("stored_key")) {
		t.Fatalf("users.json: %v %s", err, raw)
	}
	described, err := plainAdmin(t, addrs["PLAIN"]).DescribeUserSCRAMs(testCtx(t))
	if err != nil || len(described) != 2 || len(described["alice"].CredInfos) != 2 {
		t.Fatalf("DescribeUserSCRAMs: %v %v", described, err)
	}
}

// TestSASLBadExchanges: requests before authentication, garbage SASL
// messages and an exchange left half-way close the connection and never
// crash the broker.
func TestSASLBadExchanges(t *testing.T) {
	pki := newPKI(t)
	_, addrs, _ := secureBroker(t, pki, nil)
	createUser(t, plainAdmin(t, addrs["PLAIN"]), "alice", "pw", kadm.ScramSha256)

	// Metadata before authenticating: the connection is closed.
	rc := dialRaw(t, addrs["SASL"])
	rc.send(kmsg.NewPtrMetadataRequest())
	rc.expectClosed()

	// ApiVersions is allowed; SaslAuthenticate without a handshake is
	// ILLEGAL_SASL_STATE and closes.
	rc = dialRaw(t, addrs["SASL"])
	if resp := rc.roundTrip(kmsg.NewPtrApiVersionsRequest()).(*kmsg.ApiVersionsResponse); resp.ErrorCode != 0 {
		t.Fatalf("ApiVersions before SASL: %d", resp.ErrorCode)
	}
	auth := kmsg.NewPtrSASLAuthenticateRequest()
	auth.SASLAuthBytes = []byte("\x00alice\x00pw")
	if resp := rc.roundTrip(auth).(*kmsg.SASLAuthenticateResponse); resp.ErrorCode != kerr.IllegalSaslState.Code {
		t.Fatalf("SaslAuthenticate without handshake: %d", resp.ErrorCode)
	}
	rc.expectClosed()

	// An unknown mechanism.
	rc = dialRaw(t, addrs["SASL"])
	hs := kmsg.NewPtrSASLHandshakeRequest()
	hs.Version = 1
	hs.Mechanism = "GSSAPI"
	if resp := rc.roundTrip(hs).(*kmsg.SASLHandshakeResponse); resp.ErrorCode != kerr.UnsupportedSaslMechanism.Code || len(resp.SupportedMechanisms) != 3 {
		t.Fatalf("GSSAPI: %+v", resp)
	}
	rc.expectClosed()

	// Garbage SCRAM messages.
	for _, garbage := range []string{"", "n,,", "\xff\xfe", "n,,n=alice,r=" + strings.Repeat("x", 20000), "p=tls-unique,,n=a,r=b"} {
		rc = dialRaw(t, addrs["SASL"])
		hs.Mechanism = "SCRAM-SHA-256"
		if resp := rc.roundTrip(hs).(*kmsg.SASLHandshakeResponse); resp.ErrorCode != 0 {
			t.Fatalf("handshake: %d", resp.ErrorCode)
		}
		auth.SASLAuthBytes = []byte(garbage)
		if resp := rc.roundTrip(auth).(*kmsg.SASLAuthenticateResponse); resp.ErrorCode != kerr.SaslAuthenticationFailed.Code {
			t.Fatalf("garbage %q: %d", garbage, resp.ErrorCode)
		}
		rc.expectClosed()
	}

	// Half-way: the client-first message, then a produce instead of the
	// client-final: closed.
	rc = dialRaw(t, addrs["SASL"])
	rc.roundTrip(hs)
	auth.SASLAuthBytes = []byte("n,,n=alice,r=abcdefgh")
	if resp := rc.roundTrip(auth).(*kmsg.SASLAuthenticateResponse); resp.ErrorCode != 0 || !bytes.HasPrefix(resp.SASLAuthBytes, []byte("r=abcdefgh")) {
		t.Fatalf("client-first: %+v", resp)
	}
	rc.send(kmsg.NewPtrMetadataRequest())
	rc.expectClosed()

	// The broker still serves.
	if err := roundTrip(t, addrs["SASL"], "after-garbage", kgo.SASL(scram.Auth{User: "alice", Pass: "pw"}.AsSha256Mechanism())); err != nil {
		t.Fatal(err)
	}
}

// TestSASLReauthentication: with a session lifetime (KIP-368), franz-go
// re-authenticates on its connection and keeps working past the lifetime.
func TestSASLReauthentication(t *testing.T) {
	pki := newPKI(t)
	_, addrs, logs := secureBroker(t, pki, func(c *broker.Config) { c.SASLReauth = 300 * time.Millisecond })
	createUser(t, plainAdmin(t, addrs["PLAIN"]), "alice", "pw", kadm.ScramSha512)
	var authCount sync.Map
	mech := countingMechanism{Mechanism: scram.Auth{User: "alice", Pass: "pw"}.AsSha512Mechanism(), n: &authCount}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs["SASL"]), kgo.SASL(mech), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	// Produce for four session lifetimes: the connections must be
	// re-authenticated in place (the client authenticates more often than
	// it has connections), never closed by the broker for an expired
	// session.
	start := time.Now()
	for time.Since(start) < 1200*time.Millisecond {
		if err := cl.ProduceSync(testCtx(t), &kgo.Record{Topic: "reauth", Value: []byte("x")}).FirstErr(); err != nil {
			t.Fatalf("produce: %v", err)
		}
	}
	if v, _ := authCount.Load("n"); v == nil || v.(int) < 5 {
		t.Fatalf("%v authentications in four session lifetimes: the client did not re-authenticate", v)
	}
	if strings.Contains(logs.String(), "expired") {
		t.Fatalf("the broker closed a connection for an expired session:\n%s", logs)
	}
}

type countingMechanism struct {
	sasl.Mechanism
	n *sync.Map
}

func (m countingMechanism) Authenticate(ctx context.Context, host string) (sasl.Session, []byte, error) {
	for {
		v, _ := m.n.LoadOrStore("n", 0)
		if m.n.CompareAndSwap("n", v, v.(int)+1) {
			break
		}
	}
	return m.Mechanism.Authenticate(ctx, host)
}

// With mutual TLS the principal is the client certificate's subject as
// docs/security.md says ("User:CN=billing,O=acme"): an ACL for that
// principal lets the certificate's holder in, a certificate of another
// subject from the same CA is refused by the ACLs, and the refusal is
// logged with the subject as the principal.
func TestMTLSPrincipalIsCertificateSubject(t *testing.T) {
	pki := newPKI(t)
	_, addrs, logs := secureBroker(t, pki, func(c *broker.Config) {
		c.SuperUsers = []string{"User:ANONYMOUS"} // the tests' PLAINTEXT admin door
		c.Authorizer = true
	})
	adm := plainAdmin(t, addrs["PLAIN"])
	createTopic(t, adm, "billing", 1, nil)
	res, err := adm.CreateACLs(testCtx(t), kadm.NewACLs().Allow("User:CN=billing,O=acme").
		Topics("billing").Operations(kadm.OpAll).ResourcePatternType(kadm.ACLPatternLiteral))
	if err != nil || len(res) != 1 || res[0].Err != nil {
		t.Fatalf("CreateACLs: %v %v", err, res)
	}

	billing := pki.issue(t, pkix.Name{CommonName: "billing", Organization: []string{"acme"}}, time.Now().Add(time.Hour), false)
	if err := roundTrip(t, addrs["MTLS"], "billing", kgo.DialTLSConfig(pki.clientTLS(billing))); err != nil {
		t.Fatalf("the certificate of CN=billing,O=acme with an ACL for User:CN=billing,O=acme: %v", err)
	}
	shipping := pki.issue(t, pkix.Name{CommonName: "shipping", Organization: []string{"acme"}}, time.Now().Add(time.Hour), false)
	if err := roundTrip(t, addrs["MTLS"], "billing", kgo.DialTLSConfig(pki.clientTLS(shipping))); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("the certificate of CN=shipping,O=acme: %v, want TOPIC_AUTHORIZATION_FAILED", err)
	}
	if !strings.Contains(logs.String(), `principal="User:CN=shipping,O=acme"`) {
		t.Fatalf("the refusal is not logged with the certificate's subject as the principal:\n%s", logs)
	}
}

// spool_broker_authentication_failures_total (docs/metrics.md) counts a
// failed SASL authentication under its mechanism, and a failed TLS
// handshake under "tls"; a successful one counts nothing.
func TestAuthenticationFailuresCounted(t *testing.T) {
	pki := newPKI(t)
	reg := prometheus.NewRegistry()
	_, addrs, _ := secureBroker(t, pki, func(c *broker.Config) { c.Registerer = reg })
	createUser(t, plainAdmin(t, addrs["PLAIN"]), "alice", "alice-pw", kadm.ScramSha256)
	failures := func(mech string) float64 {
		return metricValue(t, reg, "spool_broker_authentication_failures_total", "mechanism", mech)
	}

	tlsOpt := kgo.DialTLSConfig(pki.clientTLS())
	if err := roundTrip(t, addrs["SECURE"], "counted", tlsOpt, kgo.SASL(scram.Auth{User: "alice", Pass: "alice-pw"}.AsSha256Mechanism())); err != nil {
		t.Fatal(err)
	}
	if n := failures("SCRAM-SHA-256"); n != 0 {
		t.Fatalf("failures after a good SCRAM login: %v, want 0", n)
	}
	for want := 1.0; want <= 2; want++ {
		err := badLogin(t, addrs["SECURE"], tlsOpt, kgo.SASL(scram.Auth{User: "alice", Pass: "wrong"}.AsSha256Mechanism()))
		if !errors.Is(err, kerr.SaslAuthenticationFailed) {
			t.Fatalf("bad SCRAM password: %v", err)
		}
		if n := failures("SCRAM-SHA-256"); n != want {
			t.Fatalf("spool_broker_authentication_failures_total{mechanism=\"SCRAM-SHA-256\"} = %v after %v bad passwords", n, want)
		}
	}
	if err := roundTrip(t, addrs["MTLS"], "counted", tlsOpt); err == nil {
		t.Fatal("mTLS without a client certificate: accepted")
	}
	// The handshake fails on the broker's side after the client sees it
	// fail: poll (with a deadline) until the broker has counted it.
	kafkatest.Eventually(t, 10*time.Second, "a failed TLS handshake counted", func() bool { return failures("tls") >= 1 })
}

// badLogin makes one connection attempt with opts and returns its error. A
// client with no topics to consume opens no connection of its own, so the
// broker sees exactly one authentication (roundTrip's consumer can open a
// second connection for metadata while Ping opens the first).
func badLogin(t *testing.T, addr string, opts ...kgo.Opt) error {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr), kgo.RetryTimeout(3 * time.Second)}, opts...)...)
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return cl.Ping(ctx)
}

// metricValue returns the value of the counter or gauge name whose label
// has value, 0 if there is none.
func metricValue(t *testing.T, reg *prometheus.Registry, name, label, value string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == label && lp.GetValue() == value {
					return m.GetCounter().GetValue() + m.GetGauge().GetValue()
				}
			}
		}
	}
	return 0
}
