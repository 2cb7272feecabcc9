package broker_test

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/spoolmq/spool/broker"
	"github.com/spoolmq/spool/internal/testenv"
	"github.com/spoolmq/spool/spooltest"
)

const python = "/usr/bin/python3"

// TestConfluentKafkaPython runs testdata/confluent_client.py, which uses
// confluent-kafka-python (librdkafka) for admin, produce in every codec,
// consume, watermarks and offsets-for-times against the broker.
func TestConfluentKafkaPython(t *testing.T) {
	if _, err := os.Stat(python); err != nil {
		testenv.Missing(t, python+" not found (Debian package python3; .ci/run installs it)")
	}
	if err := exec.Command(python, "-c", "import confluent_kafka").Run(); err != nil {
		testenv.Missing(t, "confluent-kafka-python not installed (Debian package python3-confluent-kafka; .ci/run installs it)")
	}
	srv := spooltest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*testTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, python, "testdata/confluent_client.py", srv.Addr(), "py-topic").CombinedOutput()
	if err != nil || !strings.HasSuffix(strings.TrimSpace(string(out)), "OK") {
		t.Fatalf("confluent_client.py: %v\n%s", err, out)
	}
}

// TestConfluentGroupStart: librdkafka consumers (confluent-kafka-python)
// that subscribe together share the first generation thanks to the
// broker's group.initial.rebalance.delay.ms: one assign call each, no
// revoke, with cooperative-sticky and as static members
// (testdata/confluent_group_start.py; librdkafka's tests 0113 and 0102).
// Without the delay the first consumer got 3 assign calls and a revoke.
func TestConfluentGroupStart(t *testing.T) {
	if _, err := os.Stat(python); err != nil {
		testenv.Missing(t, python+" not found (Debian package python3; .ci/run installs it)")
	}
	if err := exec.Command(python, "-c", "import confluent_kafka").Run(); err != nil {
		testenv.Missing(t, "confluent-kafka-python not installed (Debian package python3-confluent-kafka; .ci/run installs it)")
	}
	srv := spooltest.Start(t, spooltest.WithConfig(func(c *broker.Config) {
		c.GroupInitialRebalanceDelay = 2 * time.Second
		c.GroupMinSessionTimeout = time.Second
	}))
	for _, tc := range [][]string{{"cooperative-sticky"}, {"cooperative-sticky", "static"}} {
		t.Run(strings.Join(tc, "-"), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*testTimeout)
			defer cancel()
			args := append([]string{"testdata/confluent_group_start.py", srv.Addr(), "start-" + strings.Join(tc, "-")}, tc...)
			out, err := exec.CommandContext(ctx, python, args...).CombinedOutput()
			if err != nil || !strings.HasSuffix(strings.TrimSpace(string(out)), "OK") {
				t.Fatalf("confluent_group_start.py %v: %v\n%s", tc, err, out)
			}
		})
	}
}
