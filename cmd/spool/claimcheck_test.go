package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spoolmq/spool/claimcheck/blobstoretest"
	"github.com/spoolmq/spool/claimcheck/s3store"
	"github.com/spoolmq/spool/internal/kafkatest"
	"github.com/spoolmq/spool/internal/seaweedtest"
)

func blobsIn(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	slices.Sort(out)
	return out
}

// TestClaimCheckSweepCLI: `spool claimcheck sweep` with the topics'
// retention (retention.ms + segment.ms + grace), a dry run, infinite
// retention, an unknown topic, a fixed --max-age, and bad input (exit 2).
func TestClaimCheckSweepCLI(t *testing.T) {
	eachCluster(t, func(t *testing.T, addr string) {
		mustRun(t, addr, "", "topic", "create", "docs", "-c", "retention.ms=3600000", "-c", "segment.ms=600000")
		mustRun(t, addr, "", "topic", "create", "docs.dlq", "-c", "retention.ms=60000", "-c", "segment.ms=60000")
		mustRun(t, addr, "", "topic", "create", "keep", "-c", "retention.ms=-1")
		_, dir := blobstoretest.AgedDir(t, map[string]time.Duration{
			"old":   3 * time.Hour,               // past 1h + 10m + 1h grace
			"edge":  2*time.Hour + 5*time.Minute, // inside segment.ms
			"fresh": time.Minute,
		})
		sweep := func(args ...string) []string { return append([]string{"claimcheck", "sweep", "--dir", dir}, args...) }

		out := mustRun(t, addr, "", sweep("--topic", "docs,docs.dlq", "--dry-run")...)
		wantContains(t, "dry run", out, "old\t3\t", "would delete 1 blobs", "older than 2h10m0s", "topic docs")
		if strings.Contains(out, "edge") || strings.Contains(out, "fresh") {
			t.Fatalf("dry run lists young blobs:\n%s", out)
		}
		if got := blobsIn(t, dir); len(got) != 3 {
			t.Fatalf("dry run deleted: %v left", got)
		}

		wantContains(t, "forever", mustRun(t, addr, "", sweep("--topic", "docs", "--topic", "keep")...), "nothing swept", "topic keep keeps records forever")
		mustFail(t, addr, "", sweep("--topic", "docs,nope"), `"nope" does not exist`)
		if got := blobsIn(t, dir); len(got) != 3 {
			t.Fatalf("deleted under infinite retention or an unknown topic: %v left", got)
		}

		wantContains(t, "sweep", mustRun(t, addr, "", sweep("--topic", "docs.dlq", "--topic", "docs")...), "deleted 1 blobs", "older than 2h10m0s")
		if got := blobsIn(t, dir); !slices.Equal(got, []string{"edge", "fresh"}) {
			t.Fatalf("after sweep: %v, want [edge fresh]", got)
		}
		wantContains(t, "max age", mustRun(t, addr, "", sweep("--max-age", "30s")...), "deleted 2 blobs", "older than 30s")
		if got := blobsIn(t, dir); len(got) != 0 {
			t.Fatalf("after --max-age 30s: %v left", got)
		}

		for _, bad := range []struct {
			args []string
			want string
		}{
			{[]string{"claimcheck", "sweep", "--topic", "docs"}, "no blob store"},
			{sweep("--s3-endpoint", "localhost:9000", "--s3-bucket", "b", "--topic", "docs"), "not both"},
			{[]string{"claimcheck", "sweep", "--s3-endpoint", "localhost:9000", "--topic", "docs"}, "--s3-bucket"},
			{sweep(), "--topic"},
			{sweep("--max-age", "-1h"), "--max-age"},
			{sweep("--topic", "docs", "--grace", "-1m"), "--grace"},
			{sweep("--max-age", "soon"), "invalid argument"},
			{[]string{"claimcheck", "sweep", "--dir", filepath.Join(dir, "typo"), "--max-age", "1h"}, "not a directory"},
		} {
			r := run(t, addr, "", bad.args...)
			if exitCode(r.err) != 2 || !strings.Contains(r.err.Error(), bad.want) {
				t.Errorf("spool %v: exit %d, %v; want exit 2 mentioning %q", bad.args, exitCode(r.err), r.err, bad.want)
			}
		}
	})
}

// TestClaimCheckSweepS3CLI: the S3 flags reach the store: on a real
// S3-compatible server (SeaweedFS), a sweep with --s3-prefix deletes the
// blobs under the prefix (all older than --max-age 1ms) and none outside
// it, with the credentials from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY.
func TestClaimCheckSweepS3CLI(t *testing.T) {
	endpoint := seaweedtest.Start(t)
	ctx := t.Context()
	open := func(prefix string) *s3store.Store {
		s, err := s3store.New(ctx, s3store.Config{Endpoint: endpoint, Bucket: "claims", Prefix: prefix,
			AccessKey: "any", SecretKey: "any", CreateBucket: true})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	swept, other := open("docs/"), open("other/")
	for _, name := range []string{"a", "b"} {
		if err := swept.Put(ctx, name, []byte(name)); err != nil {
			t.Fatal(err)
		}
		if err := other.Put(ctx, name, []byte(name)); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("AWS_ACCESS_KEY_ID", "any")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "any")
	s3 := []string{"claimcheck", "sweep", "--s3-endpoint", endpoint, "--s3-bucket", "claims", "--s3-prefix", "docs/", "--s3-insecure", "--max-age", "1ms"}
	// Object times have a resolution of a second: wait until both blobs
	// are older than 1ms by the listing's clock.
	out := ""
	kafkatest.Eventually(t, 10*time.Second, "both blobs expired", func() bool {
		out = mustRun(t, "127.0.0.1:1", "", append(s3, "--dry-run")...)
		return strings.Contains(out, "would delete 2 blobs")
	})
	wantContains(t, "dry run", out, "a\t1\t", "b\t1\t", "s3://claims/docs/")
	wantContains(t, "sweep", mustRun(t, "127.0.0.1:1", "", s3...), "deleted 2 blobs in s3://claims/docs/")
	if got := blobstoretest.Names(t, swept); len(got) != 0 {
		t.Errorf("left under the prefix: %v", got)
	}
	if got := blobstoretest.Names(t, other); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("outside the prefix: %v, want [a b] untouched", got)
	}
	mustFail(t, "127.0.0.1:1", "", []string{"claimcheck", "sweep", "--s3-endpoint", endpoint, "--s3-bucket", "nope", "--s3-insecure", "--max-age", "1h"}, "does not exist")
}
