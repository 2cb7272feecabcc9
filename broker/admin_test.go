package broker_test

import (
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/spoolmq/spool/spooltest"
)

func TestCreateTopicsValidation(t *testing.T) {
	srv := spooltest.Start(t)
	rc := dialRaw(t, srv.Addr())
	adm, _ := newAdmin(t, srv)
	createTopic(t, adm, "exists", 1, nil)
	createTopic(t, adm, "a.b", 1, nil)

	str := kmsg.StringPtr
	type tc struct {
		name       string
		partitions int32
		rf         int16
		configs    map[string]*string
		want       int16
	}
	cases := []tc{
		{"ok", 2, 1, map[string]*string{"retention.ms": str("1000"), "cleanup.policy": str("delete")}, 0},
		{"defaults", -1, -1, nil, 0},
		{"exists", 1, 1, nil, kerr.TopicAlreadyExists.Code},
		{"", 1, 1, nil, kerr.InvalidTopicException.Code},
		{".", 1, 1, nil, kerr.InvalidTopicException.Code},
		{"..", 1, 1, nil, kerr.InvalidTopicException.Code},
		{"has space", 1, 1, nil, kerr.InvalidTopicException.Code},
		{"slash/y", 1, 1, nil, kerr.InvalidTopicException.Code},
		{strings.Repeat("x", 250), 1, 1, nil, kerr.InvalidTopicException.Code},
		{"a_b", 1, 1, nil, kerr.InvalidTopicException.Code}, // collides with a.b
		{"zero", 0, 1, nil, kerr.InvalidPartitions.Code},
		{"neg", -5, 1, nil, kerr.InvalidPartitions.Code},
		{"huge", 1_000_000, 1, nil, kerr.InvalidPartitions.Code},
		{"rf3", 1, 3, nil, kerr.InvalidReplicationFactor.Code},
		{"badcfg", 1, 1, map[string]*string{"retention.ms": str("soon")}, kerr.InvalidConfig.Code},
		{"unkcfg", 1, 1, map[string]*string{"no.such.config": str("1")}, kerr.InvalidConfig.Code},
		{"compact", 1, 1, map[string]*string{"cleanup.policy": str("compact")}, kerr.InvalidConfig.Code},
		{"ts", 1, 1, map[string]*string{"message.timestamp.type": str("Whenever")}, kerr.InvalidConfig.Code},
	}
	for _, validateOnly := range []bool{true, false} {
		req := kmsg.NewPtrCreateTopicsRequest()
		req.Version = 7
		req.ValidateOnly = validateOnly
		for _, c := range cases {
			rt := kmsg.NewCreateTopicsRequestTopic()
			rt.Topic, rt.NumPartitions, rt.ReplicationFactor = c.name, c.partitions, c.rf
			for k, v := range c.configs {
				cfg := kmsg.NewCreateTopicsRequestTopicConfig()
				cfg.Name, cfg.Value = k, v
				rt.Configs = append(rt.Configs, cfg)
			}
			req.Topics = append(req.Topics, rt)
		}
		// Listed twice: INVALID_REQUEST for both.
		dup := kmsg.NewCreateTopicsRequestTopic()
		dup.Topic, dup.NumPartitions, dup.ReplicationFactor = "dup", 1, 1
		req.Topics = append(req.Topics, dup, dup)
		resp := rc.roundTrip(req).(*kmsg.CreateTopicsResponse)
		for i, c := range cases {
			st := resp.Topics[i]
			if st.Topic != c.name || st.ErrorCode != c.want {
				t.Errorf("validateOnly=%v %q: %s, want %s (%v)", validateOnly, c.name, errName(st.ErrorCode), errName(c.want), st.ErrorMessage)
			}
			if c.want != 0 && c.want != kerr.TopicAlreadyExists.Code && st.ErrorMessage == nil {
				t.Errorf("%q: no error message", c.name)
			}
		}
		if ok := resp.Topics[0]; ok.NumPartitions != 2 || ok.ReplicationFactor != 1 {
			t.Errorf("ok: partitions %d rf %d", ok.NumPartitions, ok.ReplicationFactor)
		}
		for _, st := range resp.Topics[len(cases):] {
			if st.ErrorCode != kerr.InvalidRequest.Code {
				t.Errorf("duplicate: %s", errName(st.ErrorCode))
			}
		}
		topics := rawTopics(t, srv.Addr())
		_, okExists := topics["ok"]
		_, defExists := topics["defaults"]
		if validateOnly && (okExists || defExists) {
			t.Fatalf("validate-only created topics: %v", topics)
		}
		if !validateOnly {
			if topics["ok"] != 2 || topics["defaults"] != 1 || len(topics) != 4 {
				t.Fatalf("topics after create: %v, want exists:1 a.b:1 ok:2 defaults:1", topics)
			}
		}
	}
}

func TestDeleteTopics(t *testing.T) {
	srv := spooltest.Start(t)
	adm, cl := newAdmin(t, srv)
	createTopic(t, adm, "gone", 2, nil)
	produceSync(t, cl, &kgo.Record{Topic: "gone", Value: []byte("old")})
	ctx := testCtx(t)
	rc := dialRaw(t, srv.Addr())
	id := topicID(t, rc, "gone")
	resp, err := adm.DeleteTopics(ctx, "gone", "never-was")
	if err != nil {
		t.Fatal(err)
	}
	if r := resp["gone"]; r.Err != nil {
		t.Fatalf("delete gone: %v", r.Err)
	}
	if r := resp["never-was"]; r.Err != kerr.UnknownTopicOrPartition {
		t.Fatalf("delete unknown: %v", r.Err)
	}
	// By ID (v6): the old ID is unknown now.
	req := kmsg.NewPtrDeleteTopicsRequest()
	req.Version = 6
	rt := kmsg.NewDeleteTopicsRequestTopic()
	rt.TopicID = id
	req.Topics = append(req.Topics, rt)
	if r := rc.roundTrip(req).(*kmsg.DeleteTopicsResponse); r.Topics[0].ErrorCode != kerr.UnknownTopicID.Code {
		t.Fatalf("delete by stale ID: %s", errName(r.Topics[0].ErrorCode))
	}
	// Recreated under the same name, it starts empty with a new ID.
	createTopic(t, adm, "gone", 1, nil)
	end, _ := adm.ListEndOffsets(ctx, "gone")
	if o, _ := end.Lookup("gone", 0); o.Offset != 0 {
		t.Fatalf("recreated topic end offset %d, want 0", o.Offset)
	}
	newID := topicID(t, rc, "gone")
	if newID == id {
		t.Fatalf("recreated topic kept its old ID %v", id)
	}
	// Delete by ID works.
	req.Topics[0].TopicID = newID
	if r := rc.roundTrip(req).(*kmsg.DeleteTopicsResponse); r.Topics[0].ErrorCode != 0 || r.Topics[0].Topic == nil || *r.Topics[0].Topic != "gone" {
		t.Fatalf("delete by ID: %s", errName(r.Topics[0].ErrorCode))
	}
}

func TestCreatePartitions(t *testing.T) {
	srv := spooltest.Start(t)
	adm, cl := newAdmin(t, srv)
	createTopic(t, adm, "grow", 1, nil)
	ctx := testCtx(t)
	if r, err := adm.UpdatePartitions(ctx, 3, "grow"); err != nil || r["grow"].Err != nil {
		t.Fatalf("grow to 3: %v %v", err, r["grow"].Err)
	}
	for _, c := range []struct {
		n    int
		name string
		want error
	}{
		{2, "grow", kerr.InvalidPartitions},
		{3, "grow", kerr.InvalidPartitions},
		{20000, "grow", kerr.InvalidPartitions},
		{5, "nope", kerr.UnknownTopicOrPartition},
	} {
		r, err := adm.UpdatePartitions(ctx, c.n, c.name)
		if err != nil {
			t.Fatal(err)
		}
		if got := r[c.name].Err; got != c.want {
			t.Errorf("%s to %d: %v, want %v", c.name, c.n, got, c.want)
		}
	}
	// Validate only changes nothing.
	if r, err := adm.ValidateUpdatePartitions(ctx, 8, "grow"); err != nil || r["grow"].Err != nil {
		t.Fatalf("validate grow to 8: %v %v", err, r["grow"].Err)
	}
	if n := rawTopics(t, srv.Addr())["grow"]; n != 3 {
		t.Fatalf("%d partitions, want 3", n)
	}
	produceSync(t, cl, &kgo.Record{Topic: "grow", Partition: 2, Value: []byte("p2")})
}

func TestConfigs(t *testing.T) {
	srv := spooltest.Start(t)
	adm, _ := newAdmin(t, srv)
	createTopic(t, adm, "cfg", 1, map[string]*string{"retention.ms": kmsg.StringPtr("60000")})
	ctx := testCtx(t)
	describe := func() map[string]kadm.Config {
		t.Helper()
		rcs, err := adm.DescribeTopicConfigs(ctx, "cfg")
		if err != nil {
			t.Fatal(err)
		}
		rc, err := rcs.On("cfg", nil)
		if err != nil || rc.Err != nil {
			t.Fatalf("describe: %v %v", err, rc.Err)
		}
		out := map[string]kadm.Config{}
		for _, c := range rc.Configs {
			out[c.Key] = c
		}
		return out
	}
	got := describe()
	for _, k := range []string{"retention.ms", "retention.bytes", "segment.bytes", "segment.ms", "max.message.bytes", "message.timestamp.type", "cleanup.policy"} {
		if _, ok := got[k]; !ok {
			t.Errorf("config %s not described", k)
		}
	}
	if c := got["retention.ms"]; val(c) != "60000" || c.Source != kmsg.ConfigSourceDynamicTopicConfig {
		t.Errorf("retention.ms: %q source %v", val(c), c.Source)
	}
	if c := got["cleanup.policy"]; val(c) != "delete" || c.Source != kmsg.ConfigSourceDefaultConfig {
		t.Errorf("cleanup.policy: %q source %v", val(c), c.Source)
	}

	// Incremental: set one, delete one.
	r, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{
		{Op: kadm.SetConfig, Name: "max.message.bytes", Value: kmsg.StringPtr("5000")},
		{Op: kadm.DeleteConfig, Name: "retention.ms"},
	}, "cfg")
	if err != nil || r[0].Err != nil {
		t.Fatalf("alter: %v %v", err, r)
	}
	got = describe()
	if val(got["max.message.bytes"]) != "5000" || got["retention.ms"].Source != kmsg.ConfigSourceDefaultConfig {
		t.Fatalf("after alter: max.message.bytes %q, retention.ms source %v", val(got["max.message.bytes"]), got["retention.ms"].Source)
	}
	// The new max.message.bytes applies to produce.
	rc := dialRaw(t, srv.Addr())
	if sp := produceRaw(t, rc, "cfg", 0, makeBatch(1, strings.Repeat("x", 6000))); sp.ErrorCode != kerr.MessageTooLarge.Code {
		t.Fatalf("produce over altered max.message.bytes: %s", errName(sp.ErrorCode))
	}

	// Invalid alterations change nothing.
	for _, bad := range []kadm.AlterConfig{
		{Op: kadm.SetConfig, Name: "segment.bytes", Value: kmsg.StringPtr("-3")},
		{Op: kadm.SetConfig, Name: "cleanup.policy", Value: kmsg.StringPtr("compact")},
		{Op: kadm.SetConfig, Name: "unknown.thing", Value: kmsg.StringPtr("1")},
		{Op: kadm.AppendConfig, Name: "cleanup.policy", Value: kmsg.StringPtr("compact")},
		{Op: kadm.AppendConfig, Name: "retention.ms", Value: kmsg.StringPtr("1")},
		{Op: kadm.SubtractConfig, Name: "cleanup.policy", Value: kmsg.StringPtr("delete")},
		{Op: kadm.SetConfig, Name: "segment.bytes", Value: kmsg.StringPtr("14")},
	} {
		r, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{bad}, "cfg")
		if err != nil {
			t.Fatal(err)
		}
		if r[0].Err != kerr.InvalidConfig {
			t.Errorf("alter %s %s: %v, want INVALID_CONFIG", bad.Name, *bad.Value, r[0].Err)
		}
	}
	if r, _ := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: "retention.ms", Value: kmsg.StringPtr("1")}}, "nope"); r[0].Err != kerr.UnknownTopicOrPartition {
		t.Errorf("alter unknown topic: %v", r[0].Err)
	}
	// Validate-only changes nothing.
	if r, _ := adm.ValidateAlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: "segment.ms", Value: kmsg.StringPtr("1234")}}, "cfg"); r[0].Err != nil {
		t.Errorf("validate alter: %v", r[0].Err)
	}
	if got := describe(); got["segment.ms"].Source != kmsg.ConfigSourceDefaultConfig || val(got["max.message.bytes"]) != "5000" {
		t.Fatalf("after invalid/validate-only alters: segment.ms %v max.message.bytes %q", got["segment.ms"].Source, val(got["max.message.bytes"]))
	}

	// Legacy AlterConfigs replaces the whole set.
	if r, err := adm.AlterTopicConfigsState(ctx, []kadm.AlterConfig{{Name: "segment.ms", Value: kmsg.StringPtr("1234")}}, "cfg"); err != nil || r[0].Err != nil {
		t.Fatalf("alter state: %v %v", err, r)
	}
	if got := describe(); val(got["segment.ms"]) != "1234" || got["max.message.bytes"].Source != kmsg.ConfigSourceDefaultConfig {
		t.Fatalf("after AlterConfigs: segment.ms %q, max.message.bytes source %v", val(got["segment.ms"]), got["max.message.bytes"].Source)
	}

	// Broker configs: the flags are read-only, the topic defaults alterable.
	bcs, err := adm.DescribeBrokerConfigs(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	bc, err := bcs.On("0", nil)
	if err != nil || bc.Err != nil || len(bc.Configs) == 0 {
		t.Fatalf("broker configs: %v %v %d", err, bc.Err, len(bc.Configs))
	}
	for _, c := range bc.Configs {
		_, dynamic := map[string]bool{"log.retention.ms": true, "message.max.bytes": true, "log.segment.bytes": true}[c.Key]
		switch {
		case c.Key == "num.partitions" && c.Source != kmsg.ConfigSourceStaticBrokerConfig:
			t.Errorf("broker config %s: source %v", c.Key, c.Source)
		case dynamic && c.Source != kmsg.ConfigSourceDefaultConfig:
			t.Errorf("broker config %s: source %v", c.Key, c.Source)
		}
	}
	if r, err := adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{{Name: "num.partitions", Value: kmsg.StringPtr("3")}}, 0); err != nil || r[0].Err != kerr.InvalidConfig {
		t.Errorf("alter broker config: %v %v", err, r)
	}
	if rcs, err := adm.DescribeTopicConfigs(ctx, "nope"); err != nil || rcs[0].Err != kerr.UnknownTopicOrPartition {
		t.Errorf("describe unknown topic: %v %v", err, rcs)
	}
}

func TestDeleteRecords(t *testing.T) {
	srv := spooltest.Start(t)
	adm, cl := newAdmin(t, srv)
	createTopic(t, adm, "dr", 1, nil)
	for range 10 {
		produceSync(t, cl, &kgo.Record{Topic: "dr", Value: []byte("v")})
	}
	ctx := testCtx(t)
	offs := kadm.Offsets{}
	offs.AddOffset("dr", 0, 4, -1)
	r, err := adm.DeleteRecords(ctx, offs)
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := r.Lookup("dr", 0); d.Err != nil || d.LowWatermark != 4 {
		t.Fatalf("delete before 4: %v low %d", d.Err, d.LowWatermark)
	}
	start, _ := adm.ListStartOffsets(ctx, "dr")
	if o, _ := start.Lookup("dr", 0); o.Offset != 4 {
		t.Fatalf("start offset %d, want 4", o.Offset)
	}
	// Fetching below the new start is out of range.
	rc := dialRaw(t, srv.Addr())
	req := kmsg.NewPtrFetchRequest()
	req.Version = 12
	req.MaxBytes, req.SessionEpoch = 1<<20, -1
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = "dr"
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.FetchOffset, rp.PartitionMaxBytes = 1, 1<<20
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	if p := rc.roundTrip(req).(*kmsg.FetchResponse).Topics[0].Partitions[0]; p.ErrorCode != kerr.OffsetOutOfRange.Code || p.LogStartOffset != 4 {
		t.Fatalf("fetch below start: %s start %d", errName(p.ErrorCode), p.LogStartOffset)
	}
	offs = kadm.Offsets{}
	offs.AddOffset("dr", 0, 11, -1)
	r, _ = adm.DeleteRecords(ctx, offs)
	if d, _ := r.Lookup("dr", 0); d.Err != kerr.OffsetOutOfRange {
		t.Fatalf("delete beyond high watermark: %v", d.Err)
	}
	offs = kadm.Offsets{}
	offs.AddOffset("dr", 0, -1, -1)
	r, _ = adm.DeleteRecords(ctx, offs)
	if d, _ := r.Lookup("dr", 0); d.Err != nil || d.LowWatermark != 10 {
		t.Fatalf("delete to high watermark: %v low %d", d.Err, d.LowWatermark)
	}
	dr := kmsg.NewPtrDeleteRecordsRequest()
	dr.Version = 2
	drt := kmsg.NewDeleteRecordsRequestTopic()
	drt.Topic = "nope"
	drp := kmsg.NewDeleteRecordsRequestTopicPartition()
	drp.Offset = 1
	drt.Partitions = append(drt.Partitions, drp)
	dr.Topics = append(dr.Topics, drt)
	if p := rc.roundTrip(dr).(*kmsg.DeleteRecordsResponse).Topics[0].Partitions[0]; p.ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("delete unknown topic: %s", errName(p.ErrorCode))
	}
}

func TestDescribeClusterAndLogDirs(t *testing.T) {
	srv := spooltest.Start(t)
	adm, cl := newAdmin(t, srv)
	createTopic(t, adm, "ld", 2, nil)
	produceSync(t, cl, &kgo.Record{Topic: "ld", Partition: 1, Value: []byte("some bytes")})
	ctx := testCtx(t)
	meta, err := adm.BrokerMetadata(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if meta.Cluster != srv.Broker().ClusterID() || meta.Controller != 0 || len(meta.Brokers) != 1 {
		t.Fatalf("cluster %q controller %d brokers %v", meta.Cluster, meta.Controller, meta.Brokers)
	}
	req := kmsg.NewPtrDescribeClusterRequest()
	req.Version = 1
	req.EndpointType = 1
	r := dialRaw(t, srv.Addr()).roundTrip(req).(*kmsg.DescribeClusterResponse)
	if r.ErrorCode != 0 || r.ClusterID != srv.Broker().ClusterID() || len(r.Brokers) != 1 || r.Brokers[0].Port == 0 {
		t.Fatalf("DescribeCluster: %+v", r)
	}

	dirs, err := adm.DescribeAllLogDirs(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	var sizes = map[int32]int64{}
	dirs.Each(func(d kadm.DescribedLogDir) {
		if d.Err != nil {
			t.Errorf("dir %s: %v", d.Dir, d.Err)
		}
		d.Topics.Each(func(p kadm.DescribedLogDirPartition) {
			if p.Topic == "ld" {
				sizes[p.Partition] = p.Size
			}
		})
	})
	if len(sizes) != 2 || sizes[1] <= sizes[0] || sizes[1] == 0 {
		t.Fatalf("log dir sizes %v: want both partitions, partition 1 non-empty", sizes)
	}
}

func val(c kadm.Config) string {
	if c.Value == nil {
		return ""
	}
	return *c.Value
}

// topicID asks for a topic's ID with an uncached Metadata request.
func topicID(t *testing.T, rc *rawConn, name string) [16]byte {
	t.Helper()
	md := kmsg.NewPtrMetadataRequest()
	md.Version = 12
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(name)
	md.Topics = append(md.Topics, rt)
	r := rc.roundTrip(md).(*kmsg.MetadataResponse)
	if r.Topics[0].ErrorCode != 0 {
		t.Fatalf("metadata %s: %s", name, errName(r.Topics[0].ErrorCode))
	}
	return r.Topics[0].TopicID
}
