package broker_test

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/spoolmq/spool/spooltest"
)

const python = "/usr/bin/python3"

// TestConfluentKafkaPython runs testdata/confluent_client.py, which uses
// confluent-kafka-python (librdkafka) for admin, produce in every codec,
// consume, watermarks and offsets-for-times against the broker.
func TestConfluentKafkaPython(t *testing.T) {
	if _, err := os.Stat(python); err != nil {
		t.Skipf("%s not found: skipping the confluent-kafka-python test", python)
	}
	if err := exec.Command(python, "-c", "import confluent_kafka").Run(); err != nil {
		t.Skip("confluent-kafka-python not installed (Debian package python3-confluent-kafka; .ci/run installs it): skipping")
	}
	srv := spooltest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*testTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, python, "testdata/confluent_client.py", srv.Addr(), "py-topic").CombinedOutput()
	if err != nil || !strings.HasSuffix(strings.TrimSpace(string(out)), "OK") {
		t.Fatalf("confluent_client.py: %v\n%s", err, out)
	}
}
