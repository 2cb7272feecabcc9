package group

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// JoinGroup serves JoinGroup v0-9. It blocks until the rebalance completes
// (or ctx, the client connection, ends). v4+ dynamic members first get
// MEMBER_ID_REQUIRED with their member ID (KIP-394); static members
// (group.instance.id, v5+) join directly and replace their previous
// incarnation (KIP-345), which is fenced with FENCED_INSTANCE_ID.
func (c *Coordinator) JoinGroup(ctx context.Context, cl Client, req *kmsg.JoinGroupRequest) *kmsg.JoinGroupResponse {
	resp, code := call(ctx, c, func(reply func(*kmsg.JoinGroupResponse)) { c.join(cl, req, reply) })
	if code != 0 {
		return joinError(req, req.MemberID, code)
	}
	return resp
}

func joinError(req *kmsg.JoinGroupRequest, memberID string, code int16) *kmsg.JoinGroupResponse {
	resp := req.ResponseKind().(*kmsg.JoinGroupResponse)
	resp.ErrorCode = code
	resp.Generation = -1
	resp.MemberID = memberID
	if req.Version < 7 {
		resp.Protocol = strPtr("")
	}
	return resp
}

func (c *Coordinator) join(cl Client, req *kmsg.JoinGroupRequest, reply func(*kmsg.JoinGroupResponse)) {
	fail := func(code int16) { reply(joinError(req, req.MemberID, code)) }
	session := time.Duration(req.SessionTimeoutMillis) * time.Millisecond
	rebalance := session
	if req.Version >= 1 {
		rebalance = time.Duration(req.RebalanceTimeoutMillis) * time.Millisecond
	}
	switch {
	case req.Group == "":
		fail(kerr.InvalidGroupID.Code)
		return
	case session < c.cfg.MinSessionTimeout || session > c.cfg.MaxSessionTimeout:
		fail(kerr.InvalidSessionTimeout.Code)
		return
	case req.ProtocolType == "" || len(req.Protocols) == 0:
		fail(kerr.InconsistentGroupProtocol.Code)
		return
	}
	g := c.groups[req.Group]
	if g == nil {
		if req.MemberID != "" {
			fail(kerr.UnknownMemberID.Code)
			return
		}
		g = newGroup(req.Group)
		c.groups[req.Group] = g
	}
	if g.state == stateDead || g.deleting {
		fail(kerr.CoordinatorNotAvailable.Code)
		return
	}
	if !g.supports(req.MemberID, req.ProtocolType, req.Protocols) {
		fail(kerr.InconsistentGroupProtocol.Code)
		return
	}
	instance := deref(req.InstanceID)
	fresh := func(id string) *member {
		return &member{
			id: id, instanceID: instance, clientID: cl.ID, host: cl.Host,
			protocolType: req.ProtocolType, protocols: req.Protocols,
			sessionTimeout: session, rebalanceTimeout: rebalance,
		}
	}
	if req.MemberID == "" {
		if len(g.members)+len(g.pending) >= c.cfg.MaxGroupSize && (instance == "" || g.static[instance] == "") {
			fail(kerr.GroupMaxSizeReached.Code)
			return
		}
		id := newMemberID(cl.ID)
		switch {
		case instance != "":
			c.joinStatic(g, fresh(id), req.Version, reply)
		case req.Version >= 4:
			// KIP-394: hand out the ID and wait for the member to come back
			// with it, so that a client that never gets the answer leaves no
			// ghost member behind. Until it does (or its session timeout
			// passes) the rebalance waits for it.
			g.pending[id] = time.AfterFunc(session, func() {
				c.post(func() {
					if _, ok := g.pending[id]; ok && c.groups[g.name] == g {
						delete(g.pending, id)
						c.maybeCompleteJoin(g)
					}
				})
			})
			reply(joinError(req, id, kerr.MemberIDRequired.Code))
		default:
			c.addMember(g, fresh(id), req.Version, reply)
		}
		return
	}
	if t, ok := g.pending[req.MemberID]; ok {
		t.Stop()
		delete(g.pending, req.MemberID)
		c.addMember(g, fresh(req.MemberID), req.Version, reply)
		return
	}
	m := g.members[req.MemberID]
	switch {
	case m == nil:
		fail(kerr.UnknownMemberID.Code)
		return
	case instance != "" && g.static[instance] != m.id:
		fail(kerr.FencedInstanceID.Code)
		return
	}
	c.rejoin(g, m, cl, req, session, rebalance, reply)
}

// addMember adds a new member waiting in JoinGroup and starts (or advances)
// a rebalance.
func (c *Coordinator) addMember(g *group, m *member, version int16, reply func(*kmsg.JoinGroupResponse)) {
	g.joinOrder++
	m.order = g.joinOrder
	m.join, m.joinVersion = reply, version
	g.members[m.id] = m
	if m.instanceID != "" {
		g.static[m.instanceID] = m.id
	}
	g.version++
	if g.state == statePreparing {
		g.newMember = g.newMember || g.delaying
		c.maybeCompleteJoin(g)
		return
	}
	c.prepareRebalance(g)
}

// joinStatic handles a static member joining without a member ID: new, or
// a restarted instance replacing its previous member ID.
func (c *Coordinator) joinStatic(g *group, m *member, version int16, reply func(*kmsg.JoinGroupResponse)) {
	oldID, known := g.static[m.instanceID]
	old := g.members[oldID]
	if !known || old == nil {
		c.addMember(g, m, version, reply)
		return
	}
	// Replace: the old incarnation is fenced; the new one inherits its place
	// (join order, leadership, assignment).
	old.stopTimer()
	if old.join != nil {
		old.join(&kmsg.JoinGroupResponse{Version: old.joinVersion, ErrorCode: kerr.FencedInstanceID.Code, Generation: -1, MemberID: old.id, Protocol: strPtr("")})
	}
	if old.sync != nil {
		old.sync(&kmsg.SyncGroupResponse{Version: old.syncVersion, ErrorCode: kerr.FencedInstanceID.Code})
	}
	delete(g.members, oldID)
	m.order, m.assignment = old.order, old.assignment
	g.members[m.id] = m
	g.static[m.instanceID] = m.id
	if g.leader == oldID {
		g.leader = m.id
	}
	g.version++
	switch g.state {
	case stateStable:
		if g.selectProtocol() == g.protocol {
			// KIP-345: a static member coming back with the same protocols
			// gets the current generation without a rebalance; a leader is
			// told to skip the assignment (v9, KIP-814), older leaders
			// compute one that SyncGroup ignores.
			resp := c.joinResponse(g, m, version)
			resp.SkipAssignment = m.id == g.leader
			c.resetSession(g, m)
			reply(resp)
			return
		}
		m.join, m.joinVersion = reply, version
		c.prepareRebalance(g)
	case stateCompleting:
		// The leader may already be assigning to the old member ID.
		m.join, m.joinVersion = reply, version
		c.prepareRebalance(g)
	default: // PreparingRebalance
		m.join, m.joinVersion = reply, version
		c.maybeCompleteJoin(g)
	}
}

func (c *Coordinator) rejoin(g *group, m *member, cl Client, req *kmsg.JoinGroupRequest, session, rebalance time.Duration, reply func(*kmsg.JoinGroupResponse)) {
	changed := !sameProtocols(m.protocols, req.Protocols)
	m.protocols, m.protocolType = req.Protocols, req.ProtocolType
	m.sessionTimeout, m.rebalanceTimeout = session, rebalance
	m.clientID, m.host = cl.ID, cl.Host
	if m.join != nil {
		// A second JoinGroup while one waits: the first is answered so no
		// request is left hanging; the client only uses the newest.
		m.join(joinError(req, m.id, kerr.RebalanceInProgress.Code))
	}
	switch {
	case g.state == statePreparing:
		m.join, m.joinVersion = reply, req.Version
		c.maybeCompleteJoin(g)
	case g.state == stateCompleting && !changed,
		g.state == stateStable && !changed && m.id != g.leader:
		// The member missed (or repeats) the join response of the current
		// generation: answer it again.
		c.resetSession(g, m)
		reply(c.joinResponse(g, m, req.Version))
	default:
		m.join, m.joinVersion = reply, req.Version
		c.prepareRebalance(g)
	}
}

// prepareRebalance starts a rebalance: every member must rejoin within the
// largest rebalance timeout, or is removed.
func (c *Coordinator) prepareRebalance(g *group) {
	wasEmpty := g.state == stateEmpty
	if g.state == stateCompleting {
		for _, m := range g.members {
			if m.sync != nil {
				m.sync(&kmsg.SyncGroupResponse{Version: m.syncVersion, ErrorCode: kerr.RebalanceInProgress.Code})
				m.sync = nil
			}
		}
	}
	g.state = statePreparing
	g.stopRebalanceTimer()
	var timeout time.Duration
	for _, m := range g.members {
		timeout = max(timeout, m.rebalanceTimeout)
	}
	seq := g.rebalanceSeq
	g.rebalanceTimer = time.AfterFunc(timeout, func() {
		c.post(func() {
			if g.rebalanceSeq == seq && c.groups[g.name] == g && g.state == statePreparing {
				c.rebalanceExpired(g)
			}
		})
	})
	if wasEmpty {
		c.startInitialDelay(g, timeout)
	}
	c.maybeCompleteJoin(g)
}

func (c *Coordinator) maybeCompleteJoin(g *group) {
	if g.state != statePreparing || len(g.pending) > 0 || g.delaying {
		return
	}
	for _, m := range g.members {
		if m.join == nil {
			return
		}
	}
	c.completeJoin(g)
}

// rebalanceExpired removes the members that did not rejoin in time.
func (c *Coordinator) rebalanceExpired(g *group) {
	for id, m := range g.members {
		if m.join == nil {
			m.stopTimer()
			delete(g.members, id)
			if m.instanceID != "" && g.static[m.instanceID] == id {
				delete(g.static, m.instanceID)
			}
		}
	}
	for id, t := range g.pending {
		t.Stop()
		delete(g.pending, id)
	}
	c.completeJoin(g)
}

// completeJoin starts the next generation and answers every waiting join:
// the leader gets the members and their metadata to compute an assignment.
func (c *Coordinator) completeJoin(g *group) {
	g.stopRebalanceTimer()
	g.stopInitialDelay()
	g.generation++
	g.version++
	if len(g.members) == 0 {
		g.state, g.protocol, g.leader = stateEmpty, "", ""
		g.emptySince = time.Now()
		c.persist([]*entry{g.metaEntry()}, func(error) {})
		return
	}
	g.protocol = g.selectProtocol()
	ms := g.sortedMembers()
	g.protocolType = ms[0].protocolType
	if g.members[g.leader] == nil {
		g.leader = ms[0].id
	}
	g.state = stateCompleting
	for _, m := range ms {
		m.assignment = nil
		if m.join != nil {
			m.join(c.joinResponse(g, m, m.joinVersion))
			m.join = nil
		}
		c.resetSession(g, m)
	}
	c.persist([]*entry{g.metaEntry()}, func(error) {})
}

func (c *Coordinator) joinResponse(g *group, m *member, version int16) *kmsg.JoinGroupResponse {
	resp := &kmsg.JoinGroupResponse{
		Version:      version,
		Generation:   g.generation,
		ProtocolType: strPtr(g.protocolType),
		Protocol:     strPtr(g.protocol),
		LeaderID:     g.leader,
		MemberID:     m.id,
	}
	if m.id == g.leader {
		for _, o := range g.sortedMembers() {
			resp.Members = append(resp.Members, kmsg.JoinGroupResponseMember{
				MemberID: o.id, InstanceID: nullable(o.instanceID), ProtocolMetadata: o.metadata(g.protocol),
			})
		}
	}
	return resp
}

// resetSession restarts m's session timer; when it fires the member is
// removed, unless it is waiting in JoinGroup or SyncGroup (as Kafka does).
func (c *Coordinator) resetSession(g *group, m *member) {
	m.stopTimer()
	seq := m.timerSeq
	m.timer = time.AfterFunc(m.sessionTimeout, func() {
		c.post(func() {
			if m.timerSeq != seq || c.groups[g.name] != g || g.members[m.id] != m {
				return
			}
			if m.join != nil || m.sync != nil {
				c.resetSession(g, m)
				return
			}
			c.removeMember(g, m)
		})
	})
}

// removeMember drops m (left, fenced or timed out) and rebalances the rest.
func (c *Coordinator) removeMember(g *group, m *member) {
	m.stopTimer()
	delete(g.members, m.id)
	if m.instanceID != "" && g.static[m.instanceID] == m.id {
		delete(g.static, m.instanceID)
	}
	if m.join != nil {
		m.join(&kmsg.JoinGroupResponse{Version: m.joinVersion, ErrorCode: kerr.UnknownMemberID.Code, Generation: -1, MemberID: m.id, Protocol: strPtr("")})
		m.join = nil
	}
	if m.sync != nil {
		m.sync(&kmsg.SyncGroupResponse{Version: m.syncVersion, ErrorCode: kerr.UnknownMemberID.Code})
		m.sync = nil
	}
	if g.leader == m.id {
		g.leader = ""
	}
	g.version++
	switch g.state {
	case stateStable, stateCompleting:
		c.prepareRebalance(g)
	case statePreparing:
		c.maybeCompleteJoin(g)
	}
}

// SyncGroup serves SyncGroup v0-5: the leader sends the assignment; every
// member waits for its share.
func (c *Coordinator) SyncGroup(ctx context.Context, req *kmsg.SyncGroupRequest) *kmsg.SyncGroupResponse {
	resp, code := call(ctx, c, func(reply func(*kmsg.SyncGroupResponse)) { c.sync(req, reply) })
	if code != 0 {
		resp = req.ResponseKind().(*kmsg.SyncGroupResponse)
		resp.ErrorCode = code
	}
	return resp
}

func (c *Coordinator) sync(req *kmsg.SyncGroupRequest, reply func(*kmsg.SyncGroupResponse)) {
	fail := func(code int16) {
		resp := req.ResponseKind().(*kmsg.SyncGroupResponse)
		resp.ErrorCode = code
		reply(resp)
	}
	g := c.groups[req.Group]
	if g == nil {
		fail(kerr.UnknownMemberID.Code)
		return
	}
	if code := c.checkMember(g, req.MemberID, deref(req.InstanceID), req.Generation); code != 0 {
		fail(code)
		return
	}
	if req.ProtocolType != nil && *req.ProtocolType != g.protocolType || req.Protocol != nil && *req.Protocol != g.protocol {
		fail(kerr.InconsistentGroupProtocol.Code)
		return
	}
	m := g.members[req.MemberID]
	switch g.state {
	case statePreparing:
		fail(kerr.RebalanceInProgress.Code)
	case stateStable:
		c.resetSession(g, m)
		reply(c.syncResponse(g, m, req.Version))
	case stateCompleting:
		c.resetSession(g, m)
		m.sync, m.syncVersion = reply, req.Version
		if m.id != g.leader {
			return
		}
		assigned := make(map[string][]byte, len(req.GroupAssignment))
		for _, a := range req.GroupAssignment {
			assigned[a.MemberID] = a.MemberAssignment
		}
		for id, o := range g.members {
			o.assignment = assigned[id]
		}
		g.state = stateStable
		g.version++
		for _, o := range g.members {
			if o.sync != nil {
				o.sync(c.syncResponse(g, o, o.syncVersion))
				o.sync = nil
			}
		}
	}
}

func (c *Coordinator) syncResponse(g *group, m *member, version int16) *kmsg.SyncGroupResponse {
	assignment := m.assignment
	if assignment == nil {
		assignment = []byte{}
	}
	return &kmsg.SyncGroupResponse{
		Version: version, ProtocolType: strPtr(g.protocolType), Protocol: strPtr(g.protocol), MemberAssignment: assignment,
	}
}

// checkMember validates a request from a member of the current generation:
// UNKNOWN_MEMBER_ID, FENCED_INSTANCE_ID or ILLEGAL_GENERATION.
func (c *Coordinator) checkMember(g *group, memberID, instance string, generation int32) int16 {
	if g.state == stateDead {
		return kerr.CoordinatorNotAvailable.Code
	}
	if instance != "" {
		if cur, ok := g.static[instance]; ok && cur != memberID {
			return kerr.FencedInstanceID.Code
		}
	}
	if g.members[memberID] == nil {
		return kerr.UnknownMemberID.Code
	}
	if generation != g.generation {
		return kerr.IllegalGeneration.Code
	}
	return 0
}

// Heartbeat serves Heartbeat v0-4: it keeps the member's session alive and
// tells it (REBALANCE_IN_PROGRESS) when it must rejoin.
func (c *Coordinator) Heartbeat(ctx context.Context, req *kmsg.HeartbeatRequest) *kmsg.HeartbeatResponse {
	resp, code := call(ctx, c, func(reply func(*kmsg.HeartbeatResponse)) {
		resp := req.ResponseKind().(*kmsg.HeartbeatResponse)
		resp.ErrorCode = c.heartbeat(req)
		reply(resp)
	})
	if code != 0 {
		resp = req.ResponseKind().(*kmsg.HeartbeatResponse)
		resp.ErrorCode = code
	}
	return resp
}

func (c *Coordinator) heartbeat(req *kmsg.HeartbeatRequest) int16 {
	g := c.groups[req.Group]
	if g == nil {
		return kerr.UnknownMemberID.Code
	}
	if code := c.checkMember(g, req.MemberID, deref(req.InstanceID), req.Generation); code != 0 {
		return code
	}
	m := g.members[req.MemberID]
	switch g.state {
	case stateEmpty:
		return kerr.UnknownMemberID.Code
	case statePreparing:
		c.resetSession(g, m)
		return kerr.RebalanceInProgress.Code
	default:
		c.resetSession(g, m)
		return 0
	}
}

// LeaveGroup serves LeaveGroup v0-5 (v3+: a batch of members, by member ID
// or group.instance.id).
func (c *Coordinator) LeaveGroup(ctx context.Context, req *kmsg.LeaveGroupRequest) *kmsg.LeaveGroupResponse {
	resp, code := call(ctx, c, func(reply func(*kmsg.LeaveGroupResponse)) { reply(c.leave(req)) })
	if code != 0 {
		resp = req.ResponseKind().(*kmsg.LeaveGroupResponse)
		resp.ErrorCode = code
	}
	return resp
}

func (c *Coordinator) leave(req *kmsg.LeaveGroupRequest) *kmsg.LeaveGroupResponse {
	resp := req.ResponseKind().(*kmsg.LeaveGroupResponse)
	leaving := req.Members
	if req.Version < 3 {
		leaving = []kmsg.LeaveGroupRequestMember{{MemberID: req.MemberID}}
	}
	g := c.groups[req.Group]
	for _, l := range leaving {
		code := c.leaveOne(g, l.MemberID, deref(l.InstanceID))
		resp.Members = append(resp.Members, kmsg.LeaveGroupResponseMember{MemberID: l.MemberID, InstanceID: l.InstanceID, ErrorCode: code})
	}
	if req.Version < 3 {
		resp.ErrorCode = resp.Members[0].ErrorCode
		resp.Members = nil
	}
	return resp
}

func (c *Coordinator) leaveOne(g *group, id, instance string) int16 {
	if g == nil {
		return kerr.UnknownMemberID.Code
	}
	if g.state == stateDead {
		return kerr.CoordinatorNotAvailable.Code
	}
	if instance != "" {
		cur, ok := g.static[instance]
		switch {
		case !ok:
			return kerr.UnknownMemberID.Code
		case id != "" && id != cur:
			return kerr.FencedInstanceID.Code
		}
		id = cur
	}
	if t, ok := g.pending[id]; ok {
		t.Stop()
		delete(g.pending, id)
		c.maybeCompleteJoin(g)
		return 0
	}
	m := g.members[id]
	if m == nil {
		return kerr.UnknownMemberID.Code
	}
	c.removeMember(g, m)
	return 0
}
