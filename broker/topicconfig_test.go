package broker_test

import (
	"encoding/binary"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/spoolmq/spool/broker"
	"github.com/spoolmq/spool/spooltest"
	"github.com/spoolmq/spool/storage"
)

// describeRaw returns the DescribeConfigs (v4, with synonyms) entries of one
// resource by name.
func describeRaw(t testing.TB, addr string, typ kmsg.ConfigResourceType, name string) map[string]kmsg.DescribeConfigsResponseResourceConfig {
	t.Helper()
	req := kmsg.NewPtrDescribeConfigsRequest()
	req.Version = 4
	req.IncludeSynonyms = true
	rr := kmsg.NewDescribeConfigsRequestResource()
	rr.ResourceType, rr.ResourceName = typ, name
	req.Resources = append(req.Resources, rr)
	resp := dialRaw(t, addr).roundTrip(req).(*kmsg.DescribeConfigsResponse)
	if c := resp.Resources[0].ErrorCode; c != 0 {
		t.Fatalf("describe %v %q: %s", typ, name, errName(c))
	}
	out := map[string]kmsg.DescribeConfigsResponseResourceConfig{}
	for _, c := range resp.Resources[0].Configs {
		out[c.Name] = c
	}
	return out
}

func cfgVal(c kmsg.DescribeConfigsResponseResourceConfig) string {
	if c.Value == nil {
		return "<nil>"
	}
	return *c.Value
}

// createTopicErr creates a topic and returns the topic's error and message.
func createTopicErr(t testing.TB, addr, name string, configs map[string]string) (int16, string) {
	t.Helper()
	req := kmsg.NewPtrCreateTopicsRequest()
	req.Version = 5
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, 1, 1
	for k, v := range configs {
		c := kmsg.NewCreateTopicsRequestTopicConfig()
		c.Name, c.Value = k, kmsg.StringPtr(v)
		rt.Configs = append(rt.Configs, c)
	}
	req.Topics = append(req.Topics, rt)
	resp := dialRaw(t, addr).roundTrip(req).(*kmsg.CreateTopicsResponse)
	msg := ""
	if m := resp.Topics[0].ErrorMessage; m != nil {
		msg = *m
	}
	return resp.Topics[0].ErrorCode, msg
}

// Every topic config Kafka accepts that Spool applies is accepted and
// described as set; the ones Spool does not apply, and invalid values, are
// refused with INVALID_CONFIG and a message saying why (before, Kafka's
// segment.bytes=14 was accepted and silently raised to 1024, and
// compression.type, message.format.version, flush.*, delete.retention.ms,
// min.insync.replicas and index.interval.bytes were refused).
func TestTopicConfigsAcceptedAsKafka(t *testing.T) {
	srv := spooltest.Start(t)
	ok := map[string]string{
		"compression.type":       "lz4",
		"delete.retention.ms":    "1000",
		"flush.messages":         "10",
		"flush.ms":               "1000",
		"index.interval.bytes":   "100",
		"message.format.version": "2.8-IV1",
		"min.insync.replicas":    "1",
		"retention.bytes":        "0",
		"retention.ms":           "0",
		"segment.bytes":          "1024",
	}
	if code, msg := createTopicErr(t, srv.Addr(), "accepted", ok); code != 0 {
		t.Fatalf("create with Kafka configs: %s %s", errName(code), msg)
	}
	got := describeRaw(t, srv.Addr(), kmsg.ConfigResourceTypeTopic, "accepted")
	for k, v := range ok {
		if c := got[k]; cfgVal(c) != v || c.Source != kmsg.ConfigSourceDynamicTopicConfig {
			t.Errorf("%s: %q source %v, want %q from the topic", k, cfgVal(c), c.Source, v)
		}
	}
	if c := got["compression.type"]; len(c.ConfigSynonyms) != 2 || c.ConfigSynonyms[1].Source != kmsg.ConfigSourceDefaultConfig || cfgVal(kmsg.DescribeConfigsResponseResourceConfig{Value: c.ConfigSynonyms[1].Value}) != "producer" {
		t.Errorf("compression.type synonyms: %+v", c.ConfigSynonyms)
	}

	for _, bad := range []struct{ name, value, msg string }{
		{"segment.bytes", "14", "[1024,"},
		{"segment.bytes", "1023", "[1024,"},
		{"retention.ms", "-2", "[-1,"},
		{"compression.type", "brotli", "producer, uncompressed"},
		{"message.format.version", "latest", "not a Kafka version"},
		{"flush.messages", "0", "[1,"},
		{"min.insync.replicas", "0", "[1,"},
		{"cleanup.policy", "compact", "compaction is not supported"},
		{"segment.jitter.ms", "10", "not supported"},
		{"unclean.leader.election.enable", "true", "single node"},
		{"no.such.config", "1", "unknown topic config"},
	} {
		code, msg := createTopicErr(t, srv.Addr(), "refused", map[string]string{bad.name: bad.value})
		if code != kerr.InvalidConfig.Code || !strings.Contains(msg, bad.msg) || !strings.Contains(msg, bad.name) {
			t.Errorf("%s=%s: %s %q, want INVALID_CONFIG mentioning %q", bad.name, bad.value, errName(code), msg, bad.msg)
		}
	}
	if _, ok := rawTopics(t, srv.Addr())["refused"]; ok {
		t.Fatal("a refused topic was created")
	}
}

// retention.ms=0 and retention.bytes=0 are applied as Kafka applies them:
// every closed segment is deleted (before, 0 silently meant the default:
// 7 days and no limit).
func TestRetentionZeroDeletesClosedSegments(t *testing.T) {
	srv := spooltest.Start(t, spooltest.WithConfig(func(c *broker.Config) { c.RetentionCheckInterval = 10 * time.Millisecond }))
	adm, _ := newAdmin(t, srv)
	rc := dialRaw(t, srv.Addr())
	big := strings.Repeat("x", 700) // one batch per 1024-byte segment
	for _, cfg := range []string{"retention.ms", "retention.bytes"} {
		topic := strings.ReplaceAll(cfg, ".", "-")
		createTopic(t, adm, topic, 1, map[string]*string{cfg: kmsg.StringPtr("0"), "segment.bytes": kmsg.StringPtr("1024")})
		for range 3 {
			if sp := produceRaw(t, rc, topic, 0, makeBatch(time.Now().Add(-time.Second).UnixMilli(), big)); sp.ErrorCode != 0 {
				t.Fatalf("%s: produce: %s", cfg, errName(sp.ErrorCode))
			}
		}
		// Offsets 0 and 1 are in closed segments; 2 in the active one,
		// which retention never deletes.
		waitFor(t, cfg+"=0 deletes the closed segments", func() bool {
			starts, err := adm.ListStartOffsets(testCtx(t), topic)
			if err != nil {
				t.Fatal(err)
			}
			o, _ := starts.Lookup(topic, 0)
			return o.Offset == 2
		})
	}
}

// min.insync.replicas above 1 is applied as Kafka applies it to a topic
// with one replica: acks=all is refused with NOT_ENOUGH_REPLICAS, acks=1 is
// served.
func TestMinInsyncReplicas(t *testing.T) {
	srv := spooltest.Start(t)
	adm, _ := newAdmin(t, srv)
	createTopic(t, adm, "isr", 1, map[string]*string{"min.insync.replicas": kmsg.StringPtr("2")})
	rc := dialRaw(t, srv.Addr())
	if sp := produceRaw(t, rc, "isr", 0, makeBatch(1, "a")); sp.ErrorCode != kerr.NotEnoughReplicas.Code {
		t.Fatalf("acks=all: %s, want NOT_ENOUGH_REPLICAS", errName(sp.ErrorCode))
	}
	cl := newClient(t, srv, kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite())
	produceSync(t, cl, &kgo.Record{Topic: "isr", Value: []byte("b")})
	if recs := consumeN(t, srv, "isr", 1); string(recs[0].Value) != "b" {
		t.Fatalf("consumed %q", recs[0].Value)
	}
}

// batchCodecs fetches a partition from offset 0 and returns the codec of
// each stored batch, as a client sees it on the wire.
func batchCodecs(t testing.TB, addr, topic string) []int {
	t.Helper()
	req := kmsg.NewPtrFetchRequest()
	req.Version = 11
	req.MaxWaitMillis, req.MaxBytes, req.ReplicaID = 0, 1<<20, -1
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.PartitionMaxBytes = 1 << 20
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp := dialRaw(t, addr).roundTrip(req).(*kmsg.FetchResponse)
	p := resp.Topics[0].Partitions[0]
	if p.ErrorCode != 0 {
		t.Fatalf("fetch %s: %s", topic, errName(p.ErrorCode))
	}
	var codecs []int
	for b := p.RecordBatches; len(b) >= 61; {
		n := 12 + int(binary.BigEndian.Uint32(b[8:12]))
		codecs = append(codecs, int(binary.BigEndian.Uint16(b[21:23])&7))
		b = b[n:]
	}
	return codecs
}

// compression.type=<codec> recompresses batches produced in another codec
// on append, as Kafka does; the default, producer, keeps them as sent.
// Records (keys, values, headers, order) come back unchanged, and the
// idempotent producer's batches are still deduplicated by sequence.
func TestCompressionTypeRecompresses(t *testing.T) {
	srv := spooltest.Start(t)
	adm, _ := newAdmin(t, srv)
	want := map[string]int{"producer": 1, "uncompressed": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}
	cl := newClient(t, srv, kgo.ProducerBatchCompression(kgo.GzipCompression()), kgo.ProducerLinger(0))
	for ct := range want {
		createTopic(t, adm, "ct-"+ct, 1, map[string]*string{"compression.type": kmsg.StringPtr(ct)})
		var rs []*kgo.Record
		for i := range 20 {
			rs = append(rs, &kgo.Record{Topic: "ct-" + ct, Key: []byte{byte(i)}, Value: []byte(strings.Repeat(ct, 50+i)), Headers: []kgo.RecordHeader{{Key: "h", Value: []byte(ct)}}})
		}
		produceSync(t, cl, rs...)
	}
	for ct, codec := range want {
		codecs := batchCodecs(t, srv.Addr(), "ct-"+ct)
		if len(codecs) == 0 {
			t.Fatalf("%s: no batches", ct)
		}
		for _, c := range codecs {
			if c != codec {
				t.Errorf("compression.type=%s: stored codec %d, want %d", ct, c, codec)
			}
		}
		recs := consumeN(t, srv, "ct-"+ct, 20)
		for i, r := range recs {
			if r.Offset != int64(i) || r.Key[0] != byte(i) || string(r.Value) != strings.Repeat(ct, 50+i) || len(r.Headers) != 1 || string(r.Headers[0].Value) != ct {
				t.Fatalf("compression.type=%s: record %d came back as offset %d key %v value %.20q headers %v", ct, i, r.Offset, r.Key, r.Value, r.Headers)
			}
		}
	}
}

// flush.messages and flush.ms are applied with --fsync never: an
// acknowledged batch of a flush.messages=1 topic survives a crash, and a
// flush.ms topic's record is durable within flush.ms, while a topic without
// them keeps its records only in the page cache.
func TestFlushConfigsWithFsyncNever(t *testing.T) {
	fsys := storage.NewMemFS()
	// The data directory itself exists durably before the broker starts,
	// as a real one would.
	dir := t.TempDir() // the same path on the OS, where the group state lives
	if err := fsys.MkdirAll(dir); err != nil {
		t.Fatal(err)
	}
	for p := dir; p != "/"; p = filepath.Dir(p) {
		if err := fsys.SyncDir(filepath.Dir(p)); err != nil {
			t.Fatal(err)
		}
	}
	srv := spooltest.Start(t, spooltest.WithConfig(func(c *broker.Config) {
		c.FS = fsys
		c.DataDir = dir
		c.Fsync = storage.FsyncNever
	}))
	adm, _ := newAdmin(t, srv)
	createTopic(t, adm, "flush-each", 1, map[string]*string{"flush.messages": kmsg.StringPtr("1")})
	createTopic(t, adm, "flush-timed", 1, map[string]*string{"flush.ms": kmsg.StringPtr("20")})
	createTopic(t, adm, "no-flush", 1, nil)
	rc := dialRaw(t, srv.Addr())
	for _, topic := range []string{"flush-each", "flush-timed", "no-flush"} {
		for i := range 3 {
			if sp := produceRaw(t, rc, topic, 0, makeBatch(1, "r"+string(rune('0'+i)))); sp.ErrorCode != 0 {
				t.Fatalf("produce %s: %s", topic, errName(sp.ErrorCode))
			}
		}
	}
	// What a power loss now leaves on disk, per partition: the log end
	// recovery finds.
	survives := func() map[string]int64 {
		st, err := storage.Open(storage.Options{Dir: srv.DataDir(), FS: fsys.CrashClone(storage.CrashOptions{}), RetentionCheckInterval: -1})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		out := map[string]int64{}
		for _, l := range st.Logs() {
			out[l.TopicPartition().Topic] = l.LogEndOffset()
		}
		return out
	}
	if got := survives()["flush-each"]; got != 3 {
		t.Errorf("flush.messages=1: %d of 3 acknowledged records survive a crash", got)
	}
	waitFor(t, "flush.ms=20 makes the records durable", func() bool { return survives()["flush-timed"] == 3 })
	if got := survives()["no-flush"]; got != 0 {
		t.Errorf("no flush config, fsync=never: %d records survive a crash, want 0 (the test's premise)", got)
	}
}

// Broker-wide topic defaults are dynamic broker configs, as in Kafka:
// altered on the cluster default ("") or on node 0, persisted, applied at
// once to every topic that does not override them, and described with
// their source; read-only ones are refused with INVALID_CONFIG.
func TestDynamicBrokerConfigs(t *testing.T) {
	srv := spooltest.Start(t)
	adm, _ := newAdmin(t, srv)
	createTopic(t, adm, "plain", 1, nil)
	createTopic(t, adm, "own", 1, map[string]*string{"max.message.bytes": kmsg.StringPtr("100000")})

	alter := func(broker string, cs ...kadm.AlterConfig) error {
		t.Helper()
		req := kmsg.NewPtrIncrementalAlterConfigsRequest()
		rr := kmsg.NewIncrementalAlterConfigsRequestResource()
		rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeBroker, broker
		for _, c := range cs {
			rc := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
			rc.Name, rc.Value, rc.Op = c.Name, c.Value, kmsg.IncrementalAlterConfigOp(c.Op)
			rr.Configs = append(rr.Configs, rc)
		}
		req.Resources = append(req.Resources, rr)
		// Raw: a client sends a broker resource's request to that broker,
		// and there is no broker 1 to send it to.
		resp := dialRaw(t, srv.Addr()).roundTrip(req).(*kmsg.IncrementalAlterConfigsResponse)
		return kerr.ErrorForCode(resp.Resources[0].ErrorCode)
	}
	if err := alter("", kadm.AlterConfig{Name: "message.max.bytes", Value: kmsg.StringPtr("2000")}); err != nil {
		t.Fatalf("alter cluster default: %v", err)
	}
	if err := alter("0", kadm.AlterConfig{Name: "log.retention.ms", Value: kmsg.StringPtr("12345")}); err != nil {
		t.Fatalf("alter node 0: %v", err)
	}
	check := func(when string) {
		t.Helper()
		got := describeRaw(t, srv.Addr(), kmsg.ConfigResourceTypeTopic, "plain")
		if c := got["max.message.bytes"]; cfgVal(c) != "2000" || c.Source != kmsg.ConfigSourceDynamicDefaultBrokerConfig {
			t.Errorf("%s: plain max.message.bytes %q source %v", when, cfgVal(c), c.Source)
		}
		if c := got["retention.ms"]; cfgVal(c) != "12345" || c.Source != kmsg.ConfigSourceDynamicBrokerConfig || len(c.ConfigSynonyms) != 2 || c.ConfigSynonyms[0].Name != "log.retention.ms" {
			t.Errorf("%s: plain retention.ms %q source %v synonyms %+v", when, cfgVal(c), c.Source, c.ConfigSynonyms)
		}
		if c := describeRaw(t, srv.Addr(), kmsg.ConfigResourceTypeTopic, "own")["max.message.bytes"]; cfgVal(c) != "100000" {
			t.Errorf("%s: own max.message.bytes %q, the topic's override must win", when, cfgVal(c))
		}
		if c := describeRaw(t, srv.Addr(), kmsg.ConfigResourceTypeBroker, "0")["message.max.bytes"]; cfgVal(c) != "2000" || c.ReadOnly || c.Source != kmsg.ConfigSourceDynamicDefaultBrokerConfig {
			t.Errorf("%s: broker message.max.bytes %q read-only %v source %v", when, cfgVal(c), c.ReadOnly, c.Source)
		}
		if c, ok := describeRaw(t, srv.Addr(), kmsg.ConfigResourceTypeBroker, "")["message.max.bytes"]; !ok || cfgVal(c) != "2000" {
			t.Errorf("%s: cluster default message.max.bytes %q (described: %v)", when, cfgVal(c), ok)
		}
		rc := dialRaw(t, srv.Addr())
		if sp := produceRaw(t, rc, "plain", 0, makeBatch(1, strings.Repeat("x", 3000))); sp.ErrorCode != kerr.MessageTooLarge.Code {
			t.Errorf("%s: 3000-byte batch to plain: %s, want MESSAGE_TOO_LARGE", when, errName(sp.ErrorCode))
		}
		if sp := produceRaw(t, rc, "own", 0, makeBatch(1, strings.Repeat("x", 3000))); sp.ErrorCode != 0 {
			t.Errorf("%s: 3000-byte batch to own: %s", when, errName(sp.ErrorCode))
		}
	}
	check("after alter")
	srv.Restart(t)
	check("after restart")

	for _, bad := range []struct {
		c    kadm.AlterConfig
		want error
	}{
		{kadm.AlterConfig{Name: "num.partitions", Value: kmsg.StringPtr("3")}, kerr.InvalidConfig},
		{kadm.AlterConfig{Name: "log.message.format.version", Value: kmsg.StringPtr("3.0")}, kerr.InvalidConfig},
		{kadm.AlterConfig{Name: "log.segment.bytes", Value: kmsg.StringPtr("14")}, kerr.InvalidConfig},
		{kadm.AlterConfig{Name: "no.such.broker.config", Value: kmsg.StringPtr("1")}, kerr.InvalidConfig},
	} {
		if err := alter("0", bad.c); err != bad.want {
			t.Errorf("alter broker %s=%s: %v, want %v", bad.c.Name, *bad.c.Value, err, bad.want)
		}
	}
	if err := alter("1", kadm.AlterConfig{Name: "log.retention.ms", Value: kmsg.StringPtr("1")}); err != kerr.InvalidRequest {
		t.Errorf("alter broker 1: %v, want INVALID_REQUEST", err)
	}

	// DELETE returns to the flags' value.
	if err := alter("", kadm.AlterConfig{Op: kadm.DeleteConfig, Name: "message.max.bytes"}); err != nil {
		t.Fatal(err)
	}
	if c := describeRaw(t, srv.Addr(), kmsg.ConfigResourceTypeTopic, "plain")["max.message.bytes"]; cfgVal(c) != "1048588" || c.Source != kmsg.ConfigSourceDefaultConfig {
		t.Errorf("after delete: plain max.message.bytes %q source %v", cfgVal(c), c.Source)
	}
}

// APPEND and SUBTRACT work on list configs from the value in effect, and
// are refused on other configs.
func TestIncrementalAlterListOps(t *testing.T) {
	srv := spooltest.Start(t)
	adm, _ := newAdmin(t, srv)
	ctx := testCtx(t)
	createTopic(t, adm, "lists", 1, nil)
	for _, tc := range []struct {
		c    kadm.AlterConfig
		want error
		msg  string
	}{
		{kadm.AlterConfig{Op: kadm.AppendConfig, Name: "cleanup.policy", Value: kmsg.StringPtr("delete")}, nil, ""},
		{kadm.AlterConfig{Op: kadm.AppendConfig, Name: "cleanup.policy", Value: kmsg.StringPtr("compact")}, kerr.InvalidConfig, "compaction is not supported"},
		{kadm.AlterConfig{Op: kadm.SubtractConfig, Name: "cleanup.policy", Value: kmsg.StringPtr("delete")}, kerr.InvalidConfig, "cleanup.policy"},
		{kadm.AlterConfig{Op: kadm.AppendConfig, Name: "retention.ms", Value: kmsg.StringPtr("5")}, kerr.InvalidConfig, "not a list"},
		{kadm.AlterConfig{Op: kadm.SubtractConfig, Name: "no.such", Value: kmsg.StringPtr("5")}, kerr.InvalidConfig, "unknown"},
	} {
		r, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{tc.c}, "lists")
		if err != nil {
			t.Fatal(err)
		}
		if r[0].Err != tc.want || !strings.Contains(r[0].ErrMessage, tc.msg) {
			t.Errorf("%v %s %s: %v %q, want %v with %q", tc.c.Op, tc.c.Name, *tc.c.Value, r[0].Err, r[0].ErrMessage, tc.want, tc.msg)
		}
	}
	if c := describeRaw(t, srv.Addr(), kmsg.ConfigResourceTypeTopic, "lists")["cleanup.policy"]; cfgVal(c) != "delete" || c.Source != kmsg.ConfigSourceDynamicTopicConfig {
		t.Errorf("cleanup.policy after APPEND delete: %q source %v", cfgVal(c), c.Source)
	}
}

// The broker-wide defaults from the flags (broker.Config) are the topics'
// defaults, reported as STATIC_BROKER_CONFIG, and applied.
func TestStaticBrokerDefaults(t *testing.T) {
	srv := spooltest.Start(t, spooltest.WithConfig(func(c *broker.Config) {
		c.LogRetention = time.Hour
		c.LogSegmentBytes = 4096
		c.MaxMessageBytes = 2000
	}))
	adm, _ := newAdmin(t, srv)
	createTopic(t, adm, "static", 1, nil)
	got := describeRaw(t, srv.Addr(), kmsg.ConfigResourceTypeTopic, "static")
	for k, v := range map[string]string{"retention.ms": "3600000", "segment.bytes": "4096", "max.message.bytes": "2000"} {
		if c := got[k]; cfgVal(c) != v || c.Source != kmsg.ConfigSourceStaticBrokerConfig {
			t.Errorf("%s: %q source %v, want %q from the broker's flags", k, cfgVal(c), c.Source, v)
		}
	}
	if c := got["retention.bytes"]; cfgVal(c) != "-1" || c.Source != kmsg.ConfigSourceDefaultConfig {
		t.Errorf("retention.bytes: %q source %v", cfgVal(c), c.Source)
	}
	if sp := produceRaw(t, dialRaw(t, srv.Addr()), "static", 0, makeBatch(1, strings.Repeat("x", 2500))); sp.ErrorCode != kerr.MessageTooLarge.Code {
		t.Errorf("2500-byte batch with message.max.bytes 2000: %s", errName(sp.ErrorCode))
	}
}

// Every topic config has documentation, returned when asked for.
func TestDescribeConfigsDocumentation(t *testing.T) {
	srv := spooltest.Start(t)
	adm, _ := newAdmin(t, srv)
	createTopic(t, adm, "documented", 1, nil)
	for _, doc := range []bool{true, false} {
		req := kmsg.NewPtrDescribeConfigsRequest()
		req.Version, req.IncludeDocumentation = 4, doc
		rr := kmsg.NewDescribeConfigsRequestResource()
		rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeTopic, "documented"
		req.Resources = append(req.Resources, rr)
		resp := dialRaw(t, srv.Addr()).roundTrip(req).(*kmsg.DescribeConfigsResponse)
		if len(resp.Resources[0].Configs) < 14 {
			t.Fatalf("%d configs described", len(resp.Resources[0].Configs))
		}
		for _, c := range resp.Resources[0].Configs {
			if has := c.Documentation != nil && *c.Documentation != ""; has != doc {
				t.Errorf("IncludeDocumentation %v: %s documentation %v", doc, c.Name, c.Documentation)
			}
		}
	}
}
