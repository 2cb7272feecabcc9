// Package testenv decides what a test does when an external program it
// needs (kcat, Python Kafka clients, KafkaJS, PostgreSQL server binaries,
// chromium, promtool, redis-server, ...) is not on the machine.
//
// On a developer's machine the test skips with a message naming what is
// missing and how to install it. Under SPOOL_REQUIRE_CLIENTS=1, which
// .ci/run sets after installing every such program, the test fails
// instead: a CI run that silently skipped its real-client tests would
// prove nothing.
package testenv

import (
	"os"
	"os/exec"
	"testing"
)

// RequireVar is the environment variable under which a missing external
// program fails the test instead of skipping it.
const RequireVar = "SPOOL_REQUIRE_CLIENTS"

// Required reports whether missing external programs fail tests.
func Required() bool { return os.Getenv(RequireVar) == "1" }

// Missing stops t because what it needs is absent: a skip with msg, or a
// failure under SPOOL_REQUIRE_CLIENTS=1.
func Missing(t testing.TB, msg string) {
	t.Helper()
	if Required() {
		t.Fatalf("%s (%s=1: required in this run)", msg, RequireVar)
	}
	t.Skip(msg)
}

// LookPath returns the path of the program name, or stops t with Missing
// naming it and the hint (for example "apt-get install kcat").
func LookPath(t testing.TB, name, hint string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		Missing(t, name+" not found on PATH; "+hint)
	}
	return p
}
