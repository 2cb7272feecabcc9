package console

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// msgResult is one page of records, from the broker or the archive.
type msgResult struct {
	Records []*msgRecord
	Newest  bool // shown newest first
	// Older and Newer continue the page; nil when there is nothing there.
	Older, Newer *msgCursor
	LBNext       string // the archive's cursor of the next page
	Source       string // "broker" or "lookback"
	// A broker scan's account: records read of those in the ranges it
	// planned, of all the selected partitions hold, and the matches.
	Scanned, Planned, Held int64
	Matches                int64
	Budget                 bool    // stopped at the budget: older (or newer) records were not scanned
	Incomplete             []int32 // partitions whose range was not read to its end in time
	Parts                  []msgPartProgress
	Examined               int // archived events a lookback search examined
	Timeout                bool
}

// msgPartProgress is a partition's part of a scan.
type msgPartProgress struct {
	P                       int32
	Scanned, Total, Matches int64
}

// msgPlan is the read a query needs: ranges and a direction.
type msgPlan struct {
	ranges   []*msgReadRange
	parts    map[int32]msgPartRange
	limited  map[int32]bool // the budget cut the partition's range
	backward bool
}

// msgPlanRead works out the offsets q reads in each partition of prs. A
// filtered read is bounded by q.Budget, split over the partitions, and
// narrowed by the broker's time index when the filter has a time range.
// An export (all) reads every record of the ranges within the budget,
// not one page.
func msgPlanRead(ctx context.Context, adm *kadm.Client, q msgQuery, prs []msgPartRange, all bool) (msgPlan, error) {
	pl := msgPlan{parts: map[int32]msgPartRange{}, limited: map[int32]bool{}}
	lo, hi := map[int32]int64{}, map[int32]int64{}
	var sel []msgPartRange
	for _, pr := range prs {
		if q.Partition < 0 || pr.P == q.Partition {
			sel = append(sel, pr)
		}
	}
	prs = sel
	for _, pr := range prs {
		pl.parts[pr.P] = pr
		lo[pr.P], hi[pr.P] = pr.Start, pr.End
	}
	clamp := func(p int32, o int64) int64 { return min(max(o, pl.parts[p].Start), pl.parts[p].End) }
	switch {
	case q.Cursor != nil && q.Cursor.Older:
		pl.backward = true
		for p := range pl.parts {
			if b, ok := q.Cursor.Bounds[p]; ok {
				hi[p] = clamp(p, b)
			} else {
				hi[p] = lo[p]
			}
		}
	case q.Cursor != nil:
		for p := range pl.parts {
			if b, ok := q.Cursor.Bounds[p]; ok {
				lo[p] = clamp(p, b)
			} else {
				lo[p] = hi[p]
			}
		}
	case q.Start == "newest":
		pl.backward = true
	case q.Start == "offset":
		for p := range pl.parts {
			lo[p] = clamp(p, q.Offset)
		}
	case q.Start == "time":
		at, err := msgOffsetsAfter(ctx, adm, q.Topic, q.Time)
		if err != nil {
			return pl, err
		}
		for p := range pl.parts {
			if o, ok := at[p]; ok {
				lo[p] = max(lo[p], clamp(p, o))
			}
		}
	}
	f := q.Filter
	if f.active() {
		// The time filters narrow the scan the way a Kafka seek by
		// timestamp does (the first offset at or after the time).
		if !f.From.IsZero() {
			at, err := msgOffsetsAfter(ctx, adm, q.Topic, f.From)
			if err != nil {
				return pl, err
			}
			for p, o := range at {
				if _, ok := lo[p]; ok {
					lo[p] = max(lo[p], o)
				}
			}
		}
		if !f.To.IsZero() {
			at, err := msgOffsetsAfter(ctx, adm, q.Topic, f.To)
			if err != nil {
				return pl, err
			}
			for p, o := range at {
				if _, ok := hi[p]; ok {
					hi[p] = min(hi[p], o)
				}
			}
		}
	}
	sizes := map[int32]int64{}
	for p := range pl.parts {
		hi[p] = max(hi[p], lo[p])
		sizes[p] = hi[p] - lo[p]
	}
	bounded := f.active() || all
	var shares map[int32]int64
	if bounded {
		shares = msgBudgetShares(sizes, q.Budget)
	}
	for _, pr := range prs {
		p := pr.P
		r := &msgReadRange{P: p, From: lo[p], To: hi[p]}
		pl.limited[p] = bounded && shares[p] < sizes[p]
		switch {
		case pl.backward && bounded:
			r.From = hi[p] - shares[p]
		case pl.backward:
			r.From = max(lo[p], hi[p]-int64(q.Limit))
		case bounded:
			r.To = lo[p] + shares[p]
		default:
			r.To = min(hi[p], lo[p]+int64(q.Limit))
		}
		pl.ranges = append(pl.ranges, r)
	}
	return pl, nil
}

// msgOffsetsAfter is each partition's first offset with a timestamp at or
// after t (the end offset when there is none).
func msgOffsetsAfter(ctx context.Context, adm *kadm.Client, topic string, t time.Time) (map[int32]int64, error) {
	ls, err := adm.ListOffsetsAfterMilli(ctx, t.UnixMilli(), topic)
	if err != nil {
		return nil, err
	}
	out := map[int32]int64{}
	var ferr error
	ls.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			ferr = msgBrokerError(o.Err)
			return
		}
		out[o.Partition] = o.Offset
	})
	return out, ferr
}

// msgBrowse reads one page of q from the broker: without a filter the
// records around the start position, with one a bounded scan (progress
// is called as it goes). idle bounds each poll.
func (c *Console) msgBrowse(ctx context.Context, q msgQuery, pl msgPlan, idle time.Duration, progress func(*msgResult)) (*msgResult, error) {
	res := &msgResult{Source: "broker", Newest: pl.backward}
	filtered := q.Filter.active()
	lists := map[int32][]*msgRecord{}
	matches := map[int32]int64{}
	snapshot := func() {
		res.Parts = res.Parts[:0]
		res.Scanned, res.Planned, res.Matches = 0, 0, 0
		for _, r := range pl.ranges {
			res.Parts = append(res.Parts, msgPartProgress{P: r.P, Scanned: r.Pos - r.From, Total: r.To - r.From, Matches: matches[r.P]})
			res.Scanned += r.Pos - r.From
			res.Planned += r.To - r.From
			res.Matches += matches[r.P]
		}
	}
	fn := func(kr *kgo.Record) bool {
		rec := msgFromKgo(kr)
		if filtered && !q.Filter.match(rec) {
			return true
		}
		matches[rec.Partition]++
		l := append(lists[rec.Partition], rec)
		if pl.backward && len(l) > q.Limit {
			l = l[1:] // keep the partition's newest Limit matches
		}
		lists[rec.Partition] = l
		// Forward, a partition's first Limit matches are all a page can
		// show of it.
		return pl.backward || len(l) < q.Limit
	}
	var prog func()
	if progress != nil {
		prog = func() { snapshot(); progress(res) }
	}
	err := c.msgReadRanges(ctx, q.Topic, pl.ranges, idle, fn, prog)
	if err != nil && ctx.Err() == nil {
		return nil, err
	}
	res.Timeout = err != nil
	snapshot()
	for _, pr := range pl.parts {
		res.Held += pr.End - pr.Start
	}
	res.Records = msgMergeByTime(lists, q.Limit, pl.backward)
	msgPageCursors(q, pl, res, lists)
	return res, nil
}

// msgPageCursors sets the result's Older and Newer cursors: per partition,
// the first record a page in that direction must show, so paging skips
// nothing.
func msgPageCursors(q msgQuery, pl msgPlan, res *msgResult, lists map[int32][]*msgRecord) {
	shownMin, shownMax, shown := map[int32]int64{}, map[int32]int64{}, map[int32]int{}
	matches := map[int32]int64{}
	for _, pp := range res.Parts {
		matches[pp.P] = pp.Matches
	}
	for _, r := range res.Records {
		shown[r.Partition]++
		if o, ok := shownMin[r.Partition]; !ok || r.Offset < o {
			shownMin[r.Partition] = r.Offset
		}
		if o, ok := shownMax[r.Partition]; !ok || r.Offset > o {
			shownMax[r.Partition] = r.Offset
		}
	}
	older := &msgCursor{Older: true, Bounds: map[int32]int64{}}
	newer := &msgCursor{Bounds: map[int32]int64{}}
	hasOlder, hasNewer := false, false
	for _, r := range pl.ranges {
		pr := pl.parts[r.P]
		l := lists[r.P]
		if pl.backward {
			b := r.To // nothing shown and the range not read to its end: read it again
			switch o, ok := shownMin[r.P]; {
			case r.done() && r.From == pr.Start && matches[r.P] == int64(shown[r.P]):
				b = pr.Start // the whole partition was read and every match is shown
			case ok:
				b = o
			case len(l) > 0:
				b = l[len(l)-1].Offset + 1
			case r.done():
				b = r.From
			}
			older.Bounds[r.P], newer.Bounds[r.P] = b, r.To
			hasOlder = hasOlder || b > pr.Start
			hasNewer = hasNewer || r.To < pr.End
			res.Budget = res.Budget || pl.limited[r.P]
		} else {
			b := r.Pos
			switch o, ok := shownMax[r.P]; {
			case ok:
				b = o + 1
			case len(l) > 0:
				b = l[0].Offset
			}
			newer.Bounds[r.P], older.Bounds[r.P] = b, r.From
			hasNewer = hasNewer || b < pr.End
			hasOlder = hasOlder || r.From > pr.Start
			res.Budget = res.Budget || (pl.limited[r.P] && r.done() && len(res.Records) < q.Limit)
		}
		if !r.done() && !r.Stopped {
			res.Incomplete = append(res.Incomplete, r.P)
		}
	}
	if hasOlder {
		res.Older = older
	}
	if hasNewer {
		res.Newer = newer
	}
}

// msgPageRanges reads topic's partitions for q: 404, 400 or the ranges.
func (c *Console) msgPageRanges(ctx context.Context, q msgQuery) ([]msgPartRange, *kadm.Client, error) {
	_, adm, err := c.client()
	if err != nil {
		return nil, nil, err
	}
	prs, err := msgPartitionRanges(ctx, adm, q.Topic, q.Partition)
	return prs, adm, err
}
