package group

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// OffsetCommit serves OffsetCommit v2-9. A commit is answered once it is
// durable. Members of a group commit with their member ID and generation
// (also during a rebalance, so eager consumers can commit what they revoke);
// anyone may commit for a group without members (generation -1, as admin
// tools and standalone consumers do). v2-4's retention time is ignored: the
// broker's OffsetsRetention applies.
func (c *Coordinator) OffsetCommit(ctx context.Context, req *kmsg.OffsetCommitRequest) *kmsg.OffsetCommitResponse {
	resp, code := call(ctx, c, func(reply func(*kmsg.OffsetCommitResponse)) { c.commit(req, reply) })
	if code != 0 {
		resp = commitResponse(req, func(string, int32) int16 { return code })
	}
	return resp
}

func commitResponse(req *kmsg.OffsetCommitRequest, code func(topic string, partition int32) int16) *kmsg.OffsetCommitResponse {
	resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
	for _, t := range req.Topics {
		rt := kmsg.OffsetCommitResponseTopic{Topic: t.Topic}
		for _, p := range t.Partitions {
			rt.Partitions = append(rt.Partitions, kmsg.OffsetCommitResponseTopicPartition{Partition: p.Partition, ErrorCode: code(t.Topic, p.Partition)})
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}

// commitGroupError checks who commits: 0 if the commit may go ahead.
func (c *Coordinator) commitGroupError(g *group, req *kmsg.OffsetCommitRequest) int16 {
	instance := deref(req.InstanceID)
	switch {
	case g.state == stateDead || g.deleting:
		return kerr.CoordinatorNotAvailable.Code
	case req.Generation >= 0 || req.MemberID != "" || instance != "":
		if code := c.checkMember(g, req.MemberID, instance, req.Generation); code != 0 {
			return code
		}
		if g.state == stateCompleting {
			return kerr.RebalanceInProgress.Code
		}
		c.resetSession(g, g.members[req.MemberID]) // a commit is a heartbeat
		return 0
	case g.state != stateEmpty:
		return kerr.UnknownMemberID.Code // only members commit for a live group
	}
	return 0
}

func (c *Coordinator) commit(req *kmsg.OffsetCommitRequest, reply func(*kmsg.OffsetCommitResponse)) {
	fixed := func(code int16) { reply(commitResponse(req, func(string, int32) int16 { return code })) }
	if req.Group == "" {
		fixed(kerr.InvalidGroupID.Code)
		return
	}
	g := c.groups[req.Group]
	if g == nil {
		if req.Generation >= 0 {
			fixed(kerr.IllegalGeneration.Code)
			return
		}
		g = newGroup(req.Group)
		c.groups[req.Group] = g
	}
	if code := c.commitGroupError(g, req); code != 0 {
		fixed(code)
		return
	}
	now := time.Now().UnixMilli()
	codes := make(map[topicPartition]int16)
	var entries []*entry
	for _, t := range req.Topics {
		for _, p := range t.Partitions {
			tp := topicPartition{t.Topic, p.Partition}
			switch {
			case p.Metadata != nil && len(*p.Metadata) > c.cfg.MaxMetadataBytes:
				codes[tp] = kerr.OffsetMetadataTooLarge.Code
			case c.cfg.PartitionExists != nil && !c.cfg.PartitionExists(t.Topic, p.Partition):
				codes[tp] = kerr.UnknownTopicOrPartition.Code
			default:
				epoch := p.LeaderEpoch
				if req.Version < 6 {
					epoch = -1
				}
				entries = append(entries, &entry{Group: g.name, Topic: t.Topic, Partition: p.Partition,
					Offset: &offsetRecord{Offset: p.Offset, LeaderEpoch: epoch, Metadata: deref(p.Metadata), CommitMs: now}})
			}
		}
	}
	if len(entries) == 0 {
		reply(commitResponse(req, func(t string, p int32) int16 { return codes[topicPartition{t, p}] }))
		return
	}
	c.persist(entries, func(err error) {
		if err != nil {
			for _, e := range entries {
				codes[topicPartition{e.Topic, e.Partition}] = kerr.CoordinatorNotAvailable.Code
			}
		} else {
			// The group may have been deleted while the entries were written;
			// they follow the tombstone in the journal, so they live on.
			cur := c.groups[req.Group]
			if cur == nil {
				cur = newGroup(req.Group)
				c.groups[req.Group] = cur
			}
			for _, e := range entries {
				cur.offsets[topicPartition{e.Topic, e.Partition}] = *e.Offset
			}
			cur.version++
		}
		reply(commitResponse(req, func(t string, p int32) int16 { return codes[topicPartition{t, p}] }))
	})
}

// OffsetFetch serves OffsetFetch v1-9 (v8+: several groups). A partition
// without a committed offset gets offset -1 and no error, as in Kafka; so
// does every partition of an unknown group.
func (c *Coordinator) OffsetFetch(ctx context.Context, req *kmsg.OffsetFetchRequest) *kmsg.OffsetFetchResponse {
	resp, code := call(ctx, c, func(reply func(*kmsg.OffsetFetchResponse)) { reply(c.fetch(req)) })
	if code != 0 {
		resp = req.ResponseKind().(*kmsg.OffsetFetchResponse)
		resp.ErrorCode = code
		for _, g := range req.Groups {
			resp.Groups = append(resp.Groups, kmsg.OffsetFetchResponseGroup{Group: g.Group, ErrorCode: code})
		}
	}
	return resp
}

type fetchPartition struct {
	topic     string
	partition int32
	rec       offsetRecord
	found     bool
}

// fetchGroup returns the offsets asked for (topics nil: every committed one).
func (c *Coordinator) fetchGroup(name string, topics map[string][]int32, all bool) []fetchPartition {
	g := c.groups[name]
	var out []fetchPartition
	if all {
		if g == nil {
			return nil
		}
		for tp, o := range g.offsets {
			out = append(out, fetchPartition{tp.topic, tp.partition, o, true})
		}
		slices.SortFunc(out, func(a, b fetchPartition) int {
			return cmp.Or(strings.Compare(a.topic, b.topic), cmp.Compare(a.partition, b.partition))
		})
		return out
	}
	for t, ps := range topics {
		for _, p := range ps {
			fp := fetchPartition{topic: t, partition: p}
			if g != nil {
				fp.rec, fp.found = g.offsets[topicPartition{t, p}]
			}
			out = append(out, fp)
		}
	}
	return out
}

func (fp fetchPartition) values() (offset int64, epoch int32, meta *string) {
	if !fp.found {
		return -1, -1, strPtr("")
	}
	return fp.rec.Offset, fp.rec.LeaderEpoch, strPtr(fp.rec.Metadata)
}

func (c *Coordinator) fetch(req *kmsg.OffsetFetchRequest) *kmsg.OffsetFetchResponse {
	resp := req.ResponseKind().(*kmsg.OffsetFetchResponse)
	if req.Version < 8 {
		topics, order := map[string][]int32{}, []string{}
		for _, t := range req.Topics {
			topics[t.Topic] = append(topics[t.Topic], t.Partitions...)
			order = append(order, t.Topic)
		}
		byTopic := map[string]*kmsg.OffsetFetchResponseTopic{}
		for _, fp := range c.fetchGroup(req.Group, topics, req.Topics == nil) {
			rt := byTopic[fp.topic]
			if rt == nil {
				if req.Topics == nil {
					order = append(order, fp.topic)
				}
				rt = &kmsg.OffsetFetchResponseTopic{Topic: fp.topic}
				byTopic[fp.topic] = rt
			}
			off, epoch, meta := fp.values()
			rt.Partitions = append(rt.Partitions, kmsg.OffsetFetchResponseTopicPartition{Partition: fp.partition, Offset: off, LeaderEpoch: epoch, Metadata: meta})
		}
		for _, t := range slices.Compact(order) {
			if rt := byTopic[t]; rt != nil {
				slices.SortFunc(rt.Partitions, func(a, b kmsg.OffsetFetchResponseTopicPartition) int { return cmp.Compare(a.Partition, b.Partition) })
				resp.Topics = append(resp.Topics, *rt)
			}
		}
		return resp
	}
	for _, rg := range req.Groups {
		topics, order := map[string][]int32{}, []string{}
		for _, t := range rg.Topics {
			topics[t.Topic] = append(topics[t.Topic], t.Partitions...)
			order = append(order, t.Topic)
		}
		out := kmsg.OffsetFetchResponseGroup{Group: rg.Group}
		byTopic := map[string]*kmsg.OffsetFetchResponseGroupTopic{}
		for _, fp := range c.fetchGroup(rg.Group, topics, rg.Topics == nil) {
			rt := byTopic[fp.topic]
			if rt == nil {
				if rg.Topics == nil {
					order = append(order, fp.topic)
				}
				rt = &kmsg.OffsetFetchResponseGroupTopic{Topic: fp.topic}
				byTopic[fp.topic] = rt
			}
			off, epoch, meta := fp.values()
			rt.Partitions = append(rt.Partitions, kmsg.OffsetFetchResponseGroupTopicPartition{Partition: fp.partition, Offset: off, LeaderEpoch: epoch, Metadata: meta})
		}
		for _, t := range slices.Compact(order) {
			if rt := byTopic[t]; rt != nil {
				slices.SortFunc(rt.Partitions, func(a, b kmsg.OffsetFetchResponseGroupTopicPartition) int {
					return cmp.Compare(a.Partition, b.Partition)
				})
				out.Topics = append(out.Topics, *rt)
			}
		}
		resp.Groups = append(resp.Groups, out)
	}
	return resp
}

// ListGroups serves ListGroups v0-5: every group this coordinator knows,
// filtered by state (v4+) and type (v5+: all groups are "classic").
func (c *Coordinator) ListGroups(ctx context.Context, req *kmsg.ListGroupsRequest) *kmsg.ListGroupsResponse {
	resp, code := call(ctx, c, func(reply func(*kmsg.ListGroupsResponse)) {
		resp := req.ResponseKind().(*kmsg.ListGroupsResponse)
		for _, g := range c.groups {
			if g.state == stateDead {
				continue
			}
			st := g.state.String()
			if len(req.StatesFilter) > 0 && !slices.ContainsFunc(req.StatesFilter, func(s string) bool { return strings.EqualFold(s, st) }) {
				continue
			}
			if len(req.TypesFilter) > 0 && !slices.ContainsFunc(req.TypesFilter, func(s string) bool { return strings.EqualFold(s, "classic") }) {
				continue
			}
			resp.Groups = append(resp.Groups, kmsg.ListGroupsResponseGroup{Group: g.name, ProtocolType: g.protocolType, GroupState: st, GroupType: "classic"})
		}
		slices.SortFunc(resp.Groups, func(a, b kmsg.ListGroupsResponseGroup) int { return strings.Compare(a.Group, b.Group) })
		reply(resp)
	})
	if code != 0 {
		resp = req.ResponseKind().(*kmsg.ListGroupsResponse)
		resp.ErrorCode = code
	}
	return resp
}

// DescribeGroups serves DescribeGroups v0-5: state, protocol, and members
// with their metadata and assignment. An unknown group is reported with
// state Dead and no error, as Kafka does before v6.
func (c *Coordinator) DescribeGroups(ctx context.Context, req *kmsg.DescribeGroupsRequest) *kmsg.DescribeGroupsResponse {
	resp, code := call(ctx, c, func(reply func(*kmsg.DescribeGroupsResponse)) {
		resp := req.ResponseKind().(*kmsg.DescribeGroupsResponse)
		for _, name := range req.Groups {
			resp.Groups = append(resp.Groups, c.describe(name))
		}
		reply(resp)
	})
	if code != 0 {
		resp = req.ResponseKind().(*kmsg.DescribeGroupsResponse)
		for _, name := range req.Groups {
			resp.Groups = append(resp.Groups, kmsg.DescribeGroupsResponseGroup{Group: name, ErrorCode: code})
		}
	}
	return resp
}

func (c *Coordinator) describe(name string) kmsg.DescribeGroupsResponseGroup {
	out := kmsg.DescribeGroupsResponseGroup{Group: name, State: stateDead.String(), AuthorizedOperations: -2147483648}
	if name == "" {
		out.ErrorCode = kerr.InvalidGroupID.Code
		return out
	}
	g := c.groups[name]
	if g == nil {
		return out
	}
	out.State, out.ProtocolType = g.state.String(), g.protocolType
	if g.state == stateStable {
		out.Protocol = g.protocol // Kafka reports the protocol only when stable
	}
	for _, m := range g.sortedMembers() {
		dm := kmsg.DescribeGroupsResponseGroupMember{
			MemberID: m.id, InstanceID: nullable(m.instanceID), ClientID: m.clientID, ClientHost: m.host,
			ProtocolMetadata: []byte{}, MemberAssignment: []byte{},
		}
		if g.state == stateStable {
			dm.ProtocolMetadata = m.metadata(g.protocol)
			if m.assignment != nil {
				dm.MemberAssignment = m.assignment
			}
		}
		out.Members = append(out.Members, dm)
	}
	return out
}

// DeleteGroups serves DeleteGroups v0-2: only empty groups are deleted
// (NON_EMPTY_GROUP otherwise), with all their offsets, durably.
func (c *Coordinator) DeleteGroups(ctx context.Context, req *kmsg.DeleteGroupsRequest) *kmsg.DeleteGroupsResponse {
	resp, code := call(ctx, c, func(reply func(*kmsg.DeleteGroupsResponse)) { c.deleteGroups(req, reply) })
	if code != 0 {
		resp = req.ResponseKind().(*kmsg.DeleteGroupsResponse)
		for _, name := range req.Groups {
			resp.Groups = append(resp.Groups, kmsg.DeleteGroupsResponseGroup{Group: name, ErrorCode: code})
		}
	}
	return resp
}

func (c *Coordinator) deleteGroups(req *kmsg.DeleteGroupsRequest, reply func(*kmsg.DeleteGroupsResponse)) {
	resp := req.ResponseKind().(*kmsg.DeleteGroupsResponse)
	var entries []*entry
	var doomed []*group
	for _, name := range req.Groups {
		g := c.groups[name]
		var code int16
		switch {
		case name == "":
			code = kerr.InvalidGroupID.Code
		case g == nil || g.state == stateDead:
			code = kerr.GroupIDNotFound.Code
		case g.state != stateEmpty || len(g.pending) > 0:
			code = kerr.NonEmptyGroup.Code
		case g.deleting:
			code = kerr.CoordinatorNotAvailable.Code
		default:
			g.deleting = true
			entries = append(entries, &entry{Group: name, Delete: true})
			doomed = append(doomed, g)
		}
		resp.Groups = append(resp.Groups, kmsg.DeleteGroupsResponseGroup{Group: name, ErrorCode: code})
	}
	if len(entries) == 0 {
		reply(resp)
		return
	}
	c.persist(entries, func(err error) {
		for _, g := range doomed {
			g.deleting = false
			if err == nil && c.groups[g.name] == g {
				g.state = stateDead
				g.stopRebalanceTimer()
				delete(c.groups, g.name)
			}
		}
		if err != nil {
			for i := range resp.Groups {
				if resp.Groups[i].ErrorCode == 0 {
					resp.Groups[i].ErrorCode = kerr.CoordinatorNotAvailable.Code
				}
			}
		}
		reply(resp)
	})
}

// OffsetDelete serves OffsetDelete v0: an empty group's offsets can be
// deleted; a live consumer group's only for topics it does not subscribe to
// (GROUP_SUBSCRIBED_TO_TOPIC); other live groups: NON_EMPTY_GROUP.
func (c *Coordinator) OffsetDelete(ctx context.Context, req *kmsg.OffsetDeleteRequest) *kmsg.OffsetDeleteResponse {
	resp, code := call(ctx, c, func(reply func(*kmsg.OffsetDeleteResponse)) { c.offsetDelete(req, reply) })
	if code != 0 {
		resp = req.ResponseKind().(*kmsg.OffsetDeleteResponse)
		resp.ErrorCode = code
	}
	return resp
}

func (c *Coordinator) offsetDelete(req *kmsg.OffsetDeleteRequest, reply func(*kmsg.OffsetDeleteResponse)) {
	resp := req.ResponseKind().(*kmsg.OffsetDeleteResponse)
	g := c.groups[req.Group]
	switch {
	case req.Group == "":
		resp.ErrorCode = kerr.InvalidGroupID.Code
	case g == nil || g.state == stateDead:
		resp.ErrorCode = kerr.GroupIDNotFound.Code
	case g.state != stateEmpty && g.protocolType != "consumer":
		resp.ErrorCode = kerr.NonEmptyGroup.Code
	}
	if resp.ErrorCode != 0 {
		reply(resp)
		return
	}
	subscribed := map[string]bool{}
	if g.state != stateEmpty {
		for _, m := range g.members {
			var meta kmsg.ConsumerMemberMetadata
			if err := meta.ReadFrom(m.metadata(g.protocol)); err == nil {
				for _, t := range meta.Topics {
					subscribed[t] = true
				}
			}
		}
	}
	var entries []*entry
	for _, t := range req.Topics {
		rt := kmsg.OffsetDeleteResponseTopic{Topic: t.Topic}
		for _, p := range t.Partitions {
			rp := kmsg.OffsetDeleteResponseTopicPartition{Partition: p.Partition}
			if subscribed[t.Topic] {
				rp.ErrorCode = kerr.GroupSubscribedToTopic.Code
			} else if _, ok := g.offsets[topicPartition{t.Topic, p.Partition}]; ok {
				entries = append(entries, &entry{Group: g.name, Topic: t.Topic, Partition: p.Partition, Delete: true})
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	if len(entries) == 0 {
		reply(resp)
		return
	}
	c.persist(entries, func(err error) {
		if err != nil {
			resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		} else if c.groups[g.name] == g {
			for _, e := range entries {
				delete(g.offsets, topicPartition{e.Topic, e.Partition})
			}
			g.version++
		}
		reply(resp)
	})
}
