package broker_test

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/spoolmq/spool/internal/testenv"
	"github.com/spoolmq/spool/spooltest"
)

// needKcat returns kcat's path, or skips t (fails it under
// SPOOL_REQUIRE_CLIENTS=1, as .ci/run sets) when it is not installed.
func needKcat(t *testing.T) string {
	t.Helper()
	return testenv.LookPath(t, "kcat", "Debian package kcat; .ci/run installs it")
}

func runKcat(t *testing.T, kcat string, stdin string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, kcat, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("kcat %s: %v\nstderr:\n%s", strings.Join(args, " "), err, errOut.String())
	}
	return out.String()
}

// TestKcat runs librdkafka (through kcat) against the broker: metadata,
// keyed produce with headers in every compression codec, consume from the
// beginning with -e, and offset queries.
func TestKcat(t *testing.T) {
	kcat := needKcat(t)
	srv := spooltest.Start(t)
	adm, cl := newAdmin(t, srv)
	createTopic(t, adm, "kc", 1, nil)
	b := srv.Addr()

	md := runKcat(t, kcat, "", "-b", b, "-L", "-t", "kc")
	if !strings.Contains(md, "1 brokers:") || !strings.Contains(md, `topic "kc" with 1 partitions`) {
		t.Fatalf("kcat -L output:\n%s", md)
	}

	codecs := []string{"none", "gzip", "snappy", "lz4", "zstd"}
	var want []string
	for _, codec := range codecs {
		var in strings.Builder
		for i := range 5 {
			fmt.Fprintf(&in, "key-%s-%d:value-%s-%d\n", codec, i, codec, i)
			want = append(want, fmt.Sprintf("key-%s-%d|value-%s-%d|codec=%s", codec, i, codec, i, codec))
		}
		runKcat(t, kcat, in.String(), "-b", b, "-P", "-t", "kc", "-p", "0", "-K", ":", "-H", "codec="+codec, "-z", codec, "-X", "acks=all")
	}
	out := runKcat(t, kcat, "", "-b", b, "-C", "-t", "kc", "-o", "beginning", "-e", "-f", `%k|%s|%h\n`)
	got := strings.Split(strings.TrimSpace(out), "\n")
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("kcat consumed:\n%s\nwant:\n%s", out, strings.Join(want, "\n"))
	}

	// The same records through franz-go: the batches kcat compressed are
	// served byte for byte and decode in another client too.
	recs := consumeN(t, srv, "kc", len(want))
	if string(recs[len(recs)-1].Value) != "value-zstd-4" {
		t.Fatalf("franz-go read %q last", recs[len(recs)-1].Value)
	}

	// Offset queries: end (-1), beginning (-2) and by timestamp.
	produceSync(t, cl, &kgo.Record{Topic: "kc", Value: []byte("late"), Timestamp: recs[0].Timestamp.Add(1e12)})
	q := runKcat(t, kcat, "", "-b", b, "-Q", "-t", "kc:0:-1")
	if !regexp.MustCompile(`kc \[0\]\s+offset 26\b`).MatchString(q) {
		t.Fatalf("kcat -Q end offset:\n%s", q)
	}
	q = runKcat(t, kcat, "", "-b", b, "-Q", "-t", "kc:0:-2")
	if !regexp.MustCompile(`kc \[0\]\s+offset 0\b`).MatchString(q) {
		t.Fatalf("kcat -Q start offset:\n%s", q)
	}
	ts := recs[0].Timestamp.Add(1e12 - 1).UnixMilli()
	q = runKcat(t, kcat, "", "-b", b, "-Q", "-t", fmt.Sprintf("kc:0:%d", ts))
	if !regexp.MustCompile(`kc \[0\]\s+offset 25\b`).MatchString(q) {
		t.Fatalf("kcat -Q offset for timestamp %d:\n%s", ts, q)
	}
}
