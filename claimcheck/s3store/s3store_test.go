package s3store_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/spoolmq/spool/claimcheck"
	"github.com/spoolmq/spool/claimcheck/blobstoretest"
	"github.com/spoolmq/spool/claimcheck/s3store"
	"github.com/spoolmq/spool/internal/seaweedtest"
)

// TestS3Conformance runs the BlobStore conformance tests on a real
// S3-compatible server (SeaweedFS), each test on a prefix of its own in
// one bucket, and a second bucket with a prefix for the Prefix option.
func TestS3Conformance(t *testing.T) {
	endpoint := seaweedtest.Start(t)
	ctx := context.Background()
	var n atomic.Int64
	blobstoretest.Run(t, func(t *testing.T) claimcheck.BlobStore {
		s, err := s3store.New(ctx, s3store.Config{
			Endpoint: endpoint, Bucket: "claims", Prefix: fmt.Sprintf("run-%d/", n.Add(1)),
			AccessKey: "any", SecretKey: "any", CreateBucket: true,
		})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})

	t.Run("MissingBucket", func(t *testing.T) {
		_, err := s3store.New(ctx, s3store.Config{Endpoint: endpoint, Bucket: "no-such-bucket", AccessKey: "any", SecretKey: "any"})
		if err == nil {
			t.Fatal("New accepted a bucket that does not exist")
		}
		t.Log(err)
	})
	t.Run("BadConfig", func(t *testing.T) {
		for _, cfg := range []s3store.Config{{Bucket: "b"}, {Endpoint: endpoint}, {Endpoint: "http://" + endpoint, Bucket: "b"}} {
			if _, err := s3store.New(ctx, cfg); err == nil {
				t.Errorf("New accepted %+v", cfg)
			}
		}
	})
}
