package lookback

import (
	"context"
	"fmt"
	"sort"
	"time"
)

// Flow is every archived event of one correlation id, oldest first, with
// the causation tree and what each consumer group did with each event.
type Flow struct {
	CorrelationID string      `json:"correlation_id"`
	Events        []FlowEvent `json:"events"`
	// Roots are the ids of events whose cause is not in the flow; each
	// node lists the events it caused.
	Roots []*FlowNode `json:"roots"`
	// Start, End and Duration span the events' timestamps.
	Start    time.Time `json:"start"`
	End      time.Time `json:"end"`
	Duration float64   `json:"duration_ms"`
	// Truncated is set when the flow has more than MaxFlowEvents events;
	// the oldest MaxFlowEvents are shown.
	Truncated bool `json:"truncated,omitempty"`
}

// FlowEvent is one step of a flow.
type FlowEvent struct {
	Event *Event `json:"event"`
	// GapMS is the time since the previous event of the flow.
	GapMS float64 `json:"gap_ms"`
	// Depth is the event's depth in the causation tree (0 for a root).
	Depth int `json:"depth"`
	// MissingCause is set when the event names a causation id that is not
	// in the flow: not archived (a hole), or archived under another
	// correlation id.
	MissingCause bool `json:"missing_cause,omitempty"`
	// Receipts say which groups handled the event and how.
	Receipts []Receipt `json:"receipts"`
}

// FlowNode is a node of the causation tree.
type FlowNode struct {
	ID       string      `json:"id"`
	Type     string      `json:"type,omitempty"`
	Topic    string      `json:"topic"`
	Children []*FlowNode `json:"children,omitempty"`
}

// MaxFlowEvents bounds the events of one flow view.
const MaxFlowEvents = 10000

// Flow builds the flow of a correlation id: the events carrying it, plus
// the event whose id it is (the root of flows started by event.Follow).
func BuildFlow(ctx context.Context, st Store, corr string) (*Flow, error) {
	if corr == "" {
		return nil, fmt.Errorf("%w: a flow needs a correlation id", ErrBadQuery)
	}
	f := &Flow{CorrelationID: corr, Events: []FlowEvent{}, Roots: []*FlowNode{}}
	seen := map[string]bool{}
	var evs []*Event
	add := func(q Query) error {
		q.Oldest, q.Limit = true, 1000
		for {
			p, err := st.Search(ctx, q)
			if err != nil {
				return err
			}
			for _, e := range p.Events {
				k := fmt.Sprintf("%s/%d/%d", e.Topic, e.Partition, e.Offset)
				if !seen[k] {
					seen[k] = true
					evs = append(evs, e)
				}
			}
			if p.Next == "" || len(evs) > MaxFlowEvents {
				return nil
			}
			q.Cursor = p.Next
		}
	}
	if err := add(Query{CorrelationID: corr}); err != nil {
		return nil, err
	}
	if err := add(Query{ID: corr}); err != nil {
		return nil, err
	}
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].Timestamp.Before(evs[j].Timestamp) })
	if len(evs) > MaxFlowEvents {
		evs, f.Truncated = evs[:MaxFlowEvents], true
	}
	if len(evs) == 0 {
		return f, nil
	}
	ids := make([]string, 0, len(evs))
	for _, e := range evs {
		if e.ID != "" {
			ids = append(ids, e.ID)
		}
	}
	receipts, err := st.Receipts(ctx, ids)
	if err != nil {
		return nil, err
	}
	byID := map[string][]Receipt{}
	for _, r := range receipts {
		byID[r.EventID] = append(byID[r.EventID], r)
	}
	nodes := map[string]*FlowNode{}
	for _, e := range evs {
		if e.ID != "" && nodes[e.ID] == nil {
			nodes[e.ID] = &FlowNode{ID: e.ID, Type: e.Type, Topic: e.Topic}
		}
	}
	depth := map[string]int{}
	// An id archived twice (a replay into an archived topic) is one node:
	// linked into the tree once, by its first event.
	linked := map[string]bool{}
	f.Start, f.End = evs[0].Timestamp, evs[len(evs)-1].Timestamp
	f.Duration = float64(f.End.Sub(f.Start).Microseconds()) / 1000
	for i, e := range evs {
		fe := FlowEvent{Event: e, Receipts: byID[e.ID]}
		if fe.Receipts == nil {
			fe.Receipts = []Receipt{}
		}
		if i > 0 {
			fe.GapMS = float64(e.Timestamp.Sub(evs[i-1].Timestamp).Microseconds()) / 1000
		}
		parent := nodes[e.CausationID]
		n := nodes[e.ID]
		if n != nil && linked[e.ID] {
			n = nil
		}
		if n != nil {
			linked[e.ID] = true
		}
		if e.CausationID != "" && e.CausationID != e.ID && parent != nil {
			fe.Depth = depth[e.CausationID] + 1
			if n != nil {
				parent.Children = append(parent.Children, n)
			}
		} else {
			fe.MissingCause = e.CausationID != "" && parent == nil
			if n != nil {
				f.Roots = append(f.Roots, n)
			}
		}
		if e.ID != "" {
			depth[e.ID] = fe.Depth
		}
		f.Events = append(f.Events, fe)
	}
	return f, nil
}
