package broker_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/spoolmq/spool/spooltest"
)

// groupConsumer consumes in a group and commits synchronously after each
// poll, before allowing a rebalance: every record is processed exactly once
// as long as members leave cleanly.
type groupConsumer struct {
	cl   *kgo.Client
	stop chan struct{}
	done chan struct{}
}

type seenSet struct {
	mu      sync.Mutex
	seen    map[string]int
	n       int
	changed chan struct{} // closed and replaced by every add
}

func (s *seenSet) add(r *kgo.Record) {
	s.mu.Lock()
	s.seen[fmt.Sprintf("%d/%d", r.Partition, r.Offset)]++
	s.n++
	if s.changed != nil {
		close(s.changed)
		s.changed = nil
	}
	s.mu.Unlock()
}

// waitCount waits, on the signal add gives, until n records were seen.
func (s *seenSet) waitCount(t *testing.T, n int) {
	t.Helper()
	timeout := time.After(testTimeout)
	for {
		s.mu.Lock()
		got := s.n
		if s.changed == nil {
			s.changed = make(chan struct{})
		}
		changed := s.changed
		s.mu.Unlock()
		if got >= n {
			return
		}
		select {
		case <-changed:
		case <-timeout:
			t.Fatalf("timed out with %d of %d records seen", got, n)
		}
	}
}

func (s *seenSet) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

func startGroupConsumer(t *testing.T, srv *spooltest.Server, group, topic string, balancer kgo.GroupBalancer, seen *seenSet, extra ...kgo.Opt) *groupConsumer {
	t.Helper()
	opts := append([]kgo.Opt{
		kgo.SeedBrokers(srv.Addr()),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topic),
		kgo.Balancers(balancer),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.HeartbeatInterval(100 * time.Millisecond),
		kgo.SessionTimeout(6 * time.Second),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.OnPartitionsRevoked(func(ctx context.Context, cl *kgo.Client, _ map[string][]int32) {
			if err := cl.CommitUncommittedOffsets(ctx); err != nil {
				t.Errorf("commit on revoke: %v", err)
			}
		}),
	}, extra...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	c := &groupConsumer{cl: cl, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(c.done)
		for {
			select {
			case <-c.stop:
				cl.Close() // leaves the group
				return
			default:
			}
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			fs := cl.PollRecords(ctx, 50)
			cancel()
			fs.EachRecord(seen.add)
			if fs.NumRecords() > 0 {
				if err := cl.CommitUncommittedOffsets(context.Background()); err != nil {
					t.Errorf("commit: %v", err)
				}
			}
			cl.AllowRebalance()
		}
	}()
	return c
}

func (c *groupConsumer) close() {
	close(c.stop)
	<-c.done
}

// waitFor polls cond until it holds or the test timeout passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestGroupMembersJoinAndLeave: members join and leave mid-stream under
// both balancers; every record is processed exactly once.
func TestGroupMembersJoinAndLeave(t *testing.T) {
	for _, bal := range []kgo.GroupBalancer{kgo.CooperativeStickyBalancer(), kgo.RangeBalancer()} {
		t.Run(bal.ProtocolName(), func(t *testing.T) {
			srv := spooltest.Start(t)
			adm, _ := newAdmin(t, srv)
			const topic, parts, total = "orders", 4, 4000
			createTopic(t, adm, topic, parts, nil)
			prod := newClient(t, srv, kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
			produce := func(from, to int) {
				var rs []*kgo.Record
				for i := from; i < to; i++ {
					rs = append(rs, &kgo.Record{Topic: topic, Value: fmt.Appendf(nil, "%d", i)})
				}
				produceSync(t, prod, rs...)
			}
			seen := &seenSet{seen: map[string]int{}}
			produce(0, 1000)
			a := startGroupConsumer(t, srv, "g", topic, bal, seen)
			seen.waitCount(t, 200)
			b := startGroupConsumer(t, srv, "g", topic, bal, seen)
			produce(1000, 2000)
			c := startGroupConsumer(t, srv, "g", topic, bal, seen)
			produce(2000, 3000)
			seen.waitCount(t, 2500)
			a.close()
			produce(3000, 3500)
			b.close()
			produce(3500, total)
			seen.waitCount(t, total)
			c.close()
			seen.mu.Lock()
			defer seen.mu.Unlock()
			if len(seen.seen) != total {
				t.Fatalf("distinct records processed: %d, want %d", len(seen.seen), total)
			}
			for k, n := range seen.seen {
				if n != 1 {
					t.Errorf("record %s processed %d times", k, n)
				}
			}
			// Everything is committed: the group is empty with lag 0.
			lags, err := adm.Lag(testCtx(t), "g")
			if err != nil {
				t.Fatal(err)
			}
			if l := lags["g"]; l.Error() != nil || l.Lag.Total() != 0 || l.State != "Empty" {
				t.Fatalf("group after consumers left: state %s lag %d err %v", l.State, l.Lag.Total(), l.Error())
			}
		})
	}
}

// TestGroupStaticMembership: a static member that restarts within its
// session timeout takes its place back without a rebalance (same
// generation, the other member is not disturbed), and its old incarnation is
// fenced.
func TestGroupStaticMembership(t *testing.T) {
	srv := spooltest.Start(t)
	adm, _ := newAdmin(t, srv)
	createTopic(t, adm, "s", 2, nil)
	rc := dialRaw(t, srv.Addr())
	join := func(instance string) *kmsg.JoinGroupResponse {
		req := kmsg.NewPtrJoinGroupRequest()
		req.Version, req.Group, req.InstanceID = 9, "static", kmsg.StringPtr(instance)
		req.SessionTimeoutMillis, req.RebalanceTimeoutMillis = 30000, 30000
		req.ProtocolType = "consumer"
		p := kmsg.NewJoinGroupRequestProtocol()
		p.Name, p.Metadata = "range", []byte{0}
		req.Protocols = append(req.Protocols, p)
		return rc.roundTrip(req).(*kmsg.JoinGroupResponse)
	}
	sync := func(jr *kmsg.JoinGroupResponse, assign map[string]string) *kmsg.SyncGroupResponse {
		req := kmsg.NewPtrSyncGroupRequest()
		req.Version, req.Group, req.Generation, req.MemberID = 5, "static", jr.Generation, jr.MemberID
		for id, a := range assign {
			ga := kmsg.NewSyncGroupRequestGroupAssignment()
			ga.MemberID, ga.MemberAssignment = id, []byte(a)
			req.GroupAssignment = append(req.GroupAssignment, ga)
		}
		return rc.roundTrip(req).(*kmsg.SyncGroupResponse)
	}
	first := join("i1")
	if first.ErrorCode != 0 || first.LeaderID != first.MemberID || len(first.Members) != 1 {
		t.Fatalf("static join: %s leader %q members %d", errName(first.ErrorCode), first.LeaderID, len(first.Members))
	}
	if s := sync(first, map[string]string{first.MemberID: "A"}); s.ErrorCode != 0 || string(s.MemberAssignment) != "A" {
		t.Fatalf("sync: %s %q", errName(s.ErrorCode), s.MemberAssignment)
	}
	// The instance restarts: new member ID, same generation, no rebalance;
	// as the leader it is told to skip the assignment (v9).
	again := join("i1")
	if again.ErrorCode != 0 || again.MemberID == first.MemberID || again.Generation != first.Generation || !again.SkipAssignment {
		t.Fatalf("static rejoin: %s member %q gen %d (was %d) skip %v", errName(again.ErrorCode), again.MemberID, again.Generation, first.Generation, again.SkipAssignment)
	}
	if s := sync(again, nil); s.ErrorCode != 0 || string(s.MemberAssignment) != "A" {
		t.Fatalf("sync after static rejoin: %s %q, want the old assignment", errName(s.ErrorCode), s.MemberAssignment)
	}
	hb := kmsg.NewPtrHeartbeatRequest()
	hb.Version, hb.Group, hb.Generation, hb.MemberID, hb.InstanceID = 4, "static", first.Generation, first.MemberID, kmsg.StringPtr("i1")
	if resp := rc.roundTrip(hb).(*kmsg.HeartbeatResponse); resp.ErrorCode != kerr.FencedInstanceID.Code {
		t.Fatalf("heartbeat of the replaced incarnation: %s, want FENCED_INSTANCE_ID", errName(resp.ErrorCode))
	}
	// Leaving by instance ID removes the member.
	leave := kmsg.NewPtrLeaveGroupRequest()
	leave.Version, leave.Group = 5, "static"
	lm := kmsg.NewLeaveGroupRequestMember()
	lm.InstanceID = kmsg.StringPtr("i1")
	leave.Members = append(leave.Members, lm)
	if resp := rc.roundTrip(leave).(*kmsg.LeaveGroupResponse); resp.ErrorCode != 0 || resp.Members[0].ErrorCode != 0 {
		t.Fatalf("leave by instance: %s / %s", errName(resp.ErrorCode), errName(resp.Members[0].ErrorCode))
	}
	groups, err := adm.DescribeGroups(testCtx(t), "static")
	if err != nil {
		t.Fatal(err)
	}
	if g := groups["static"]; g.State != "Empty" || len(g.Members) != 0 {
		t.Fatalf("after leave: state %s, %d members", g.State, len(g.Members))
	}
}

// TestGroupStaticConsumerResumes: a franz-go static member restarts and
// continues from its commits without reprocessing.
func TestGroupStaticConsumerResumes(t *testing.T) {
	srv := spooltest.Start(t)
	adm, _ := newAdmin(t, srv)
	createTopic(t, adm, "st", 2, nil)
	prod := newClient(t, srv, kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	for i := range 200 {
		produceSync(t, prod, &kgo.Record{Topic: "st", Value: fmt.Appendf(nil, "%d", i)})
	}
	seen := &seenSet{seen: map[string]int{}}
	c := startGroupConsumer(t, srv, "sg", "st", kgo.CooperativeStickyBalancer(), seen, kgo.InstanceID("inst-1"))
	seen.waitCount(t, 200)
	c.close()
	for i := range 100 {
		produceSync(t, prod, &kgo.Record{Topic: "st", Value: fmt.Appendf(nil, "%d", 200+i)})
	}
	c = startGroupConsumer(t, srv, "sg", "st", kgo.CooperativeStickyBalancer(), seen, kgo.InstanceID("inst-1"))
	seen.waitCount(t, 300)
	c.close()
	if len(seen.seen) != 300 || seen.count() != 300 {
		t.Fatalf("processed %d records, %d distinct; want 300 exactly once", seen.count(), len(seen.seen))
	}
}

// TestOffsetsSurviveRestart: committed offsets and metadata are durable;
// OffsetFetch of a partition without a commit gives -1 and no error.
func TestOffsetsSurviveRestart(t *testing.T) {
	srv := spooltest.Start(t)
	adm, _ := newAdmin(t, srv)
	createTopic(t, adm, "t", 3, nil)
	offs := kadm.Offsets{}
	offs.Add(kadm.Offset{Topic: "t", Partition: 0, At: 42, LeaderEpoch: -1, Metadata: "meta-0"})
	offs.Add(kadm.Offset{Topic: "t", Partition: 2, At: 7, LeaderEpoch: -1})
	resp, err := adm.CommitOffsets(testCtx(t), "g1", offs)
	if err != nil || resp.Error() != nil {
		t.Fatalf("commit: %v %v", err, resp.Error())
	}
	// Unknown partitions are refused.
	bad := kadm.Offsets{}
	bad.Add(kadm.Offset{Topic: "t", Partition: 9, At: 1, LeaderEpoch: -1})
	if resp, err := adm.CommitOffsets(testCtx(t), "g1", bad); err != nil || resp.Error() == nil {
		t.Fatalf("commit to a missing partition: %v %v, want UNKNOWN_TOPIC_OR_PARTITION", err, resp.Error())
	}
	check := func() {
		t.Helper()
		req := kmsg.NewPtrOffsetFetchRequest()
		req.Version, req.Group = 7, "g1"
		rt := kmsg.NewOffsetFetchRequestTopic()
		rt.Topic, rt.Partitions = "t", []int32{0, 1, 2}
		req.Topics = append(req.Topics, rt)
		rc := dialRaw(t, srv.Addr())
		got := rc.roundTrip(req).(*kmsg.OffsetFetchResponse)
		want := map[int32]int64{0: 42, 1: -1, 2: 7}
		if got.ErrorCode != 0 || len(got.Topics) != 1 || len(got.Topics[0].Partitions) != 3 {
			t.Fatalf("offset fetch: %s %+v", errName(got.ErrorCode), got.Topics)
		}
		for _, p := range got.Topics[0].Partitions {
			if p.ErrorCode != 0 || p.Offset != want[p.Partition] {
				t.Errorf("partition %d: offset %d %s, want %d", p.Partition, p.Offset, errName(p.ErrorCode), want[p.Partition])
			}
		}
		if m := *got.Topics[0].Partitions[0].Metadata; m != "meta-0" {
			t.Errorf("metadata %q, want meta-0", m)
		}
	}
	check()
	srv.Restart(t)
	check()
	// Deleting the (empty) group removes its offsets durably.
	adm2, _ := newAdmin(t, srv)
	if dr, err := adm2.DeleteGroups(testCtx(t), "g1"); err != nil || dr["g1"].Err != nil {
		t.Fatalf("delete group: %v %v", err, dr["g1"].Err)
	}
	if dr, err := adm2.DeleteGroups(testCtx(t), "g1"); err != nil || dr["g1"].Err != kerr.GroupIDNotFound {
		t.Fatalf("delete missing group: %v %v, want GROUP_ID_NOT_FOUND", err, dr["g1"].Err)
	}
	srv.Restart(t)
	adm3, _ := newAdmin(t, srv)
	fetched, err := adm3.FetchOffsets(testCtx(t), "g1")
	if err != nil || len(fetched) != 0 {
		t.Fatalf("offsets after delete + restart: %v %v", fetched, err)
	}
}
