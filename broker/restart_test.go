package broker_test

import (
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/spoolmq/spool/spooltest"
)

// TestRestartKeepsTopicsDataAndConfigs stops the broker cleanly and starts a
// new one on the same data directory: topics (with IDs, partition counts and
// configs), records, deleted records and deleted topics are as they were.
func TestRestartKeepsTopicsDataAndConfigs(t *testing.T) {
	srv := spooltest.Start(t)
	adm, cl := newAdmin(t, srv)
	createTopic(t, adm, "keep", 3, map[string]*string{"retention.ms": kmsg.StringPtr("86400000"), "message.timestamp.type": kmsg.StringPtr("LogAppendTime")})
	createTopic(t, adm, "drop", 1, nil)
	ctx := testCtx(t)
	if r, err := adm.UpdatePartitions(ctx, 4, "keep"); err != nil || r["keep"].Err != nil {
		t.Fatalf("grow: %v %v", err, r)
	}
	if r, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: "max.message.bytes", Value: kmsg.StringPtr("65536")}}, "keep"); err != nil || r[0].Err != nil {
		t.Fatalf("alter: %v %v", err, r)
	}
	var rs []*kgo.Record
	for i := range 40 {
		rs = append(rs, &kgo.Record{Topic: "keep", Partition: int32(i % 4), Value: fmt.Appendf(nil, "r%d", i)})
	}
	produceSync(t, cl, rs...)
	offs := kadm.Offsets{}
	offs.AddOffset("keep", 0, 3, -1)
	if _, err := adm.DeleteRecords(ctx, offs); err != nil {
		t.Fatal(err)
	}
	if _, err := adm.DeleteTopics(ctx, "drop"); err != nil {
		t.Fatal(err)
	}
	rc := dialRaw(t, srv.Addr())
	id := topicID(t, rc, "keep")
	clusterID := srv.Broker().ClusterID()
	addr := srv.Addr()

	srv.Restart(t)
	if srv.Addr() != addr {
		t.Logf("port %s was taken; restarted on %s", addr, srv.Addr())
	}
	if got := srv.Broker().ClusterID(); got != clusterID {
		t.Fatalf("cluster ID %q after restart, want %q", got, clusterID)
	}
	topics := rawTopics(t, srv.Addr())
	if len(topics) != 1 || topics["keep"] != 4 {
		t.Fatalf("topics after restart: %v, want keep:4 only", topics)
	}
	if got := topicID(t, dialRaw(t, srv.Addr()), "keep"); got != id {
		t.Fatalf("topic ID changed across restart")
	}
	adm2, _ := newAdmin(t, srv)
	rcs, err := adm2.DescribeTopicConfigs(testCtx(t), "keep")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"retention.ms": "86400000", "message.timestamp.type": "LogAppendTime", "max.message.bytes": "65536"}
	for _, c := range rcs[0].Configs {
		if w, ok := want[c.Key]; ok {
			if val(c) != w || c.Source != kmsg.ConfigSourceDynamicTopicConfig {
				t.Errorf("config %s after restart: %q (source %v), want %q", c.Key, val(c), c.Source, w)
			}
			delete(want, c.Key)
		}
	}
	if len(want) != 0 {
		t.Errorf("configs missing after restart: %v", want)
	}
	start, _ := adm2.ListStartOffsets(testCtx(t), "keep")
	if o, _ := start.Lookup("keep", 0); o.Offset != 3 {
		t.Errorf("log start offset of keep/0 after restart: %d, want 3", o.Offset)
	}
	got := consumeN(t, srv, "keep", 37)
	seen := map[string]bool{}
	for _, r := range got {
		seen[string(r.Value)] = true
		if r.Attrs.TimestampType() != 1 {
			t.Fatalf("record %q lost its LogAppendTime stamp", r.Value)
		}
	}
	for i := range 40 {
		deleted := i%4 == 0 && i/4 < 3
		if v := fmt.Sprintf("r%d", i); seen[v] == deleted {
			t.Errorf("record %s: present %v after restart, deleted-records %v", v, seen[v], deleted)
		}
	}
	// The restarted broker takes new writes after the old ones.
	cl2 := newClient(t, srv)
	produceSync(t, cl2, &kgo.Record{Topic: "keep", Partition: 1, Value: []byte("after")})
	end, _ := adm2.ListEndOffsets(testCtx(t), "keep")
	if o, _ := end.Lookup("keep", 1); o.Offset != 11 {
		t.Fatalf("end offset of keep/1: %d, want 11", o.Offset)
	}
}
