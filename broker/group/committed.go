package group

import (
	"cmp"
	"context"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
)

// Committed is one committed offset of a group, with the group's state, as
// the broker's lag metrics read them.
type Committed struct {
	Group     string
	State     string // Empty, PreparingRebalance, CompletingRebalance, Stable, Dead
	Members   int
	Topic     string
	Partition int32
	Offset    int64
}

// GroupState is one group's state and member count.
type GroupState struct {
	Group   string
	State   string
	Members int
}

// Snapshot returns every group's state and every committed offset, sorted
// by group, topic and partition. It fails while the coordinator loads or
// once it is closed.
func (c *Coordinator) Snapshot(ctx context.Context) ([]GroupState, []Committed, error) {
	type result struct {
		groups []GroupState
		offs   []Committed
	}
	res, code := call(ctx, c, func(reply func(result)) {
		var r result
		for _, g := range c.groups {
			st := g.state.String()
			r.groups = append(r.groups, GroupState{Group: g.name, State: st, Members: len(g.members)})
			for tp, o := range g.offsets {
				r.offs = append(r.offs, Committed{Group: g.name, State: st, Members: len(g.members), Topic: tp.topic, Partition: tp.partition, Offset: o.Offset})
			}
		}
		reply(r)
	})
	if code != 0 {
		return nil, nil, kerr.ErrorForCode(code)
	}
	slices.SortFunc(res.groups, func(a, b GroupState) int { return strings.Compare(a.Group, b.Group) })
	slices.SortFunc(res.offs, func(a, b Committed) int {
		return cmp.Or(strings.Compare(a.Group, b.Group), strings.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
	})
	return res.groups, res.offs, nil
}
