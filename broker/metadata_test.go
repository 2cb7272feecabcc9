package broker_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/spoolmq/spool/broker"
	"github.com/spoolmq/spool/spooltest"
	"github.com/spoolmq/spool/storage"
)

// startErr starts a broker on dir and returns its start error (closing it
// if it started).
func startErr(t *testing.T, cfg broker.Config) error {
	t.Helper()
	cfg.Listen = "127.0.0.1:0"
	b, err := broker.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	err = b.Start(context.Background())
	if err == nil {
		b.Close()
	}
	return err
}

// seedTopics starts a broker in a new directory with topic "orders" (2
// partitions, a config override, 10 records) and closes it. It returns the
// directory and the topic's ID.
func seedTopics(t *testing.T) (string, [16]byte) {
	t.Helper()
	srv := spooltest.Start(t)
	adm, cl := newAdmin(t, srv)
	createTopic(t, adm, "orders", 2, map[string]*string{"retention.ms": kmsg.StringPtr("86400000")})
	var rs []*kgo.Record
	for i := range 10 {
		rs = append(rs, &kgo.Record{Topic: "orders", Partition: int32(i % 2), Value: fmt.Appendf(nil, "r%d", i)})
	}
	produceSync(t, cl, rs...)
	id := topicID(t, dialRaw(t, srv.Addr()), "orders")
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	return srv.DataDir(), id
}

func wantDir(t *testing.T, path string) {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("%s is gone: %v", path, err)
	}
}

func wantErr(t *testing.T, err error, want ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("start succeeded, want an error mentioning %q", want)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Fatalf("start error %q does not mention %q", err, w)
		}
	}
}

// Before this check, a lost broker-meta.json made the next start write an
// empty topic list and delete every partition log.
func TestStartRefusesLogsWithoutMetadata(t *testing.T) {
	dir, id := seedTopics(t)
	if err := os.Remove(filepath.Join(dir, "broker-meta.json")); err != nil {
		t.Fatal(err)
	}
	err := startErr(t, broker.Config{DataDir: dir})
	wantErr(t, err, "broker-meta.json is missing", "2 partition logs of 1 topics (orders)", "--recover-metadata")
	wantDir(t, filepath.Join(dir, "orders-0"))
	wantDir(t, filepath.Join(dir, "orders-1"))
	if _, err := os.Stat(filepath.Join(dir, "broker-meta.json")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a refused start wrote the metadata file: %v", err)
	}

	// --recover-metadata brings the topic back from its partition
	// directories: same ID, partitions, configs and records.
	srv := spooltest.Start(t, spooltest.WithConfig(func(c *broker.Config) { c.DataDir = dir; c.RecoverMetadata = true }))
	if got := topicID(t, dialRaw(t, srv.Addr()), "orders"); got != id {
		t.Errorf("recovered topic ID %x, want %x", got, id)
	}
	if n := rawTopics(t, srv.Addr())["orders"]; n != 2 {
		t.Errorf("recovered topic has %d partitions, want 2", n)
	}
	adm, _ := newAdmin(t, srv)
	rcs, err := adm.DescribeTopicConfigs(testCtx(t), "orders")
	if err != nil {
		t.Fatal(err)
	}
	got := ""
	for _, c := range rcs[0].Configs {
		if c.Key == "retention.ms" {
			got = val(c)
		}
	}
	if got != "86400000" {
		t.Errorf("recovered retention.ms: %q, want 86400000", got)
	}
	if got := consumeN(t, srv, "orders", 10); len(got) != 10 {
		t.Errorf("recovered %d records, want 10", len(got))
	}
	// The recovered metadata is written: a plain restart needs no flag.
	srv.Close()
	if err := startErr(t, broker.Config{DataDir: dir}); err != nil {
		t.Fatalf("start after recovery: %v", err)
	}
}

// Before this check, a partition directory that the metadata named but
// that was missing was recreated empty, silently.
func TestStartRefusesMissingPartitionDirectory(t *testing.T) {
	dir, _ := seedTopics(t)
	if err := os.RemoveAll(filepath.Join(dir, "orders-1")); err != nil {
		t.Fatal(err)
	}
	err := startErr(t, broker.Config{DataDir: dir})
	wantErr(t, err, filepath.Join(dir, "orders-1")+" is missing", "--recover-metadata")
	if _, err := os.Stat(filepath.Join(dir, "orders-1")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a refused start recreated the partition: %v", err)
	}
	// Accepting the loss: the partition comes back empty, the other keeps
	// its records.
	srv := spooltest.Start(t, spooltest.WithConfig(func(c *broker.Config) { c.DataDir = dir; c.RecoverMetadata = true }))
	adm, _ := newAdmin(t, srv)
	ends, err := adm.ListEndOffsets(testCtx(t), "orders")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := ends.Lookup("orders", 0); o.Offset != 5 {
		t.Errorf("orders/0 end offset %d after recovery, want 5", o.Offset)
	}
	if o, _ := ends.Lookup("orders", 1); o.Offset != 0 {
		t.Errorf("orders/1 end offset %d after recovery, want 0 (recreated empty)", o.Offset)
	}
}

// Before this check, a log that the metadata did not name was deleted at
// start, whatever it held.
func TestStartRefusesUnnamedLogWithRecords(t *testing.T) {
	dir, _ := seedTopics(t)
	path := filepath.Join(dir, "broker-meta.json")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var mf map[string]any
	if err := json.Unmarshal(data, &mf); err != nil {
		t.Fatal(err)
	}
	mf["topics"] = []any{}
	if data, err = json.Marshal(mf); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	err = startErr(t, broker.Config{DataDir: dir})
	wantErr(t, err, filepath.Join(dir, "orders-0"), "holds offsets up to 5", `does not name topic "orders"`, "--recover-metadata")
	wantDir(t, filepath.Join(dir, "orders-0"))
	wantDir(t, filepath.Join(dir, "orders-1"))
}

// A delete interrupted after its metadata write (here: removing the log
// fails) leaves a tombstone; the next start removes the logs it names and
// clears it. A log that was never written and that no metadata names (an
// interrupted create) is removed too: it holds nothing.
func TestTombstoneRemovesLogsOfDeletedTopic(t *testing.T) {
	fsys := storage.NewMemFS()
	cfg := func(c *broker.Config) { c.DataDir = "/data"; c.FS = fsys }
	srv := spooltest.Start(t, spooltest.WithConfig(cfg))
	adm, cl := newAdmin(t, srv)
	createTopic(t, adm, "gone", 2, nil)
	createTopic(t, adm, "kept", 1, nil)
	produceSync(t, cl, &kgo.Record{Topic: "gone", Value: []byte("x")}, &kgo.Record{Topic: "kept", Value: []byte("y")})
	fail := errors.New("injected")
	fsys.SetInjector(func(op storage.Op, path string) error {
		if op == storage.OpRename && strings.Contains(path, "gone-") {
			return fail
		}
		return nil
	})
	if r, err := adm.DeleteTopics(testCtx(t), "gone"); err != nil || r["gone"].Err != nil {
		t.Fatalf("delete: %v %v", err, r)
	}
	fsys.SetInjector(nil)
	srv.Close()
	meta, err := storage.ReadFile(fsys, "/data/broker-meta.json")
	if err != nil || !strings.Contains(string(meta), `"deleted"`) {
		t.Fatalf("metadata after a delete whose log removal failed: %v\n%s\nwant a tombstone", err, meta)
	}
	if ents, _ := fsys.ReadDir("/data/gone-0"); len(ents) == 0 {
		t.Fatal("the test needs gone-0 to survive the delete")
	}
	// An interrupted create: a log directory no metadata names, never written.
	st, err := storage.Open(storage.Options{Dir: "/data", FS: fsys, RetentionCheckInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateLog(storage.TopicPartition{Topic: "half", Partition: 0}, storage.LogConfig{}); err != nil {
		t.Fatal(err)
	}
	st.Close()

	srv = spooltest.Start(t, spooltest.WithConfig(cfg))
	if topics := rawTopics(t, srv.Addr()); len(topics) != 1 || topics["kept"] != 1 {
		t.Fatalf("topics after restart: %v, want kept only", topics)
	}
	for _, d := range []string{"/data/gone-0", "/data/gone-1", "/data/half-0"} {
		if ents, err := fsys.ReadDir(d); err == nil {
			t.Errorf("%s survived the restart (%d entries)", d, len(ents))
		}
	}
	meta, _ = storage.ReadFile(fsys, "/data/broker-meta.json")
	if strings.Contains(string(meta), `"deleted"`) {
		t.Errorf("tombstone kept after its logs were removed:\n%s", meta)
	}
	if got := consumeN(t, srv, "kept", 1); string(got[0].Value) != "y" {
		t.Errorf("kept: %q", got[0].Value)
	}
}
