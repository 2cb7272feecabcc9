package lookback

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// Searches over many blocks, read in batches (pebbleStore.Search),
// return exactly what a scan of every record in index order returns,
// with every page size, in both orders, across erased slots, with
// residual equality filters and payload filters; and a search reads
// each block it needs once.
func TestPebbleSearchBatches(t *testing.T) {
	ctx := context.Background()
	st, err := OpenPebble(ctx, t.TempDir(), WithBlockCache(0))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	s := st.(*pebbleStore)
	var rs []Record
	for i := range 3000 {
		typ := []string{"a", "b", "c"}[i%3]
		rs = append(rs, ceRecord("t", int32(i%4), int64(i), fmt.Sprintf("k-%d", i%7), typ, "",
			t0.Add(time.Duration(i)*time.Second), fmt.Sprintf(`{"n":%d,"pad":"%s"}`, i, strings.Repeat("x", 100+i%50))))
	}
	for i := 0; i < len(rs); i += 700 {
		if err := s.Append(ctx, rs[i:min(i+700, len(rs))]); err != nil {
			t.Fatal(err)
		}
	}
	if n := s.nextBlock; n < 20 {
		t.Fatalf("%d blocks: the test wants many", n)
	}
	if _, err := s.Erase(ctx, []byte("k-3"), ""); err != nil {
		t.Fatal(err)
	}
	live := slices.DeleteFunc(slices.Clone(rs), func(r Record) bool { return string(r.Key) == "k-3" })
	for _, c := range []struct {
		name string
		q    Query
		want func(Record) bool
	}{
		{"all", Query{}, func(Record) bool { return true }},
		{"key", Query{Key: []byte("k-2"), HasKey: true}, func(r Record) bool { return string(r.Key) == "k-2" }},
		{"key and type", Query{Key: []byte("k-2"), HasKey: true, Type: "b"},
			func(r Record) bool { return string(r.Key) == "k-2" && string(r.Headers[2].Value) == "b" }},
		{"contains", Query{Contains: `"n":1`}, func(r Record) bool { return bytes.Contains(r.Value, []byte(`"n":1`)) }},
		{"range", Query{From: t0.Add(500 * time.Second), To: t0.Add(1700 * time.Second)},
			func(r Record) bool { return r.Offset >= 500 && r.Offset < 1700 }},
	} {
		for _, oldest := range []bool{false, true} {
			var want []int64
			for _, r := range live {
				if c.want(r) {
					want = append(want, r.Offset)
				}
			}
			if !oldest {
				slices.Reverse(want)
			}
			for _, limit := range []int{1, 7, 63, 64, 65, 1000} {
				q := c.q
				q.Oldest, q.Limit = oldest, limit
				var got []int64
				for pages := 0; ; pages++ {
					if pages > len(rs) {
						t.Fatalf("%s: pages never end", c.name)
					}
					p, err := s.Search(ctx, q)
					if err != nil {
						t.Fatal(err)
					}
					if len(p.Events) > limit {
						t.Fatalf("%s limit %d: a page of %d", c.name, limit, len(p.Events))
					}
					for _, e := range p.Events {
						got = append(got, e.Offset)
					}
					if p.Next == "" {
						break
					}
					q.Cursor = p.Next
				}
				if !slices.Equal(got, want) {
					t.Fatalf("%s (oldest %v, limit %d): %d events %v..., want %d %v...", c.name, oldest, limit,
						len(got), got[:min(len(got), 5)], len(want), want[:min(len(want), 5)])
				}
			}
		}
	}
	// One search over every event, without a block cache: each block is
	// decompressed once, not once per event.
	var raw int64
	for id := uint64(1); id < s.nextBlock; id++ {
		if m, ok, err := s.meta(id); err != nil {
			t.Fatal(err)
		} else if ok {
			raw += m.raw
		}
	}
	before := s.decompressed.Load()
	if p, err := s.Search(ctx, Query{Limit: 1000}); err != nil || len(p.Events) != 1000 {
		t.Fatalf("search: %d events, %v", len(p.Events), err)
	}
	if p, err := s.Search(ctx, Query{Oldest: true, Limit: 1000, MaxScan: 10_000, Contains: "{"}); err != nil || len(p.Events) != 1000 {
		t.Fatalf("search: %d events, %v", len(p.Events), err)
	}
	if got := s.decompressed.Load() - before; got > raw {
		t.Fatalf("two searches of 1000 events decompressed %d bytes; the whole archive is %d", got, raw)
	}
}
