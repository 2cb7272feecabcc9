package group

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestSessionTimeout: a member that stops heartbeating is removed after its
// session timeout and the group becomes Empty; one that heartbeats stays.
func TestSessionTimeout(t *testing.T) {
	dir := t.TempDir()
	synctest.Test(t, func(t *testing.T) {
		c, err := New(Config{Dir: dir})
		if err != nil {
			t.Fatal(err)
		}
		if err := <-c.Start(); err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		ctx := context.Background()
		join := kmsg.NewPtrJoinGroupRequest()
		join.Version, join.Group, join.SessionTimeoutMillis, join.RebalanceTimeoutMillis = 3, "g", 10000, 10000
		join.ProtocolType = "consumer"
		p := kmsg.NewJoinGroupRequestProtocol()
		p.Name = "range"
		join.Protocols = append(join.Protocols, p)
		jr := c.JoinGroup(ctx, Client{ID: "c"}, join)
		if jr.ErrorCode != 0 {
			t.Fatalf("join: %v", kerr.ErrorForCode(jr.ErrorCode))
		}
		sync := kmsg.NewPtrSyncGroupRequest()
		sync.Group, sync.Generation, sync.MemberID = "g", jr.Generation, jr.MemberID
		if sr := c.SyncGroup(ctx, sync); sr.ErrorCode != 0 {
			t.Fatalf("sync: %v", kerr.ErrorForCode(sr.ErrorCode))
		}
		state := func() string {
			req := kmsg.NewPtrDescribeGroupsRequest()
			req.Groups = []string{"g"}
			return c.DescribeGroups(ctx, req).Groups[0].State
		}
		hb := kmsg.NewPtrHeartbeatRequest()
		hb.Group, hb.Generation, hb.MemberID = "g", jr.Generation, jr.MemberID
		for range 5 { // 5 x 8s > session timeout, but each heartbeat renews it
			time.Sleep(8 * time.Second)
			if r := c.Heartbeat(ctx, hb); r.ErrorCode != 0 {
				t.Fatalf("heartbeat: %v", kerr.ErrorForCode(r.ErrorCode))
			}
		}
		if s := state(); s != "Stable" {
			t.Fatalf("state with heartbeats: %s", s)
		}
		time.Sleep(11 * time.Second)
		synctest.Wait()
		if s := state(); s != "Empty" {
			t.Fatalf("state after the session timeout: %s, want Empty", s)
		}
		if r := c.Heartbeat(ctx, hb); r.ErrorCode != kerr.UnknownMemberID.Code {
			t.Fatalf("heartbeat of an expired member: %v", kerr.ErrorForCode(r.ErrorCode))
		}
	})
}
