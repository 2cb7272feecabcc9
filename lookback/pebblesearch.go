package lookback

import (
	"bytes"
	"container/list"
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// plan is how a search walks the index: the key range of one index (the
// most selective equality filter the query has, else the time index),
// within which every key ends with ts8 seq8, and the filters left to
// check on each event.
type plan struct {
	prefix   []byte
	lo, hi   []byte
	residual bool // other equality filters to check on the event
}

// planQuery picks the index: ce_id, key, correlation id, causation id,
// subject, source, type, topic, time; the earlier ones have fewer events
// per value.
func planQuery(q *Query, cur *cursor) plan {
	type cand struct {
		field byte
		v     []byte
		on    bool
	}
	cands := []cand{
		{kID, []byte(q.ID), q.ID != ""}, {kKey, q.Key, q.HasKey}, {kCorr, []byte(q.CorrelationID), q.CorrelationID != ""},
		{kCaus, []byte(q.CausationID), q.CausationID != ""}, {kSubject, []byte(q.Subject), q.Subject != ""},
		{kSource, []byte(q.Source), q.Source != ""}, {kType, []byte(q.Type), q.Type != ""}, {kTopic, []byte(q.Topic), q.Topic != ""},
	}
	p := plan{prefix: []byte{kTime}}
	n := 0
	for _, c := range cands {
		if !c.on {
			continue
		}
		if n == 0 {
			p.prefix = idxPrefix(c.field, c.v)
		}
		n++
	}
	p.residual = n > 1
	p.lo, p.hi = p.prefix, prefixEnd(p.prefix)
	if !q.From.IsZero() {
		p.lo = ts8(bytes.Clone(p.prefix), q.From.UnixMilli())
	}
	if !q.To.IsZero() {
		p.hi = ts8(bytes.Clone(p.prefix), q.To.UnixMilli())
	}
	if cur != nil {
		at := binary.BigEndian.AppendUint64(ts8(bytes.Clone(p.prefix), cur.ts), uint64(cur.seq))
		if q.Oldest {
			// The first key after (ts, seq).
			at = binary.BigEndian.AppendUint64(ts8(bytes.Clone(p.prefix), cur.ts), uint64(cur.seq)+1)
			if bytes.Compare(at, p.lo) > 0 {
				p.lo = at
			}
		} else if bytes.Compare(at, p.hi) < 0 {
			p.hi = at
		}
	}
	return p
}

// matchAttrs checks q's equality filters on e.
func (q *Query) matchAttrs(e *Event) bool {
	return (q.Topic == "" || e.Topic == q.Topic) && (!q.HasKey || (e.Key != nil && bytes.Equal(e.Key, q.Key))) &&
		(q.ID == "" || e.ID == q.ID) && (q.Type == "" || e.Type == q.Type) && (q.Source == "" || e.Source == q.Source) &&
		(q.Subject == "" || e.Subject == q.Subject) && (q.CorrelationID == "" || e.CorrelationID == q.CorrelationID) &&
		(q.CausationID == "" || e.CausationID == q.CausationID)
}

// keySeq reads the ts and seq at the end of an index key.
func keySeq(k []byte) (ts, seq int64) {
	n := len(k)
	return int64(binary.BigEndian.Uint64(k[n-16:]) ^ 1<<63), int64(binary.BigEndian.Uint64(k[n-8:]))
}

// walk calls fn with the index keys of p in q's order until fn returns
// false.
func (s *pebbleStore) walk(ctx context.Context, p plan, oldest bool, fn func(ts, seq int64) (bool, error)) error {
	if p.hi != nil && bytes.Compare(p.lo, p.hi) >= 0 {
		return nil
	}
	it, err := s.db.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: p.lo, UpperBound: p.hi})
	if err != nil {
		return fmt.Errorf("lookback: search: %w", err)
	}
	ok := it.Last()
	if oldest {
		ok = it.First()
	}
	for ; ok; ok = stepIter(it, oldest) {
		k := it.Key()
		if len(k) < len(p.prefix)+16 {
			continue
		}
		more, err := fn(keySeq(k))
		if err != nil || !more {
			it.Close()
			return err
		}
	}
	if err := it.Close(); err != nil {
		return fmt.Errorf("lookback: search: %w", err)
	}
	return nil
}

func stepIter(it *pebble.Iterator, oldest bool) bool {
	if oldest {
		return it.Next()
	}
	return it.Prev()
}

// searchBatch is how many index candidates a search of several equality
// filters or a payload filter collects before it reads their blocks (in
// parallel); a search answered by its index alone collects its limit.
const searchBatch = 64

func (s *pebbleStore) Search(ctx context.Context, q Query) (Page, error) {
	if err := q.Validate(); err != nil {
		return Page{}, err
	}
	limit := cmpOr(q.Limit, 100)
	maxScan := cmpOr(q.MaxScan, 100_000)
	var cur *cursor
	if q.Cursor != "" {
		c, _ := parseCursor(q.Cursor)
		cur = &c
	}
	p := planQuery(&q, cur)
	checked := p.residual || q.filtered()
	batch := limit
	if checked {
		batch = min(limit, searchBatch)
	}
	var page Page
	var last cursor
	full, done := false, false
	var cands []cursor
	rd := s.newBlockReader()
	// examine reads the candidates' blocks (in parallel) and keeps, in
	// index order, the events that match, until the page is full or
	// the scan bound is reached.
	examine := func() error {
		seqs := make([]int64, len(cands))
		for i, c := range cands {
			seqs[i] = c.seq
		}
		if err := rd.prefetch(seqs); err != nil {
			return err
		}
		for _, c := range cands {
			if full {
				page.Next, done = last.String(), true
				return nil
			}
			e, err := rd.event(c.seq)
			if err != nil {
				return err
			}
			last = c
			if e == nil {
				continue // erased after the key was read
			}
			if checked {
				page.Scanned++
			}
			if q.matchAttrs(e) && q.match(e) {
				page.Events = append(page.Events, e)
				full = len(page.Events) == limit
			}
			if checked && page.Scanned >= maxScan {
				page.Next, done = last.String(), true
				return nil
			}
		}
		cands = cands[:0]
		return nil
	}
	err := s.walk(ctx, p, q.Oldest, func(ts, seq int64) (bool, error) {
		if full {
			// One more candidate exists past a full page.
			page.Next, done = last.String(), true
			return false, nil
		}
		if cands = append(cands, cursor{ts, seq}); len(cands) < batch {
			return true, nil
		}
		err := examine()
		return !done, err
	})
	if err == nil && !done && len(cands) > 0 {
		err = examine()
	}
	if err != nil {
		return Page{}, err
	}
	if !q.filtered() && !p.residual {
		page.Scanned = 0
	}
	return page, nil
}

// Count counts the events matching q's equality filters and time range
// (not its payload filters), reading only index keys unless two or more
// equality filters are combined.
func (s *pebbleStore) Count(ctx context.Context, q Query) (int64, error) {
	p := planQuery(&q, nil)
	var n int64
	err := s.walk(ctx, p, true, func(_, seq int64) (bool, error) {
		if !p.residual {
			n++
			return true, nil
		}
		e, err := s.event(seq)
		if err != nil {
			return false, err
		}
		if e != nil && q.matchAttrs(e) {
			n++
		}
		return true, nil
	})
	return n, err
}

// Erase removes the key's events: their index keys go, and each block
// holding one is written again without it (to the end of the body log)
// before the old frame is overwritten with zeros, so no copy of an
// erased payload stays in the store's files.
func (s *pebbleStore) Erase(ctx context.Context, key []byte, topic string) (int64, error) {
	if key == nil {
		key = []byte{}
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	byBlock := map[uint64][]int64{}
	p := planQuery(&Query{Key: key, HasKey: true}, nil)
	if err := s.walk(ctx, p, true, func(_, seq int64) (bool, error) {
		byBlock[uint64(seq)>>16] = append(byBlock[uint64(seq)>>16], seq)
		return true, nil
	}); err != nil {
		return 0, fmt.Errorf("lookback: erase: %w", err)
	}
	var removed int64
	for id, seqs := range byBlock {
		n, err := s.eraseInBlockLocked(id, seqs, topic)
		removed += n
		if err != nil {
			return removed, err
		}
	}
	if removed > 0 {
		// The index keys carry the key itself: compact its range so the
		// deleted entries leave Pebble's files too, not only its view.
		if err := s.db.Compact(ctx, p.lo, p.hi, false); err != nil {
			return removed, fmt.Errorf("lookback: erase: compact the index: %w", err)
		}
	}
	return removed, nil
}

func (s *pebbleStore) eraseInBlockLocked(id uint64, seqs []int64, topic string) (int64, error) {
	m, ok, err := s.meta(id)
	if err != nil || !ok {
		return 0, err
	}
	bl, _, err := s.block(id)
	if err != nil {
		return 0, err
	}
	b := s.db.NewBatch()
	defer b.Close()
	count := s.count
	erase := map[int]bool{}
	var keys [][]byte
	for _, seq := range seqs {
		e, err := bl.event(int(seq&0xffff), seq)
		if err != nil {
			return 0, err
		}
		if e == nil || (topic != "" && e.Topic != topic) {
			continue
		}
		erase[int(seq&0xffff)] = true
		for _, k := range indexKeys(keys[:0], e) {
			b.Delete(k, nil)
		}
		b.Delete(posKey(e.Topic, e.Partition, e.Offset), nil)
		m.live--
		m.liveRaw -= int64(e.Size)
		count.events--
		count.raw -= int64(e.Size)
	}
	if len(erase) == 0 {
		return 0, nil
	}
	old := m.loc
	if m.live == 0 {
		b.Delete(blockKey(id), nil)
		count.stored -= int64(old.n)
	} else {
		entries := make([][]byte, len(bl.slots)-1)
		for i := range entries {
			if !erase[i] {
				entries[i] = bl.raw[bl.slots[i]:bl.slots[i+1]]
			}
		}
		raw := layoutBlock(entries, len(bl.raw))
		locs, err := s.log.append(compressAll([][]byte{raw}), []uint64{id})
		if err != nil {
			return 0, err
		}
		m.loc, m.raw = locs[0], int64(len(raw))
		count.stored += int64(m.loc.n - old.n)
		b.Set(blockKey(id), m.encode(), nil)
	}
	b.Set([]byte{kCounters}, count.encode(), nil)
	if err := b.Commit(pebble.Sync); err != nil {
		return 0, fmt.Errorf("lookback: erase: %w", err)
	}
	s.count = count
	s.cache.drop(old)
	if m.live > 0 {
		s.segLive[m.loc.seg]++
	}
	s.segLive[old.seg]--
	if err := s.log.wipe(old); err != nil {
		return int64(len(erase)), err
	}
	if s.segLive[old.seg] <= 0 {
		delete(s.segLive, old.seg)
		if err := s.log.remove(old.seg); err != nil {
			return int64(len(erase)), err
		}
	}
	return int64(len(erase)), nil
}

// Retain drops whole blocks: those whose newest event is older than
// cutoff, then the oldest beyond maxBytes of compressed payload. A
// segment file goes when its last block does.
func (s *pebbleStore) Retain(ctx context.Context, cutoff time.Time, maxBytes int64) (int64, error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	type blk struct {
		id uint64
		m  blockMeta
	}
	var all []blk
	it, err := s.db.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: []byte{kBlock}, UpperBound: []byte{kBlock + 1}})
	if err != nil {
		return 0, fmt.Errorf("lookback: retain: %w", err)
	}
	for ok := it.First(); ok; ok = it.Next() {
		m, err := decodeBlockMeta(it.Value())
		if err != nil {
			it.Close()
			return 0, err
		}
		all = append(all, blk{binary.BigEndian.Uint64(it.Key()[1:]), m})
	}
	if err := it.Close(); err != nil {
		return 0, fmt.Errorf("lookback: retain: %w", err)
	}
	drop := map[uint64]bool{}
	if !cutoff.IsZero() {
		for _, b := range all {
			if b.m.maxTS < cutoff.UnixMilli() {
				drop[b.id] = true
			}
		}
	}
	if maxBytes > 0 {
		var total int64
		for i := len(all) - 1; i >= 0; i-- {
			if total += int64(all[i].m.loc.n); total > maxBytes {
				drop[all[i].id] = true
			}
		}
	}
	var removed int64
	for _, b := range all {
		if !drop[b.id] {
			continue
		}
		n, err := s.dropBlockLocked(b.id, b.m)
		removed += n
		if err != nil {
			return removed, err
		}
	}
	return removed, nil
}

func (s *pebbleStore) dropBlockLocked(id uint64, m blockMeta) (int64, error) {
	bl, ok, err := s.block(id)
	if err != nil || !ok {
		return 0, err
	}
	b := s.db.NewBatch()
	defer b.Close()
	var keys [][]byte
	var n int64
	for i := range len(bl.slots) - 1 {
		seq := int64(id)<<16 | int64(i)
		e, err := bl.event(i, seq)
		if err != nil {
			return 0, err
		}
		if e == nil {
			continue
		}
		for _, k := range indexKeys(keys[:0], e) {
			b.Delete(k, nil)
		}
		b.Delete(posKey(e.Topic, e.Partition, e.Offset), nil)
		n++
	}
	b.Delete(blockKey(id), nil)
	count := s.count
	count.events -= int64(m.live)
	count.raw -= m.liveRaw
	count.stored -= int64(m.loc.n)
	b.Set([]byte{kCounters}, count.encode(), nil)
	if err := b.Commit(pebble.Sync); err != nil {
		return 0, fmt.Errorf("lookback: retain: %w", err)
	}
	s.count = count
	s.cache.drop(m.loc)
	if s.segLive[m.loc.seg]--; s.segLive[m.loc.seg] <= 0 {
		delete(s.segLive, m.loc.seg)
		if err := s.log.remove(m.loc.seg); err != nil {
			return n, err
		}
	}
	return n, nil
}

// blockCache keeps recently read blocks decompressed, least recently
// used out first, up to a byte budget: a key's or a flow's events are
// read again and again by searches and flows.
type blockCache struct {
	max int64
	mu  struct {
		sync.Mutex
		size  int64
		lru   *list.List // of *cacheEntry, most recent at the front
		items map[loc]*list.Element
	}
}

type cacheEntry struct {
	at loc
	bl *block
}

func newBlockCache(max int64) *blockCache {
	c := &blockCache{max: max}
	c.mu.lru = list.New()
	c.mu.items = map[loc]*list.Element{}
	return c
}

func (c *blockCache) get(at loc) *block {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.mu.items[at]
	if !ok {
		return nil
	}
	c.mu.lru.MoveToFront(el)
	return el.Value.(*cacheEntry).bl
}

func (c *blockCache) put(at loc, bl *block) {
	if c.max <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.mu.items[at]; ok {
		return
	}
	c.mu.items[at] = c.mu.lru.PushFront(&cacheEntry{at, bl})
	c.mu.size += int64(len(bl.raw))
	for c.mu.size > c.max && c.mu.lru.Len() > 1 {
		el := c.mu.lru.Back()
		c.removeLocked(el)
	}
}

func (c *blockCache) drop(at loc) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.mu.items[at]; ok {
		c.removeLocked(el)
	}
}

func (c *blockCache) removeLocked(el *list.Element) {
	e := el.Value.(*cacheEntry)
	c.mu.lru.Remove(el)
	delete(c.mu.items, e.at)
	c.mu.size -= int64(len(e.bl.raw))
}

func sortReplays(rs []ReplayState) {
	slices.SortFunc(rs, func(a, b ReplayState) int {
		if c := b.Created.Compare(a.Created); c != 0 {
			return c
		}
		return strings.Compare(b.ID, a.ID)
	})
}

func sortReceipts(rs []Receipt) {
	slices.SortFunc(rs, func(a, b Receipt) int {
		if c := a.Time.Compare(b.Time); c != 0 {
			return c
		}
		return strings.Compare(a.Group, b.Group)
	})
}

// blockReader reads the blocks of one search's candidates: those of a
// batch in parallel (a key's events are each in a different block, so a
// search of one key waits for one read and decompression per event, and
// parallel reads overlap them), each once per batch (a time or topic
// search's consecutive candidates share blocks: one index lookup and
// cache probe per block instead of per event).
type blockReader struct {
	s      *pebbleStore
	blocks map[uint64]*block // the current batch's; nil: gone
}

func (s *pebbleStore) newBlockReader() *blockReader {
	return &blockReader{s: s, blocks: map[uint64]*block{}}
}

// readParallel is how many blocks a search reads at once.
const readParallel = 8

// prefetch loads the blocks of seqs, keeping those of the previous batch
// it needs again and forgetting the others.
func (rd *blockReader) prefetch(seqs []int64) error {
	next := make(map[uint64]*block, len(rd.blocks))
	var ids []uint64
	for _, seq := range seqs {
		id := uint64(seq) >> 16
		if _, ok := next[id]; ok {
			continue
		}
		bl, ok := rd.blocks[id]
		next[id] = bl
		if !ok {
			ids = append(ids, id)
		}
	}
	rd.blocks = next
	if len(ids) == 1 {
		_, err := rd.load(ids[0])
		return err
	}
	bls := make([]*block, len(ids))
	errs := make([]error, len(ids))
	var wg sync.WaitGroup
	sem := make(chan struct{}, readParallel)
	for i, id := range ids {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			bl, ok, err := rd.s.block(id)
			if ok {
				bls[i] = bl
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for i, id := range ids {
		if errs[i] != nil {
			return errs[i]
		}
		rd.blocks[id] = bls[i]
	}
	return nil
}

// load reads block id into the batch.
func (rd *blockReader) load(id uint64) (*block, error) {
	bl, ok, err := rd.s.block(id)
	if err != nil {
		return nil, err
	}
	if !ok {
		bl = nil
	}
	rd.blocks[id] = bl
	return bl, nil
}

// event decodes the event seq from its block (loaded if prefetch did
// not), or returns nil if it is gone.
func (rd *blockReader) event(seq int64) (*Event, error) {
	id := uint64(seq) >> 16
	bl, ok := rd.blocks[id]
	if !ok {
		var err error
		if bl, err = rd.load(id); err != nil {
			return nil, err
		}
	}
	if bl == nil {
		return nil, nil
	}
	e, err := bl.event(int(seq&0xffff), seq)
	if err != nil {
		return nil, fmt.Errorf("lookback: event %d of block %d: %w", seq&0xffff, seq>>16, err)
	}
	return e, nil
}
