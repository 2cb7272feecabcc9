package broker_test

import (
	"bytes"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/spoolmq/spool/broker"
	"github.com/spoolmq/spool/spooltest"
)

func TestApiVersionsListsTable(t *testing.T) {
	srv := spooltest.Start(t)
	rc := dialRaw(t, srv.Addr())
	req := kmsg.NewPtrApiVersionsRequest()
	req.Version = 3
	req.ClientSoftwareName, req.ClientSoftwareVersion = "test", "1.0"
	resp := rc.roundTrip(req).(*kmsg.ApiVersionsResponse)
	if resp.ErrorCode != 0 {
		t.Fatalf("ApiVersions error %s", errName(resp.ErrorCode))
	}
	want := srv.Broker().Versions()
	if len(resp.ApiKeys) != len(want) {
		t.Fatalf("ApiVersions lists %d keys, the table has %d", len(resp.ApiKeys), len(want))
	}
	for _, k := range resp.ApiKeys {
		if r, ok := want[k.ApiKey]; !ok || r != [2]int16{k.MinVersion, k.MaxVersion} {
			t.Errorf("key %d: advertised %d-%d, table %v", k.ApiKey, k.MinVersion, k.MaxVersion, r)
		}
	}
	for key, r := range map[int16][2]int16{0: {0, 11}, 1: {4, 16}, 2: {1, 8}, 3: {0, 12}, 18: {0, 4}} {
		if want[key] != r {
			t.Errorf("key %d serves %v, DESIGN wants %v", key, want[key], r)
		}
	}
}

func TestApiVersionsUnsupportedVersion(t *testing.T) {
	srv := spooltest.Start(t)
	rc := dialRaw(t, srv.Addr())
	// A version we do not serve: Kafka answers in v0 format with
	// UNSUPPORTED_VERSION and its ApiVersions range, and keeps the
	// connection open.
	req := kmsg.NewPtrApiVersionsRequest()
	req.Version = 4
	frame := kmsg.NewRequestFormatter().AppendRequest(nil, req, 7)
	frame[6] = 0 // version 4 -> 99 (big-endian int16 at offset 6)
	frame[7] = 99
	rc.write(frame)
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.Version = 0
	rc.recv(7, resp)
	if resp.ErrorCode != kerr.UnsupportedVersion.Code {
		t.Fatalf("error %s, want UNSUPPORTED_VERSION", errName(resp.ErrorCode))
	}
	if len(resp.ApiKeys) != 1 || resp.ApiKeys[0].ApiKey != 18 || resp.ApiKeys[0].MaxVersion != 4 {
		t.Fatalf("keys %+v, want only ApiVersions 0-4", resp.ApiKeys)
	}
	checkServing(t, srv.Addr())
	// The same connection still works.
	ok := kmsg.NewPtrApiVersionsRequest()
	if r := rc.roundTrip(ok).(*kmsg.ApiVersionsResponse); r.ErrorCode != 0 {
		t.Fatalf("ApiVersions v0 after the downgrade: %s", errName(r.ErrorCode))
	}
}

func TestProduceFetchRoundTrip(t *testing.T) {
	srv := spooltest.Start(t)
	adm, cl := newAdmin(t, srv)
	createTopic(t, adm, "orders", 3, nil)
	var rs []*kgo.Record
	for i := range 300 {
		rs = append(rs, &kgo.Record{
			Topic:     "orders",
			Partition: int32(i % 3),
			Key:       fmt.Appendf(nil, "k%d", i%7),
			Value:     fmt.Appendf(nil, "v%d", i),
			Headers:   []kgo.RecordHeader{{Key: "h", Value: []byte("x")}},
		})
	}
	produceSync(t, cl, rs...)
	got := consumeN(t, srv, "orders", 300)
	if len(got) != 300 {
		t.Fatalf("consumed %d records, want 300", len(got))
	}
	// Per partition, offsets are dense and values in produce order.
	byPart := map[int32][]*kgo.Record{}
	for _, r := range got {
		byPart[r.Partition] = append(byPart[r.Partition], r)
		if len(r.Headers) != 1 || r.Headers[0].Key != "h" {
			t.Fatalf("record headers %v", r.Headers)
		}
	}
	sent := map[int32][]string{}
	for _, r := range rs {
		sent[r.Partition] = append(sent[r.Partition], string(r.Value))
	}
	for p, recs := range byPart {
		for i, r := range recs {
			if r.Offset != int64(i) || string(r.Value) != sent[p][i] {
				t.Fatalf("partition %d record %d: offset %d value %q, want offset %d value %q", p, i, r.Offset, r.Value, i, sent[p][i])
			}
		}
	}
}

func TestProduceCompressedAndAcks(t *testing.T) {
	srv := spooltest.Start(t)
	adm, _ := newAdmin(t, srv)
	createTopic(t, adm, "c", 1, nil)
	codecs := map[string]kgo.CompressionCodec{
		"none": kgo.NoCompression(), "gzip": kgo.GzipCompression(), "snappy": kgo.SnappyCompression(),
		"lz4": kgo.Lz4Compression(), "zstd": kgo.ZstdCompression(),
	}
	n := 0
	for name, codec := range codecs {
		for _, acks := range []kgo.Acks{kgo.AllISRAcks(), kgo.LeaderAck(), kgo.NoAck()} {
			opts := []kgo.Opt{kgo.ProducerBatchCompression(codec), kgo.RequiredAcks(acks)}
			if acks != kgo.AllISRAcks() {
				opts = append(opts, kgo.DisableIdempotentWrite())
			}
			cl := newClient(t, srv, opts...)
			for i := range 10 {
				produceSync(t, cl, &kgo.Record{Topic: "c", Value: fmt.Appendf(nil, "%s-%d-%d", name, n, i)})
			}
			n++
		}
	}
	got := consumeN(t, srv, "c", n*10)
	if len(got) != n*10 {
		t.Fatalf("got %d records, want %d", len(got), n*10)
	}
}

func TestProduceErrors(t *testing.T) {
	srv := spooltest.Start(t, spooltest.WithoutAutoCreate())
	adm, _ := newAdmin(t, srv)
	small := "100"
	createTopic(t, adm, "small", 1, map[string]*string{"max.message.bytes": &small})
	rc := dialRaw(t, srv.Addr())

	if sp := produceRaw(t, rc, "nope", 0, makeBatch(1, "a")); sp.ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Errorf("unknown topic: %s", errName(sp.ErrorCode))
	}
	if sp := produceRaw(t, rc, "small", 5, makeBatch(1, "a")); sp.ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Errorf("unknown partition: %s", errName(sp.ErrorCode))
	}
	big := makeBatch(1, string(bytes.Repeat([]byte("x"), 200)))
	if sp := produceRaw(t, rc, "small", 0, big); sp.ErrorCode != kerr.MessageTooLarge.Code {
		t.Errorf("batch over max.message.bytes: %s", errName(sp.ErrorCode))
	}
	bad := makeBatch(1, "a", "b")
	bad[len(bad)-1] ^= 0xff // flip a byte covered by the CRC
	if sp := produceRaw(t, rc, "small", 0, bad); sp.ErrorCode != kerr.CorruptMessage.Code {
		t.Errorf("corrupt CRC: %s", errName(sp.ErrorCode))
	}
	if sp := produceRaw(t, rc, "small", 0, []byte("not a batch at all, definitely not")); sp.ErrorCode == 0 {
		t.Errorf("garbage records accepted")
	}
	// Nothing of the refused batches was written.
	if hw := srv.Broker().Store(); hw == nil {
		t.Fatal("no store")
	}
	offs, err := adm.ListEndOffsets(testCtx(t), "small")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := offs.Lookup("small", 0); o.Offset != 0 {
		t.Fatalf("end offset after refused batches %d, want 0", o.Offset)
	}
	// A good batch still works on the same connection, at offset 0.
	if sp := produceRaw(t, rc, "small", 0, makeBatch(1, "ok")); sp.ErrorCode != 0 || sp.BaseOffset != 0 {
		t.Fatalf("good batch: %s base %d", errName(sp.ErrorCode), sp.BaseOffset)
	}

	// acks=2 is refused; v2 (message format v1) is refused per partition.
	req := kmsg.NewPtrProduceRequest()
	req.Version, req.Acks = 7, 2
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = "small"
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = makeBatch(1, "a")
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	if r := rc.roundTrip(req).(*kmsg.ProduceResponse); r.Topics[0].Partitions[0].ErrorCode != kerr.InvalidRequiredAcks.Code {
		t.Errorf("acks=2: %s", errName(r.Topics[0].Partitions[0].ErrorCode))
	}
	req.Version, req.Acks = 2, 1
	if r := rc.roundTrip(req).(*kmsg.ProduceResponse); r.Topics[0].Partitions[0].ErrorCode != kerr.UnsupportedForMessageFormat.Code {
		t.Errorf("produce v2: %s", errName(r.Topics[0].Partitions[0].ErrorCode))
	}
	checkServing(t, srv.Addr())
}

func TestProduceLogAppendTime(t *testing.T) {
	now := time.UnixMilli(1_700_000_000_000)
	srv := spooltest.Start(t, spooltest.WithConfig(func(c *broker.Config) { c.Now = func() time.Time { return now } }))
	adm, _ := newAdmin(t, srv)
	lat := "LogAppendTime"
	createTopic(t, adm, "lat", 1, map[string]*string{"message.timestamp.type": &lat})
	rc := dialRaw(t, srv.Addr())
	sp := produceRaw(t, rc, "lat", 0, makeBatch(42, "a", "b"))
	if sp.ErrorCode != 0 || sp.LogAppendTime != now.UnixMilli() {
		t.Fatalf("produce: %s, LogAppendTime %d want %d", errName(sp.ErrorCode), sp.LogAppendTime, now.UnixMilli())
	}
	for _, r := range consumeN(t, srv, "lat", 2) {
		if !r.Timestamp.Equal(now) || r.Attrs.TimestampType() != 1 {
			t.Fatalf("record timestamp %v type %d, want %v LogAppendTime", r.Timestamp, r.Attrs.TimestampType(), now)
		}
	}
	// CreateTime (the default) keeps the producer's timestamps.
	createTopic(t, adm, "ct", 1, nil)
	if sp := produceRaw(t, rc, "ct", 0, makeBatch(42, "a")); sp.LogAppendTime != -1 {
		t.Fatalf("CreateTime topic: LogAppendTime %d, want -1", sp.LogAppendTime)
	}
	if r := consumeN(t, srv, "ct", 1)[0]; r.Timestamp.UnixMilli() != 42 {
		t.Fatalf("CreateTime record timestamp %d, want 42", r.Timestamp.UnixMilli())
	}
}

func TestMetadataAutoCreate(t *testing.T) {
	srv := spooltest.Start(t, spooltest.WithPartitions(3))
	rc := dialRaw(t, srv.Addr())
	md := kmsg.NewPtrMetadataRequest()
	md.Version = 12
	md.AllowAutoTopicCreation = true
	for _, name := range []string{"auto", "bad name!"} {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(name)
		md.Topics = append(md.Topics, rt)
	}
	resp := rc.roundTrip(md).(*kmsg.MetadataResponse)
	if len(resp.Topics) != 2 {
		t.Fatalf("%d topics", len(resp.Topics))
	}
	auto, bad := resp.Topics[0], resp.Topics[1]
	if auto.ErrorCode != 0 || len(auto.Partitions) != 3 || auto.TopicID == [16]byte{} {
		t.Fatalf("auto-created topic: %s, %d partitions, id %v", errName(auto.ErrorCode), len(auto.Partitions), auto.TopicID)
	}
	if p := auto.Partitions[0]; p.Leader != 0 || p.LeaderEpoch != -1 || !slices.Equal(p.Replicas, []int32{0}) {
		t.Fatalf("partition %+v", p)
	}
	if bad.ErrorCode != kerr.InvalidTopicException.Code {
		t.Fatalf("invalid name: %s", errName(bad.ErrorCode))
	}
	if resp.ClusterID == nil || *resp.ClusterID == "" || resp.Brokers[0].Port == 0 {
		t.Fatalf("cluster %v brokers %+v", resp.ClusterID, resp.Brokers)
	}
	// Without AllowAutoTopicCreation: UNKNOWN_TOPIC_OR_PARTITION.
	md.AllowAutoTopicCreation = false
	md.Topics = md.Topics[:1]
	md.Topics[0].Topic = kmsg.StringPtr("not-allowed")
	if r := rc.roundTrip(md).(*kmsg.MetadataResponse); r.Topics[0].ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("no auto-create requested: %s", errName(r.Topics[0].ErrorCode))
	}
	// By topic ID (v10+): known and unknown.
	md.Topics[0] = kmsg.NewMetadataRequestTopic()
	md.Topics[0].TopicID = auto.TopicID
	if r := rc.roundTrip(md).(*kmsg.MetadataResponse); r.Topics[0].ErrorCode != 0 || *r.Topics[0].Topic != "auto" {
		t.Fatalf("by ID: %s %v", errName(r.Topics[0].ErrorCode), r.Topics[0].Topic)
	}
	md.Topics[0].TopicID = [16]byte{1}
	if r := rc.roundTrip(md).(*kmsg.MetadataResponse); r.Topics[0].ErrorCode != kerr.UnknownTopicID.Code {
		t.Fatalf("unknown ID: %s", errName(r.Topics[0].ErrorCode))
	}
	// All topics (null list).
	md.Topics = nil
	if r := rc.roundTrip(md).(*kmsg.MetadataResponse); len(r.Topics) != 1 || *r.Topics[0].Topic != "auto" {
		t.Fatalf("all topics: %+v", r.Topics)
	}
	// v0: empty list means all, and auto-creation is implied.
	md0 := kmsg.NewPtrMetadataRequest()
	md0.Version = 0
	if r := rc.roundTrip(md0).(*kmsg.MetadataResponse); len(r.Topics) != 1 {
		t.Fatalf("v0 all topics: %d", len(r.Topics))
	}
}

func TestMetadataAutoCreateOff(t *testing.T) {
	srv := spooltest.Start(t, spooltest.WithoutAutoCreate())
	cl := newClient(t, srv, kgo.AllowAutoTopicCreation(), kgo.ProduceRequestTimeout(time.Second), kgo.RecordDeliveryTimeout(2*time.Second))
	err := cl.ProduceSync(testCtx(t), &kgo.Record{Topic: "absent", Value: []byte("x")}).FirstErr()
	if err == nil {
		t.Fatal("produce to an absent topic with auto-create off succeeded")
	}
	rc := dialRaw(t, srv.Addr())
	md := kmsg.NewPtrMetadataRequest()
	md.Version = 12
	md.AllowAutoTopicCreation = true
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr("absent")
	md.Topics = append(md.Topics, rt)
	if r := rc.roundTrip(md).(*kmsg.MetadataResponse); r.Topics[0].ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("auto-create off: %s", errName(r.Topics[0].ErrorCode))
	}
	if topics := rawTopics(t, srv.Addr()); len(topics) != 0 {
		t.Fatalf("topics after refused auto-create: %v", topics)
	}
}

func TestFetchLongPoll(t *testing.T) {
	srv := spooltest.Start(t)
	adm, cl := newAdmin(t, srv)
	createTopic(t, adm, "lp", 2, nil)
	rc := dialRaw(t, srv.Addr())

	fetch := func(offset int64, maxWait int32, minBytes int32) *kmsg.FetchRequest {
		req := kmsg.NewPtrFetchRequest()
		req.Version = 11
		req.MaxWaitMillis, req.MinBytes, req.MaxBytes = maxWait, minBytes, 1<<20
		req.SessionEpoch = -1
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic = "lp"
		for p := range int32(2) {
			rp := kmsg.NewFetchRequestTopicPartition()
			rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = p, offset, 1<<20
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
		return req
	}
	// Empty log, short wait: answers empty with high watermark 0.
	r := rc.roundTrip(fetch(0, 10, 1)).(*kmsg.FetchResponse)
	if p := r.Topics[0].Partitions[0]; p.ErrorCode != 0 || p.HighWatermark != 0 || len(p.RecordBatches) != 0 || r.SessionID != 0 {
		t.Fatalf("empty fetch: %s hw %d %d bytes session %d", errName(p.ErrorCode), p.HighWatermark, len(p.RecordBatches), r.SessionID)
	}
	// A long poll (longer than the test's bound) is woken by a produce to
	// partition 1.
	corr := rc.send(fetch(0, int32(2*testTimeout/time.Millisecond), 1))
	produceSync(t, cl, &kgo.Record{Topic: "lp", Partition: 1, Value: []byte("wake")})
	resp := kmsg.NewPtrFetchResponse()
	resp.Version = 11
	rc.recv(corr, resp)
	p1 := resp.Topics[0].Partitions[1]
	if p1.HighWatermark != 1 || len(p1.RecordBatches) == 0 {
		t.Fatalf("woken fetch: partition 1 hw %d, %d bytes", p1.HighWatermark, len(p1.RecordBatches))
	}
	// Out of range offset answers at once with OFFSET_OUT_OF_RANGE.
	r = rc.roundTrip(fetch(5, int32(2*testTimeout/time.Millisecond), 1)).(*kmsg.FetchResponse)
	if p := r.Topics[0].Partitions[1]; p.ErrorCode != kerr.OffsetOutOfRange.Code || p.HighWatermark != 1 {
		t.Fatalf("out of range: %s hw %d", errName(p.ErrorCode), p.HighWatermark)
	}
	// Unknown topic: UNKNOWN_TOPIC_OR_PARTITION at once.
	unk := fetch(0, int32(2*testTimeout/time.Millisecond), 1)
	unk.Topics[0].Topic = "nope"
	if r := rc.roundTrip(unk).(*kmsg.FetchResponse); r.Topics[0].Partitions[0].ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("unknown topic: %s", errName(r.Topics[0].Partitions[0].ErrorCode))
	}
	// A session ID we never handed out.
	sess := fetch(0, 0, 1)
	sess.SessionID, sess.SessionEpoch = 77, 1
	if r := rc.roundTrip(sess).(*kmsg.FetchResponse); r.ErrorCode != kerr.FetchSessionIDNotFound.Code {
		t.Fatalf("unknown session: %s", errName(r.ErrorCode))
	}
}

func TestFetchMaxBytesWholeBatches(t *testing.T) {
	srv := spooltest.Start(t)
	adm, _ := newAdmin(t, srv)
	createTopic(t, adm, "mb", 2, nil)
	rc := dialRaw(t, srv.Addr())
	// Current timestamps: old ones would roll a segment per batch (segment.ms
	// counts from the first batch's timestamp, as in Kafka).
	b1 := makeBatch(time.Now().UnixMilli(), string(bytes.Repeat([]byte("a"), 1000)))
	for range 3 {
		for p := range int32(2) {
			if sp := produceRaw(t, rc, "mb", p, slices.Clone(b1)); sp.ErrorCode != 0 {
				t.Fatalf("produce: %s", errName(sp.ErrorCode))
			}
		}
	}
	req := kmsg.NewPtrFetchRequest()
	req.Version = 12
	req.MaxBytes = 10 // smaller than one batch: the first batch still comes whole (KIP-74)
	req.SessionEpoch = -1
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = "mb"
	for p := range int32(2) {
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition, rp.PartitionMaxBytes = p, 1<<20
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	r := rc.roundTrip(req).(*kmsg.FetchResponse)
	p0, p1 := r.Topics[0].Partitions[0], r.Topics[0].Partitions[1]
	if len(p0.RecordBatches) != len(b1) || len(p1.RecordBatches) != 0 {
		t.Fatalf("MaxBytes 10: partition 0 got %d bytes (want one batch, %d), partition 1 %d (want 0)", len(p0.RecordBatches), len(b1), len(p1.RecordBatches))
	}
	if p0.HighWatermark != 3 || p1.HighWatermark != 3 {
		t.Fatalf("high watermarks %d %d", p0.HighWatermark, p1.HighWatermark)
	}
	// Partition max bytes of 2.5 batches: two whole batches.
	req.MaxBytes = 1 << 20
	for i := range rt.Partitions {
		req.Topics[0].Partitions[i].PartitionMaxBytes = int32(len(b1) * 5 / 2)
	}
	r = rc.roundTrip(req).(*kmsg.FetchResponse)
	for _, p := range r.Topics[0].Partitions {
		if len(p.RecordBatches) != 2*len(b1) {
			t.Fatalf("partition %d: %d bytes, want two whole batches (%d)", p.Partition, len(p.RecordBatches), 2*len(b1))
		}
	}
}

func TestListOffsets(t *testing.T) {
	srv := spooltest.Start(t)
	adm, cl := newAdmin(t, srv)
	createTopic(t, adm, "lo", 1, nil)
	base := time.UnixMilli(1_700_000_000_000)
	// Timestamps 0s, 10s, 20s, 30s, then an out-of-order 5s at offset 4,
	// and the max timestamp 40s at offset 5 with a later 35s at offset 6.
	secs := []int{0, 10, 20, 30, 5, 40, 35}
	for _, s := range secs {
		produceSync(t, cl, &kgo.Record{Topic: "lo", Value: []byte("v"), Timestamp: base.Add(time.Duration(s) * time.Second)})
	}
	ctx := testCtx(t)
	check := func(what string, got kadm.ListedOffsets, wantOff int64, wantTs int64) {
		t.Helper()
		o, ok := got.Lookup("lo", 0)
		if !ok || o.Err != nil || o.Offset != wantOff || wantTs != -2 && o.Timestamp != wantTs {
			t.Errorf("%s: offset %d ts %d err %v, want offset %d ts %d", what, o.Offset, o.Timestamp, o.Err, wantOff, wantTs)
		}
	}
	start, err := adm.ListStartOffsets(ctx, "lo")
	if err != nil {
		t.Fatal(err)
	}
	check("earliest", start, 0, -2)
	end, _ := adm.ListEndOffsets(ctx, "lo")
	check("latest", end, 7, -2)
	ms := func(s int) int64 { return base.Add(time.Duration(s) * time.Second).UnixMilli() }
	for _, c := range []struct {
		at       int
		off, ats int64
	}{
		{-1, 0, ms(0)}, {0, 0, ms(0)}, {1, 1, ms(10)}, {10, 1, ms(10)}, {25, 3, ms(30)}, {36, 5, ms(40)}, {40, 5, ms(40)},
	} {
		got, err := adm.ListOffsetsAfterMilli(ctx, ms(c.at), "lo")
		if err != nil {
			t.Fatal(err)
		}
		check(fmt.Sprintf("timestamp %ds", c.at), got, c.off, c.ats)
	}
	// After every timestamp: offset -1 (kadm maps it to the end).
	raw := kmsg.NewPtrListOffsetsRequest()
	raw.Version = 8
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = "lo"
	for _, ts := range []int64{ms(41), -3, -2, -1, -4, -9} {
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Timestamp = ts
		rt.Partitions = append(rt.Partitions, rp)
	}
	raw.Topics = append(raw.Topics, rt)
	rc := dialRaw(t, srv.Addr())
	r := rc.roundTrip(raw).(*kmsg.ListOffsetsResponse)
	ps := r.Topics[0].Partitions
	if ps[0].Offset != -1 || ps[0].Timestamp != -1 {
		t.Errorf("after every timestamp: offset %d ts %d, want -1 -1", ps[0].Offset, ps[0].Timestamp)
	}
	if ps[1].Offset != 5 || ps[1].Timestamp != ms(40) {
		t.Errorf("max timestamp: offset %d ts %d, want 5 %d", ps[1].Offset, ps[1].Timestamp, ms(40))
	}
	if ps[2].Offset != 0 || ps[3].Offset != 7 || ps[4].Offset != 0 {
		t.Errorf("earliest/latest/earliest-local: %d %d %d", ps[2].Offset, ps[3].Offset, ps[4].Offset)
	}
	if ps[5].ErrorCode != kerr.InvalidRequest.Code {
		t.Errorf("timestamp -9: %s", errName(ps[5].ErrorCode))
	}
	raw.Topics[0].Topic = "nope"
	if r := rc.roundTrip(raw).(*kmsg.ListOffsetsResponse); r.Topics[0].Partitions[0].ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Errorf("unknown topic: %s", errName(r.Topics[0].Partitions[0].ErrorCode))
	}
}

func TestOffsetForLeaderEpoch(t *testing.T) {
	srv := spooltest.Start(t)
	adm, cl := newAdmin(t, srv)
	createTopic(t, adm, "ep", 1, nil)
	produceSync(t, cl, &kgo.Record{Topic: "ep", Value: []byte("a")}, &kgo.Record{Topic: "ep", Value: []byte("b")})
	req := kmsg.NewPtrOffsetForLeaderEpochRequest()
	req.Version = 4
	req.ReplicaID = -1
	for _, name := range []string{"ep", "nope"} {
		rt := kmsg.NewOffsetForLeaderEpochRequestTopic()
		rt.Topic = name
		rp := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
		rp.CurrentLeaderEpoch, rp.LeaderEpoch = -1, 0
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
	}
	r := dialRaw(t, srv.Addr()).roundTrip(req).(*kmsg.OffsetForLeaderEpochResponse)
	if p := r.Topics[0].Partitions[0]; p.ErrorCode != 0 || p.EndOffset != 2 {
		t.Fatalf("known: %s end %d, want end 2", errName(p.ErrorCode), p.EndOffset)
	}
	if p := r.Topics[1].Partitions[0]; p.ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("unknown: %s", errName(p.ErrorCode))
	}
}
