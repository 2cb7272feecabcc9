// Package kopt maps the client options that Spool's command-line tools share
// (acks, compression) from their flag spelling to franz-go options.
package kopt

import (
	"fmt"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Compression maps a codec name (none, gzip, snappy, lz4, zstd) to franz-go's
// codec.
func Compression(name string) (kgo.CompressionCodec, error) {
	switch strings.ToLower(name) {
	case "", "none":
		return kgo.NoCompression(), nil
	case "gzip":
		return kgo.GzipCompression(), nil
	case "snappy":
		return kgo.SnappyCompression(), nil
	case "lz4":
		return kgo.Lz4Compression(), nil
	case "zstd":
		return kgo.ZstdCompression(), nil
	}
	return kgo.CompressionCodec{}, fmt.Errorf("kopt: unknown compression %q (want none, gzip, snappy, lz4 or zstd)", name)
}

// Acks maps an acks setting (all or -1, 1, 0) to the producer options it
// needs: acks other than all require the idempotent producer to be off.
func Acks(s string) ([]kgo.Opt, error) {
	switch strings.ToLower(s) {
	case "all", "-1":
		return []kgo.Opt{kgo.RequiredAcks(kgo.AllISRAcks())}, nil
	case "1", "leader":
		return []kgo.Opt{kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite()}, nil
	case "0", "none":
		return []kgo.Opt{kgo.RequiredAcks(kgo.NoAck()), kgo.DisableIdempotentWrite()}, nil
	}
	return nil, fmt.Errorf("kopt: bad acks %q (want all, 1 or 0)", s)
}
