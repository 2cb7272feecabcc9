package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// --http-tls serves the HTTP listener over TLS with --tls-cert/--tls-key:
// an https request trusting the CA gets its answer, one that does not
// trust it fails the handshake, and a plain http request gets no answer
// but the server's refusal.
func TestServeHTTPTLS(t *testing.T) {
	pool, certFile, keyFile := writeServerCert(t)
	_, srv := runServeCmd(t, t.TempDir(), "--tls-cert", certFile, "--tls-key", keyFile, "--http-tls")
	defer srv.stop()

	get := func(cl *http.Client, url string) (int, string, error) {
		resp, err := cl.Get(url)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body), err
	}
	trusting := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	if code, body, err := get(trusting, "https://"+srv.httpAddr+"/healthz"); err != nil || code != http.StatusOK || body != "ok\n" {
		t.Fatalf("GET https://.../healthz with the CA: %d %q %v, want 200 ok", code, body, err)
	}
	if code, body, err := get(trusting, "https://"+srv.httpAddr+"/metrics"); err != nil || code != http.StatusOK || !strings.Contains(body, "spool_broker_") {
		t.Fatalf("GET https://.../metrics with the CA: %d %v", code, err)
	}

	plain := &http.Client{Timeout: 10 * time.Second}
	var unknownCA x509.UnknownAuthorityError
	if _, _, err := get(plain, "https://"+srv.httpAddr+"/healthz"); !errors.As(err, &unknownCA) {
		t.Errorf("GET https://.../healthz without the CA: %v, want an unknown-authority error", err)
	}
	// Go's TLS server answers a plaintext request with a bare 400 and
	// closes; a listener serving plain HTTP would answer 200 ok.
	if code, body, err := get(plain, "http://"+srv.httpAddr+"/healthz"); err == nil && (code != http.StatusBadRequest || body == "ok\n") {
		t.Errorf("GET http://.../healthz on the TLS listener: %d %q, want no answer or 400", code, body)
	}
}

// writeServerCert makes a throwaway CA and a server certificate for
// 127.0.0.1 signed by it, writes the certificate and key as PEM files and
// returns the CA's pool and the files' paths.
func writeServerCert(t *testing.T) (pool *x509.CertPool, certFile, keyFile string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "spool test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "server.pem"), filepath.Join(dir, "server-key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(ca)
	return pool, certFile, keyFile
}
