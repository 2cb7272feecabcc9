// Package s3store is a claimcheck.BlobStore on S3-compatible object storage
// (AWS S3, MinIO, SeaweedFS, Ceph RGW, R2, ...), through minio-go. It is a
// package of its own so that programs using the directory store do not
// link an S3 client.
//
//	store, err := s3store.New(s3store.Config{
//		Endpoint: "s3.eu-west-1.amazonaws.com", Bucket: "orders-claims",
//		AccessKey: key, SecretKey: secret, Secure: true,
//	})
//	cc := claimcheck.New(store)
package s3store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/spoolmq/spool/claimcheck"
)

// Config says where the blobs go.
type Config struct {
	Endpoint  string // host[:port] of the S3 API, without scheme; required
	Bucket    string // required; must exist unless CreateBucket
	Prefix    string // prepended to every blob name, e.g. "claims/"; default none
	AccessKey string // default none (anonymous)
	SecretKey string
	Region    string // default: asked from the endpoint
	Secure    bool   // HTTPS; default false (plain HTTP)
	// CreateBucket creates Bucket at New if it does not exist; default
	// false.
	CreateBucket bool
	// Transport overrides the HTTP transport (proxies, custom CAs); default
	// minio-go's.
	Transport http.RoundTripper
}

// Store is the S3 blob store.
type Store struct {
	cl     *minio.Client
	bucket string
	prefix string
}

var _ claimcheck.BlobStore = (*Store)(nil)

// New returns the store for cfg, checking that the bucket exists (or
// creating it with CreateBucket).
func New(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.Endpoint == "" || cfg.Bucket == "" {
		return nil, errors.New("s3store: Config.Endpoint and Config.Bucket are required")
	}
	if strings.Contains(cfg.Endpoint, "://") {
		return nil, fmt.Errorf("s3store: endpoint %q: give host[:port] and set Secure for HTTPS", cfg.Endpoint)
	}
	var creds *credentials.Credentials
	if cfg.AccessKey != "" {
		creds = credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, "")
	} else {
		creds = credentials.New(&credentials.Static{Value: credentials.Value{SignerType: credentials.SignatureAnonymous}})
	}
	cl, err := minio.New(cfg.Endpoint, &minio.Options{
		Creds: creds, Secure: cfg.Secure, Region: cfg.Region, Transport: cfg.Transport,
		BucketLookup: minio.BucketLookupPath,
	})
	if err != nil {
		return nil, fmt.Errorf("s3store: %w", err)
	}
	ok, err := cl.BucketExists(ctx, cfg.Bucket)
	if err != nil {
		return nil, fmt.Errorf("s3store: bucket %s at %s: %w", cfg.Bucket, cfg.Endpoint, err)
	}
	if !ok {
		if !cfg.CreateBucket {
			return nil, fmt.Errorf("s3store: bucket %s does not exist at %s (create it, or set CreateBucket)", cfg.Bucket, cfg.Endpoint)
		}
		if err := cl.MakeBucket(ctx, cfg.Bucket, minio.MakeBucketOptions{Region: cfg.Region}); err != nil {
			return nil, fmt.Errorf("s3store: create bucket %s: %w", cfg.Bucket, err)
		}
	}
	return &Store{cl: cl, bucket: cfg.Bucket, prefix: cfg.Prefix}, nil
}

// Put implements claimcheck.BlobStore. The object is complete (S3 writes
// are atomic) and durable per the storage's guarantees when Put returns.
func (s *Store) Put(ctx context.Context, name string, data []byte) error {
	if err := claimcheck.ValidName(name); err != nil {
		return err
	}
	_, err := s.cl.PutObject(ctx, s.bucket, s.prefix+name, bytes.NewReader(data), int64(len(data)),
		minio.PutObjectOptions{ContentType: "application/octet-stream"})
	if err != nil {
		return fmt.Errorf("s3store: put %s/%s%s: %w", s.bucket, s.prefix, name, err)
	}
	return nil
}

// Get implements claimcheck.BlobStore.
func (s *Store) Get(ctx context.Context, name string) ([]byte, error) {
	if err := claimcheck.ValidName(name); err != nil {
		return nil, err
	}
	obj, err := s.cl.GetObject(ctx, s.bucket, s.prefix+name, minio.GetObjectOptions{})
	if err == nil {
		defer obj.Close()
		var b []byte
		if b, err = io.ReadAll(obj); err == nil {
			return b, nil
		}
	}
	if isNotFound(err) {
		return nil, fmt.Errorf("s3store: get %s/%s%s: %w", s.bucket, s.prefix, name, claimcheck.ErrNotFound)
	}
	return nil, fmt.Errorf("s3store: get %s/%s%s: %w", s.bucket, s.prefix, name, err)
}

// Delete implements claimcheck.BlobStore.
func (s *Store) Delete(ctx context.Context, name string) error {
	if err := claimcheck.ValidName(name); err != nil {
		return err
	}
	if err := s.cl.RemoveObject(ctx, s.bucket, s.prefix+name, minio.RemoveObjectOptions{}); err != nil && !isNotFound(err) {
		return fmt.Errorf("s3store: delete %s/%s%s: %w", s.bucket, s.prefix, name, err)
	}
	return nil
}

// List implements claimcheck.BlobStore: the objects under the prefix whose
// names are valid blob names.
func (s *Store) List(ctx context.Context, fn func(claimcheck.BlobInfo) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // stops the listing goroutine if fn stops us early
	for obj := range s.cl.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: s.prefix, Recursive: true}) {
		if obj.Err != nil {
			return fmt.Errorf("s3store: list %s/%s: %w", s.bucket, s.prefix, obj.Err)
		}
		name := strings.TrimPrefix(obj.Key, s.prefix)
		if claimcheck.ValidName(name) != nil {
			continue
		}
		if err := fn(claimcheck.BlobInfo{Name: name, Size: obj.Size, Modified: obj.LastModified}); err != nil {
			return err
		}
	}
	return ctx.Err()
}

func isNotFound(err error) bool {
	switch minio.ToErrorResponse(err).Code {
	case minio.NoSuchKey, "NotFound":
		return true
	}
	return false
}
