package group

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// These tests drive the coordinator directly with kmsg requests inside a
// synctest bubble, so session, rebalance and retention timers run on the
// bubble's fake clock: hours pass instantly and exactly.

// harness is a started coordinator in a bubble.
type harness struct {
	t   *testing.T
	c   *Coordinator
	ctx context.Context
}

// start opens a coordinator on dir; call it inside synctest.Test. It is
// closed when the bubble's test ends.
func start(t *testing.T, cfg Config) *harness {
	t.Helper()
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return &harness{t: t, c: c, ctx: context.Background()}
}

func codeName(code int16) string {
	if code == 0 {
		return "none"
	}
	return kerr.ErrorForCode(code).Error()
}

func (h *harness) expect(what string, got, want int16) {
	h.t.Helper()
	if got != want {
		h.t.Fatalf("%s: %s, want %s", what, codeName(got), codeName(want))
	}
}

// consumerMeta is consumer-protocol member metadata subscribing to topics.
func consumerMeta(topics ...string) []byte {
	m := kmsg.NewConsumerMemberMetadata()
	m.Topics = topics
	return m.AppendTo(nil)
}

// joinRequest is a JoinGroup v5 of a consumer subscribing to topic "t",
// with a 30s session and a 5s rebalance timeout.
func joinRequest(group, memberID string) *kmsg.JoinGroupRequest {
	req := kmsg.NewPtrJoinGroupRequest()
	req.Version, req.Group, req.MemberID = 5, group, memberID
	req.SessionTimeoutMillis, req.RebalanceTimeoutMillis = 30000, 5000
	req.ProtocolType = "consumer"
	p := kmsg.NewJoinGroupRequestProtocol()
	p.Name, p.Metadata = "range", consumerMeta("t")
	req.Protocols = append(req.Protocols, p)
	return req
}

// newMemberID does the KIP-394 first step: a JoinGroup without a member ID
// gets MEMBER_ID_REQUIRED and the ID to join with.
func (h *harness) newMemberID(group string) string {
	h.t.Helper()
	r := h.c.JoinGroup(h.ctx, Client{ID: "cl"}, joinRequest(group, ""))
	h.expect("first JoinGroup", r.ErrorCode, kerr.MemberIDRequired.Code)
	if r.MemberID == "" {
		h.t.Fatal("MEMBER_ID_REQUIRED without a member ID")
	}
	return r.MemberID
}

// joinAsync sends a JoinGroup for memberID, which waits for the rebalance,
// and returns where its response arrives; synctest.Wait lets it reach the
// coordinator.
func (h *harness) joinAsync(req *kmsg.JoinGroupRequest) <-chan *kmsg.JoinGroupResponse {
	ch := make(chan *kmsg.JoinGroupResponse, 1)
	go func() { ch <- h.c.JoinGroup(h.ctx, Client{ID: "cl"}, req) }()
	synctest.Wait()
	return ch
}

// waiting asserts that a JoinGroup or SyncGroup is still blocked.
func waiting[T any](h *harness, what string, ch <-chan T) {
	h.t.Helper()
	synctest.Wait()
	select {
	case r := <-ch:
		h.t.Fatalf("%s answered (%+v), want it still waiting for the rebalance", what, r)
	default:
	}
}

// answered returns a response that must already be there.
func answered[T any](h *harness, what string, ch <-chan T) T {
	h.t.Helper()
	synctest.Wait()
	select {
	case r := <-ch:
		return r
	default:
		h.t.Fatalf("%s still waiting, want it answered", what)
		panic("unreachable")
	}
}

func (h *harness) syncAsync(group, memberID string, gen int32, assign map[string]string) <-chan *kmsg.SyncGroupResponse {
	req := kmsg.NewPtrSyncGroupRequest()
	req.Version, req.Group, req.MemberID, req.Generation = 3, group, memberID, gen
	for id, a := range assign {
		ga := kmsg.NewSyncGroupRequestGroupAssignment()
		ga.MemberID, ga.MemberAssignment = id, []byte(a)
		req.GroupAssignment = append(req.GroupAssignment, ga)
	}
	ch := make(chan *kmsg.SyncGroupResponse, 1)
	go func() { ch <- h.c.SyncGroup(h.ctx, req) }()
	synctest.Wait()
	return ch
}

// stableOne makes a new member the only one of a new Stable group and
// returns its member ID and generation.
func (h *harness) stableOne(group string) (string, int32) {
	h.t.Helper()
	id := h.newMemberID(group)
	jr := answered(h, "JoinGroup of the only member", h.joinAsync(joinRequest(group, id)))
	h.expect("JoinGroup of the only member", jr.ErrorCode, 0)
	sr := answered(h, "leader SyncGroup", h.syncAsync(group, id, jr.Generation, map[string]string{id: "all"}))
	h.expect("leader SyncGroup", sr.ErrorCode, 0)
	h.expectState(group, "Stable")
	return id, jr.Generation
}

func (h *harness) heartbeat(group, memberID string, gen int32) int16 {
	req := kmsg.NewPtrHeartbeatRequest()
	req.Version, req.Group, req.MemberID, req.Generation = 3, group, memberID, gen
	return h.c.Heartbeat(h.ctx, req).ErrorCode
}

func (h *harness) leave(group, memberID string) int16 {
	req := kmsg.NewPtrLeaveGroupRequest()
	req.Version, req.Group, req.MemberID = 1, group, memberID
	return h.c.LeaveGroup(h.ctx, req).ErrorCode
}

// commit commits offset for topic/partition as memberID in gen and returns
// the partition's error code.
func (h *harness) commit(group, memberID string, gen int32, topic string, partition int32, offset int64) int16 {
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Version, req.Group, req.MemberID, req.Generation = 7, group, memberID, gen
	rt := kmsg.NewOffsetCommitRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewOffsetCommitRequestTopicPartition()
	rp.Partition, rp.Offset = partition, offset
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp := h.c.OffsetCommit(h.ctx, req)
	return resp.Topics[0].Partitions[0].ErrorCode
}

// fetched returns the committed offset of topic/partition (OffsetFetch v7),
// failing on any error.
func (h *harness) fetched(group, topic string, partition int32) int64 {
	h.t.Helper()
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Version, req.Group = 7, group
	rt := kmsg.NewOffsetFetchRequestTopic()
	rt.Topic, rt.Partitions = topic, []int32{partition}
	req.Topics = append(req.Topics, rt)
	resp := h.c.OffsetFetch(h.ctx, req)
	if resp.ErrorCode != 0 || len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		h.t.Fatalf("OffsetFetch %s %s/%d: %s, %+v", group, topic, partition, codeName(resp.ErrorCode), resp.Topics)
	}
	p := resp.Topics[0].Partitions[0]
	if p.ErrorCode != 0 {
		h.t.Fatalf("OffsetFetch %s %s/%d: partition error %s", group, topic, partition, codeName(p.ErrorCode))
	}
	return p.Offset
}

func (h *harness) state(group string) string {
	req := kmsg.NewPtrDescribeGroupsRequest()
	req.Groups = []string{group}
	return h.c.DescribeGroups(h.ctx, req).Groups[0].State
}

func (h *harness) expectState(group, want string) {
	h.t.Helper()
	if got := h.state(group); got != want {
		h.t.Fatalf("group %s state %s, want %s", group, got, want)
	}
}

// TestJoinMemberIDRequired: a v4+ JoinGroup without a member ID gets
// MEMBER_ID_REQUIRED with an ID; joining with it completes the rebalance
// (generation 1, the member leads); an ID never handed out, or one whose
// holder did not come back within its session timeout, is unknown.
func TestJoinMemberIDRequired(t *testing.T) {
	dir := t.TempDir()
	synctest.Test(t, func(t *testing.T) {
		h := start(t, Config{Dir: dir})
		id := h.newMemberID("g")
		if got := h.state("g"); got != "Empty" {
			t.Fatalf("state after MEMBER_ID_REQUIRED: %s, want Empty (no member yet)", got)
		}
		jr := answered(h, "JoinGroup with the ID", h.joinAsync(joinRequest("g", id)))
		h.expect("JoinGroup with the ID", jr.ErrorCode, 0)
		if jr.MemberID != id || jr.LeaderID != id || jr.Generation != 1 || len(jr.Members) != 1 || jr.Members[0].MemberID != id {
			t.Fatalf("JoinGroup: member %q leader %q generation %d members %+v; want %q leading generation 1 alone", jr.MemberID, jr.LeaderID, jr.Generation, jr.Members, id)
		}
		if jr.Protocol == nil || *jr.Protocol != "range" {
			t.Fatalf("protocol %v, want range", jr.Protocol)
		}
		h.expectState("g", "CompletingRebalance")

		r := h.c.JoinGroup(h.ctx, Client{ID: "cl"}, joinRequest("g", "made-up"))
		h.expect("JoinGroup with an ID never handed out", r.ErrorCode, kerr.UnknownMemberID.Code)

		// An ID handed out but not used within the session timeout (30s)
		// is forgotten.
		late := h.newMemberID("g")
		time.Sleep(31 * time.Second)
		synctest.Wait()
		r = h.c.JoinGroup(h.ctx, Client{ID: "cl"}, joinRequest("g", late))
		h.expect("JoinGroup with an expired pending ID", r.ErrorCode, kerr.UnknownMemberID.Code)
	})
}

// TestSecondMemberBumpsGeneration: a second member joining a Stable group
// starts a rebalance: the first member's heartbeat says
// REBALANCE_IN_PROGRESS, the new member waits until the first rejoins, and
// both get generation 2 with the same leader; the old generation is then
// ILLEGAL_GENERATION; the follower's SyncGroup waits for the leader's
// assignment.
func TestSecondMemberBumpsGeneration(t *testing.T) {
	dir := t.TempDir()
	synctest.Test(t, func(t *testing.T) {
		h := start(t, Config{Dir: dir})
		a, gen1 := h.stableOne("g")
		b := h.newMemberID("g")
		bJoin := h.joinAsync(joinRequest("g", b))
		h.expectState("g", "PreparingRebalance")
		waiting(h, "second member's JoinGroup before the first rejoins", bJoin)
		h.expect("heartbeat during the rebalance", h.heartbeat("g", a, gen1), kerr.RebalanceInProgress.Code)

		aJoin := h.joinAsync(joinRequest("g", a))
		ja, jb := answered(h, "leader JoinGroup", aJoin), answered(h, "follower JoinGroup", bJoin)
		h.expect("leader JoinGroup", ja.ErrorCode, 0)
		h.expect("follower JoinGroup", jb.ErrorCode, 0)
		if ja.Generation != gen1+1 || jb.Generation != gen1+1 {
			t.Fatalf("generations %d and %d, want %d", ja.Generation, jb.Generation, gen1+1)
		}
		if ja.LeaderID != a || jb.LeaderID != a {
			t.Fatalf("leaders %q and %q, want the first member %q", ja.LeaderID, jb.LeaderID, a)
		}
		if len(ja.Members) != 2 || ja.Members[0].MemberID != a || ja.Members[1].MemberID != b || len(jb.Members) != 0 {
			t.Fatalf("leader sees %+v, follower %+v; want [a b] for the leader only", ja.Members, jb.Members)
		}
		gen2 := ja.Generation
		h.expect("heartbeat of the old generation", h.heartbeat("g", a, gen1), kerr.IllegalGeneration.Code)

		bSync := h.syncAsync("g", b, gen2, nil)
		waiting(h, "follower SyncGroup before the leader's", bSync)
		sa := answered(h, "leader SyncGroup", h.syncAsync("g", a, gen2, map[string]string{a: "A", b: "B"}))
		sb := answered(h, "follower SyncGroup", bSync)
		if sa.ErrorCode != 0 || sb.ErrorCode != 0 || string(sa.MemberAssignment) != "A" || string(sb.MemberAssignment) != "B" {
			t.Fatalf("SyncGroup: leader %s %q, follower %s %q; want A and B", codeName(sa.ErrorCode), sa.MemberAssignment, codeName(sb.ErrorCode), sb.MemberAssignment)
		}
		h.expectState("g", "Stable")
		h.expect("heartbeat in the new generation", h.heartbeat("g", b, gen2), 0)
	})
}

// TestStaleMemberErrors: Heartbeat, SyncGroup and OffsetCommit from an
// unknown member get UNKNOWN_MEMBER_ID and from a wrong generation
// ILLEGAL_GENERATION; refused commits are not stored.
func TestStaleMemberErrors(t *testing.T) {
	dir := t.TempDir()
	synctest.Test(t, func(t *testing.T) {
		h := start(t, Config{Dir: dir})
		a, gen := h.stableOne("g")
		for _, tc := range []struct {
			member string
			gen    int32
			want   int16
		}{
			{a, gen, 0},
			{a, gen + 1, kerr.IllegalGeneration.Code},
			{a, gen - 1, kerr.IllegalGeneration.Code},
			{"nobody", gen, kerr.UnknownMemberID.Code},
		} {
			h.expect("Heartbeat "+tc.member, h.heartbeat("g", tc.member, tc.gen), tc.want)
			sr := answered(h, "SyncGroup", h.syncAsync("g", tc.member, tc.gen, nil))
			h.expect("SyncGroup "+tc.member, sr.ErrorCode, tc.want)
			h.expect("OffsetCommit "+tc.member, h.commit("g", tc.member, tc.gen, "t", 0, int64(10+tc.gen)), tc.want)
		}
		h.expect("Heartbeat to an unknown group", h.heartbeat("other", a, gen), kerr.UnknownMemberID.Code)
		// Only members commit for a live group.
		h.expect("OffsetCommit without member ID", h.commit("g", "", -1, "t", 0, 99), kerr.UnknownMemberID.Code)
		if got := h.fetched("g", "t", 0); got != int64(10+gen) {
			t.Fatalf("committed offset %d, want %d: a refused commit was stored", got, 10+gen)
		}
	})
}

// TestRebalanceTimeoutRemovesMember: a member that does not rejoin within
// the rebalance timeout is removed; the rebalance completes without it when
// the timeout passes, not before.
func TestRebalanceTimeoutRemovesMember(t *testing.T) {
	dir := t.TempDir()
	synctest.Test(t, func(t *testing.T) {
		h := start(t, Config{Dir: dir})
		a, gen1 := h.stableOne("g") // rebalance timeout 5s
		b := h.newMemberID("g")
		bJoin := h.joinAsync(joinRequest("g", b))
		// a keeps heartbeating (its session stays alive) but never rejoins.
		for range 4 {
			time.Sleep(time.Second)
			h.expect("heartbeat during the rebalance", h.heartbeat("g", a, gen1), kerr.RebalanceInProgress.Code)
		}
		time.Sleep(900 * time.Millisecond)
		waiting(h, "JoinGroup before the rebalance timeout", bJoin)
		time.Sleep(200 * time.Millisecond)
		jb := answered(h, "JoinGroup after the rebalance timeout", bJoin)
		h.expect("JoinGroup after the rebalance timeout", jb.ErrorCode, 0)
		if jb.LeaderID != b || len(jb.Members) != 1 || jb.Members[0].MemberID != b || jb.Generation != gen1+1 {
			t.Fatalf("after the timeout: leader %q members %+v generation %d; want %q alone in generation %d", jb.LeaderID, jb.Members, jb.Generation, b, gen1+1)
		}
		h.expect("heartbeat of the removed member", h.heartbeat("g", a, gen1), kerr.UnknownMemberID.Code)
		h.expect("commit of the removed member", h.commit("g", a, jb.Generation, "t", 0, 1), kerr.UnknownMemberID.Code)
	})
}

// TestLeaveGroupRebalances: a member leaving starts a rebalance that the
// others rejoin without it; the last member leaving empties the group.
func TestLeaveGroupRebalances(t *testing.T) {
	dir := t.TempDir()
	synctest.Test(t, func(t *testing.T) {
		h := start(t, Config{Dir: dir})
		a, _ := h.stableOne("g")
		b := h.newMemberID("g")
		bJoin := h.joinAsync(joinRequest("g", b))
		ja := answered(h, "rejoin", h.joinAsync(joinRequest("g", a)))
		jb := answered(h, "join", bJoin)
		gen := ja.Generation
		bSync := h.syncAsync("g", b, gen, nil)
		answered(h, "leader sync", h.syncAsync("g", a, gen, map[string]string{a: "A", b: "B"}))
		answered(h, "follower sync", bSync)
		h.expectState("g", "Stable")

		h.expect("LeaveGroup", h.leave("g", jb.MemberID), 0)
		h.expectState("g", "PreparingRebalance")
		h.expect("heartbeat of the remaining member", h.heartbeat("g", a, gen), kerr.RebalanceInProgress.Code)
		h.expect("heartbeat of the member that left", h.heartbeat("g", b, gen), kerr.UnknownMemberID.Code)
		ja = answered(h, "rejoin after the leave", h.joinAsync(joinRequest("g", a)))
		if ja.ErrorCode != 0 || ja.Generation != gen+1 || len(ja.Members) != 1 || ja.Members[0].MemberID != a {
			t.Fatalf("rejoin after the leave: %s generation %d members %+v; want generation %d with a alone", codeName(ja.ErrorCode), ja.Generation, ja.Members, gen+1)
		}
		h.expect("LeaveGroup twice", h.leave("g", b), kerr.UnknownMemberID.Code)
		h.expect("last LeaveGroup", h.leave("g", a), 0)
		h.expectState("g", "Empty")
	})
}

// TestOffsetFetchWithoutCommit: OffsetFetch of a partition without a
// commit, or of an unknown group, answers offset -1 and no error (v7 and
// the v8+ multi-group form); a committed partition answers its offset.
func TestOffsetFetchWithoutCommit(t *testing.T) {
	dir := t.TempDir()
	synctest.Test(t, func(t *testing.T) {
		h := start(t, Config{Dir: dir})
		if got := h.fetched("unknown", "t", 0); got != -1 {
			t.Fatalf("unknown group: offset %d, want -1", got)
		}
		h.expect("standalone commit", h.commit("g", "", -1, "t", 0, 42), 0)
		if got := h.fetched("g", "t", 0); got != 42 {
			t.Fatalf("committed partition: offset %d, want 42", got)
		}
		if got := h.fetched("g", "t", 1); got != -1 {
			t.Fatalf("uncommitted partition: offset %d, want -1", got)
		}

		req := kmsg.NewPtrOffsetFetchRequest()
		req.Version = 8
		for _, g := range []string{"g", "unknown"} {
			rg := kmsg.NewOffsetFetchRequestGroup()
			rg.Group = g
			rt := kmsg.NewOffsetFetchRequestGroupTopic()
			rt.Topic, rt.Partitions = "t", []int32{0, 1}
			rg.Topics = append(rg.Topics, rt)
			req.Groups = append(req.Groups, rg)
		}
		resp := h.c.OffsetFetch(h.ctx, req)
		want := map[string][]int64{"g": {42, -1}, "unknown": {-1, -1}}
		if len(resp.Groups) != 2 {
			t.Fatalf("v8: %d groups, want 2", len(resp.Groups))
		}
		for _, g := range resp.Groups {
			if g.ErrorCode != 0 || len(g.Topics) != 1 || len(g.Topics[0].Partitions) != 2 {
				t.Fatalf("v8 group %s: %s %+v", g.Group, codeName(g.ErrorCode), g.Topics)
			}
			for i, p := range g.Topics[0].Partitions {
				if p.ErrorCode != 0 || p.Offset != want[g.Group][i] {
					t.Fatalf("v8 group %s partition %d: offset %d %s, want %d and no error", g.Group, p.Partition, p.Offset, codeName(p.ErrorCode), want[g.Group][i])
				}
			}
		}
	})
}

func deleteGroup(h *harness, group string) int16 {
	req := kmsg.NewPtrDeleteGroupsRequest()
	req.Groups = []string{group}
	return h.c.DeleteGroups(h.ctx, req).Groups[0].ErrorCode
}

// TestDeleteGroups: a group with members is NON_EMPTY_GROUP; an empty one
// is deleted with its offsets, durably (a restarted coordinator does not
// bring them back); deleting it again is GROUP_ID_NOT_FOUND.
func TestDeleteGroups(t *testing.T) {
	dir := t.TempDir()
	synctest.Test(t, func(t *testing.T) {
		h := start(t, Config{Dir: dir})
		a, gen := h.stableOne("g")
		h.expect("commit", h.commit("g", a, gen, "t", 0, 7), 0)
		h.expect("standalone commit", h.commit("keep", "", -1, "t", 0, 3), 0)
		h.expect("DeleteGroups of a live group", deleteGroup(h, "g"), kerr.NonEmptyGroup.Code)
		if got := h.fetched("g", "t", 0); got != 7 {
			t.Fatalf("after refused delete: offset %d, want 7", got)
		}
		h.expect("DeleteGroups of an unknown group", deleteGroup(h, "nope"), kerr.GroupIDNotFound.Code)

		h.expect("leave", h.leave("g", a), 0)
		h.expect("DeleteGroups of the empty group", deleteGroup(h, "g"), 0)
		h.expectState("g", "Dead")
		if got := h.fetched("g", "t", 0); got != -1 {
			t.Fatalf("after delete: offset %d, want -1", got)
		}
		h.expect("DeleteGroups twice", deleteGroup(h, "g"), kerr.GroupIDNotFound.Code)

		if err := h.c.Close(); err != nil {
			t.Fatal(err)
		}
		h = start(t, Config{Dir: dir})
		if got := h.fetched("g", "t", 0); got != -1 {
			t.Fatalf("after restart: deleted group's offset %d came back", got)
		}
		if got := h.fetched("keep", "t", 0); got != 3 {
			t.Fatalf("after restart: other group's offset %d, want 3", got)
		}
	})
}

// TestOffsetDeleteSubscribedTopic: OffsetDelete on a live consumer group
// refuses the topics its members subscribe to (GROUP_SUBSCRIBED_TO_TOPIC)
// and keeps those offsets; it deletes the others.
func TestOffsetDeleteSubscribedTopic(t *testing.T) {
	dir := t.TempDir()
	synctest.Test(t, func(t *testing.T) {
		h := start(t, Config{Dir: dir})
		a, gen := h.stableOne("g") // subscribes to "t"
		h.expect("commit t", h.commit("g", a, gen, "t", 0, 5), 0)
		h.expect("commit old", h.commit("g", a, gen, "old", 0, 9), 0)
		req := kmsg.NewPtrOffsetDeleteRequest()
		req.Group = "g"
		for _, topic := range []string{"t", "old"} {
			rt := kmsg.NewOffsetDeleteRequestTopic()
			rt.Topic = topic
			rp := kmsg.NewOffsetDeleteRequestTopicPartition()
			rt.Partitions = append(rt.Partitions, rp)
			req.Topics = append(req.Topics, rt)
		}
		resp := h.c.OffsetDelete(h.ctx, req)
		h.expect("OffsetDelete", resp.ErrorCode, 0)
		h.expect("OffsetDelete of the subscribed topic", resp.Topics[0].Partitions[0].ErrorCode, kerr.GroupSubscribedToTopic.Code)
		h.expect("OffsetDelete of another topic", resp.Topics[1].Partitions[0].ErrorCode, 0)
		if got := h.fetched("g", "t", 0); got != 5 {
			t.Fatalf("subscribed topic's offset %d after a refused delete, want 5", got)
		}
		if got := h.fetched("g", "old", 0); got != -1 {
			t.Fatalf("deleted offset still %d, want -1", got)
		}
	})
}

// TestOffsetsExpire: offsets.retention. An empty group's offsets (and the
// group) expire the retention after it became empty; a group with a member
// keeps them however old; offsets committed outside group management
// expire one by one, the retention after each commit.
func TestOffsetsExpire(t *testing.T) {
	dir := t.TempDir()
	synctest.Test(t, func(t *testing.T) {
		const retention = time.Hour
		h := start(t, Config{Dir: dir, OffsetsRetention: retention, RetentionCheckInterval: time.Minute})
		gone, gen := h.stableOne("gone")
		h.expect("commit", h.commit("gone", gone, gen, "t", 0, 1), 0)
		live, lgen := h.stableOne("live")
		h.expect("commit", h.commit("live", live, lgen, "t", 0, 2), 0)
		h.expect("standalone commit p0", h.commit("solo", "", -1, "t", 0, 3), 0)

		// Keep the members alive (30s sessions) while the clock runs.
		step := func(d time.Duration, members ...string) {
			for end := time.Now().Add(d); time.Now().Before(end); {
				time.Sleep(20 * time.Second)
				h.expect("heartbeat of the live member", h.heartbeat("live", live, lgen), 0)
				for _, m := range members {
					h.expect("heartbeat of "+m, h.heartbeat("gone", m, gen), 0)
				}
			}
			synctest.Wait()
		}
		step(10*time.Minute, gone)
		h.expect("leave", h.leave("gone", gone), 0) // empty from now on
		h.expect("standalone commit p1", h.commit("solo", "", -1, "t", 1, 4), 0)
		step(retention - 10*time.Minute - time.Minute) // 59m in: nothing expired
		if h.fetched("gone", "t", 0) != 1 || h.fetched("solo", "t", 0) != 3 || h.fetched("solo", "t", 1) != 4 {
			t.Fatal("offsets expired before the retention passed")
		}
		step(3 * time.Minute) // 62m: solo/t/0 is 62m old; the rest younger
		if h.fetched("solo", "t", 0) != -1 {
			t.Fatal("standalone offset committed over the retention ago did not expire")
		}
		if h.fetched("solo", "t", 1) != 4 || h.fetched("gone", "t", 0) != 1 {
			t.Fatal("offsets younger than the retention expired")
		}
		step(10 * time.Minute) // 72m: "gone" is empty for 62m, solo/t/1 62m old
		if got := h.fetched("gone", "t", 0); got != -1 {
			t.Fatalf("empty group's offset %d did not expire", got)
		}
		h.expectState("gone", "Dead")
		if got := h.fetched("solo", "t", 1); got != -1 {
			t.Fatalf("second standalone offset %d did not expire", got)
		}
		step(2 * retention)
		if got := h.fetched("live", "t", 0); got != 2 {
			t.Fatalf("offset of a group with a member: %d, want 2 (never expires)", got)
		}
		h.expectState("live", "Stable")
	})
}
