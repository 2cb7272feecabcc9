package group

import (
	"cmp"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// state is a classic group's state, with Kafka's names (DescribeGroups and
// ListGroups report them):
//
//	Empty --join--> PreparingRebalance --all joined / timeout--> CompletingRebalance
//	CompletingRebalance --leader's SyncGroup--> Stable
//	Stable | CompletingRebalance --join, leave, session timeout--> PreparingRebalance
//	PreparingRebalance --no member left--> Empty --DeleteGroups / expiry--> Dead
type state int8

const (
	stateEmpty state = iota
	statePreparing
	stateCompleting
	stateStable
	stateDead
)

func (s state) String() string {
	return [...]string{"Empty", "PreparingRebalance", "CompletingRebalance", "Stable", "Dead"}[s]
}

type topicPartition struct {
	topic     string
	partition int32
}

type group struct {
	name         string
	state        state
	protocolType string
	protocol     string
	generation   int32
	leader       string
	members      map[string]*member
	static       map[string]string      // group.instance.id -> member ID
	pending      map[string]*time.Timer // member IDs sent with MEMBER_ID_REQUIRED
	offsets      map[topicPartition]offsetRecord
	emptySince   time.Time

	rebalanceTimer *time.Timer
	rebalanceSeq   int
	// The initial rebalance delay of an empty group (initialdelay.go):
	// delaying while it runs, newMember when a member joined since the
	// last extension; delaySeq invalidates a timer that fired late.
	delaying   bool
	newMember  bool
	delayTimer *time.Timer
	delaySeq   int
	joinOrder  int
	version    int  // bumped on every change: expiry checks it
	deleting   bool // expiry tombstones in flight
}

func newGroup(name string) *group {
	return &group{
		name:       name,
		members:    make(map[string]*member),
		static:     make(map[string]string),
		pending:    make(map[string]*time.Timer),
		offsets:    make(map[topicPartition]offsetRecord),
		emptySince: time.Now(),
	}
}

type member struct {
	id, instanceID   string
	clientID, host   string
	protocolType     string
	protocols        []kmsg.JoinGroupRequestProtocol
	sessionTimeout   time.Duration
	rebalanceTimeout time.Duration
	join             func(*kmsg.JoinGroupResponse) // set while waiting in JoinGroup
	joinVersion      int16
	sync             func(*kmsg.SyncGroupResponse) // set while waiting in SyncGroup
	syncVersion      int16
	assignment       []byte
	timer            *time.Timer
	timerSeq         int
	order            int
}

func (m *member) stopTimer() {
	m.timerSeq++
	if m.timer != nil {
		m.timer.Stop()
		m.timer = nil
	}
}

func (m *member) metadata(protocol string) []byte {
	for _, p := range m.protocols {
		if p.Name == protocol {
			return p.Metadata
		}
	}
	return nil
}

func (g *group) stopRebalanceTimer() {
	g.rebalanceSeq++
	if g.rebalanceTimer != nil {
		g.rebalanceTimer.Stop()
		g.rebalanceTimer = nil
	}
}

// sortedMembers returns the members in join order (the order the leader
// sees them in).
func (g *group) sortedMembers() []*member {
	ms := make([]*member, 0, len(g.members))
	for _, m := range g.members {
		ms = append(ms, m)
	}
	slices.SortFunc(ms, func(a, b *member) int { return cmp.Compare(a.order, b.order) })
	return ms
}

// supports reports whether a member with these protocols may join: the
// protocol type must match and one protocol must be supported by every
// other member.
func (g *group) supports(self string, protocolType string, protocols []kmsg.JoinGroupRequestProtocol) bool {
	others := 0
	for id, m := range g.members {
		if id == self {
			continue
		}
		others++
		if m.protocolType != protocolType {
			return false
		}
	}
	if others == 0 {
		return true
	}
	for _, p := range protocols {
		all := true
		for id, m := range g.members {
			if id != self && !hasProtocol(m.protocols, p.Name) {
				all = false
				break
			}
		}
		if all {
			return true
		}
	}
	return false
}

func hasProtocol(ps []kmsg.JoinGroupRequestProtocol, name string) bool {
	for _, p := range ps {
		if p.Name == name {
			return true
		}
	}
	return false
}

func sameProtocols(a, b []kmsg.JoinGroupRequestProtocol) bool {
	return slices.EqualFunc(a, b, func(x, y kmsg.JoinGroupRequestProtocol) bool {
		return x.Name == y.Name && string(x.Metadata) == string(y.Metadata)
	})
}

// selectProtocol picks the protocol supported by every member that most
// members list first (Kafka's vote); ties go to the first member's order of
// preference.
func (g *group) selectProtocol() string {
	ms := g.sortedMembers()
	if len(ms) == 0 {
		return ""
	}
	var candidates []string
	for _, p := range ms[0].protocols {
		all := true
		for _, m := range ms[1:] {
			if !hasProtocol(m.protocols, p.Name) {
				all = false
				break
			}
		}
		if all {
			candidates = append(candidates, p.Name)
		}
	}
	votes := make(map[string]int)
	for _, m := range ms {
		for _, p := range m.protocols {
			if slices.Contains(candidates, p.Name) {
				votes[p.Name]++
				break
			}
		}
	}
	best := ""
	for _, name := range candidates {
		if best == "" || votes[name] > votes[best] {
			best = name
		}
	}
	return best
}

// fullEntries is the group's whole durable state as journal entries.
func (g *group) fullEntries() []*entry {
	entries := []*entry{g.metaEntry()}
	for tp, o := range g.offsets {
		o := o
		entries = append(entries, &entry{Group: g.name, Topic: tp.topic, Partition: tp.partition, Offset: &o})
	}
	return entries
}

func (g *group) metaEntry() *entry {
	rec := &groupRecord{ProtocolType: g.protocolType, Protocol: g.protocol, Generation: g.generation}
	if g.state == stateEmpty {
		rec.EmptySinceMs = g.emptySince.UnixMilli()
	}
	return &entry{Group: g.name, Meta: rec}
}

func newMemberID(clientID string) string {
	return clientID + "-" + uuid.NewString()
}

func strPtr(s string) *string { return &s }

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
