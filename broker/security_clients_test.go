package broker_test

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/spoolmq/spool/internal/testenv"
)

// TestKcatSASL: librdkafka (kcat) over SASL_SSL with SCRAM-SHA-512 and with
// PLAIN: metadata, produce and consume; a wrong password fails.
func TestKcatSASL(t *testing.T) {
	kcat := needKcat(t)
	pki := newPKI(t)
	_, addrs, _ := secureBroker(t, pki, nil)
	adm := plainAdmin(t, addrs["PLAIN"])
	createUser(t, adm, "alice", "alice-pw", kadm.ScramSha512)
	createTopic(t, adm, "kcat-secure", 1, nil)
	for _, mech := range []string{"SCRAM-SHA-512", "PLAIN"} {
		args := []string{"-b", addrs["SECURE"], "-X", "security.protocol=SASL_SSL", "-X", "sasl.mechanisms=" + mech,
			"-X", "sasl.username=alice", "-X", "sasl.password=alice-pw", "-X", "ssl.ca.location=" + pki.caFile}
		if out := runKcat(t, kcat, "", append(args, "-L", "-t", "kcat-secure")...); !strings.Contains(out, `topic "kcat-secure"`) {
			t.Fatalf("%s: kcat -L:\n%s", mech, out)
		}
		runKcat(t, kcat, "m-"+mech+"\n", append(args, "-P", "-t", "kcat-secure")...)
		out := runKcat(t, kcat, "", append(args, "-C", "-t", "kcat-secure", "-o", "beginning", "-e")...)
		if !strings.Contains(out, "m-"+mech) {
			t.Fatalf("%s: consumed %q", mech, out)
		}
		bad := append(append([]string{}, args...), "-X", "sasl.password=wrong", "-L", "-m", "3")
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		out2, err := exec.CommandContext(ctx, kcat, bad...).CombinedOutput()
		cancel()
		if err == nil || !strings.Contains(strings.ToLower(string(out2)), "authentication") {
			t.Fatalf("%s with a wrong password: %v\n%s", mech, err, out2)
		}
	}
}

// TestConfluentKafkaPythonSCRAM: confluent-kafka-python with SCRAM-SHA-256
// over TLS, idempotent producer and consumer group.
func TestConfluentKafkaPythonSCRAM(t *testing.T) {
	if _, err := os.Stat(python); err != nil {
		testenv.Missing(t, python+" not found (Debian package python3; .ci/run installs it)")
	}
	if err := exec.Command(python, "-c", "import confluent_kafka").Run(); err != nil {
		testenv.Missing(t, "confluent-kafka-python not installed (Debian package python3-confluent-kafka; .ci/run installs it)")
	}
	pki := newPKI(t)
	_, addrs, _ := secureBroker(t, pki, nil)
	adm := plainAdmin(t, addrs["PLAIN"])
	createUser(t, adm, "py", "py-pw", kadm.ScramSha256)
	createTopic(t, adm, "py-secure", 1, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 2*testTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, python, "testdata/confluent_scram.py", addrs["SECURE"], "py-secure", "py", "py-pw", "SCRAM-SHA-256", pki.caFile).CombinedOutput()
	if err != nil || !strings.HasSuffix(strings.TrimSpace(string(out)), "OK") {
		t.Fatalf("confluent_scram.py: %v\n%s", err, out)
	}
}
