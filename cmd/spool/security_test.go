package main

import (
	"os"
	"strings"
	"testing"
)

// TestServeSecurity: spool serve with a PLAINTEXT listener for bootstrap
// and a SASL_PLAINTEXT one outside; users and ACLs managed with `spool
// user` and `spool acl` (the admin APIs), and the CLI's own SASL flags.
func TestServeSecurity(t *testing.T) {
	_, srv := runServeCmd(t, t.TempDir(),
		"--listener", "INTERNAL=PLAINTEXT://127.0.0.1:0", "--listener", "EXTERNAL=SASL_PLAINTEXT://127.0.0.1:0",
		"--super-users", "User:admin")
	defer srv.stop()
	internal, external := srv.listeners["INTERNAL"], srv.listeners["EXTERNAL"]
	if internal == "" || external == "" {
		t.Fatalf("listeners not printed: %v", srv.listeners)
	}
	// Bootstrap: users created over the internal listener before any ACL.
	mustRun(t, internal, "admin-pw\n", "user", "create", "admin")
	mustRun(t, internal, "alice-pw\n", "user", "create", "alice", "--mechanism", "SCRAM-SHA-512")
	out := mustRun(t, internal, "", "user", "list")
	if !strings.Contains(out, "admin") || !strings.Contains(out, "alice") || !strings.Contains(out, "SCRAM-SHA-512 (4096 iterations)") {
		t.Fatalf("user list:\n%s", out)
	}
	mustRun(t, internal, "", "topic", "create", "orders")

	t.Setenv("SPOOL_SASL_MECHANISM", "SCRAM-SHA-512")
	t.Setenv("SPOOL_SASL_USER", "admin")
	t.Setenv("SPOOL_SASL_PASSWORD", "admin-pw")
	out = mustRun(t, external, "", "acl", "add", "--allow", "User:alice", "--operation", "read,describe", "--topic", "orders")
	if !strings.Contains(out, "added: ALLOW User:alice READ on TOPIC:orders") {
		t.Fatalf("acl add:\n%s", out)
	}
	if out = mustRun(t, external, "", "acl", "list"); !strings.Contains(out, "User:alice") || !strings.Contains(out, "TOPIC:orders") {
		t.Fatalf("acl list:\n%s", out)
	}
	// With an ACL in place, alice may read orders but not write it.
	os.Setenv("SPOOL_SASL_USER", "alice")
	os.Setenv("SPOOL_SASL_PASSWORD", "alice-pw")
	// Her idempotent producer is refused its producer id first (no Write on
	// any topic, KIP-679), as Kafka refuses it.
	mustFail(t, external, "x\n", []string{"produce", "orders"}, "CLUSTER_AUTHORIZATION_FAILED")
	mustFail(t, external, "", []string{"acl", "add", "--allow", "User:alice", "--operation", "write", "--topic", "orders"}, "CLUSTER_AUTHORIZATION_FAILED")
	os.Setenv("SPOOL_SASL_PASSWORD", "wrong")
	mustFail(t, external, "", []string{"topic", "list"}, "SASL_AUTHENTICATION_FAILED")

	// Bad flags are usage errors (exit 2).
	for _, args := range [][]string{
		{"acl", "add", "--operation", "read", "--topic", "x"},
		{"acl", "add", "--allow", "User:a", "--topic", "x"},
		{"acl", "add", "--allow", "User:a", "--operation", "fly", "--topic", "x"},
		{"user", "create", "bob", "--mechanism", "MD5"},
	} {
		if r := run(t, internal, "pw\n", args...); exitCode(r.err) != 2 {
			t.Errorf("spool %v: exit %d (%v), want 2", args, exitCode(r.err), r.err)
		}
	}
	os.Setenv("SPOOL_SASL_USER", "admin")
	os.Setenv("SPOOL_SASL_PASSWORD", "admin-pw")
	out = mustRun(t, external, "", "acl", "remove", "--allow", "User:alice", "--operation", "read,describe", "--topic", "orders")
	if strings.Count(out, "removed:") != 2 {
		t.Fatalf("acl remove:\n%s", out)
	}
	mustRun(t, external, "", "user", "delete", "alice")
}

func TestServeListenerFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--listener", "X"}, "NAME=PROTOCOL://HOST:PORT"},
		{[]string{"--listener", "X=SSL://127.0.0.1:0"}, "--tls-cert"},
		{[]string{"--listener", "X=FOO://127.0.0.1:0"}, "protocol"},
		{[]string{"--advertised-listener", "Y=h:1"}, "no --listener"},
		{[]string{"--http-tls"}, "--http-tls needs"},
		{[]string{"--tls-client-auth", "maybe", "--tls-cert", "x", "--tls-key", "y"}, "--tls-cert"},
		{[]string{"--super-users", "admin"}, "super user"},
	} {
		f, err := parseServe(t, c.args, nil)
		if err == nil {
			_, err = f.config()
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want an error mentioning %q", c.args, err, c.want)
		}
	}
}
