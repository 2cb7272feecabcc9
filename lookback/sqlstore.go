package lookback

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spoolmq/spool/event"
)

// sqlStore is the Store over database/sql, shared by the embedded SQLite
// store and the PostgreSQL store; dialect holds what differs.
//
// Tables:
//
//	blocks(id, data, n, raw, stored, min_ts, max_ts)
//	    zstd-compressed concatenated bodies (see body.go); n live events
//	events(seq, topic, part, off, ts, key, ce_id, ce_type, ce_source,
//	       ce_subject, correlation_id, causation_id, boff, blen, size)
//	    seq = block<<16 | index in block: unique, in archive order, and the
//	    events of block b are the seq range [b<<16, (b+1)<<16)
//	receipts(grp, topic, part, off, event_id, outcome, attempts,
//	         duration_ms, ts)
//	replays(id, state)
type sqlStore struct {
	w, r *sql.DB // writer and readers (the same pool on PostgreSQL)
	d    dialect
}

type dialect struct {
	name     string
	ddl      []string
	dollar   bool   // $1 placeholders instead of ?
	maxBatch int    // rows per multi-row INSERT
	prefix   string // of table names, e.g. "lookback_" in a shared PostgreSQL database
}

var tableRE = regexp.MustCompile(`\b(blocks|events|receipts|replays)\b`)

// q rewrites ? placeholders for the dialect.
func (d dialect) q(s string) string {
	if d.prefix != "" {
		s = tableRE.ReplaceAllString(s, d.prefix+"$1")
	}
	if !d.dollar {
		return s
	}
	var b strings.Builder
	n := 0
	for _, c := range s {
		if c == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteRune(c)
	}
	return b.String()
}

func (s *sqlStore) migrate(ctx context.Context) error {
	for _, stmt := range s.d.ddl {
		if _, err := s.w.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("lookback: %s schema: %w", s.d.name, err)
		}
	}
	return nil
}

func (s *sqlStore) Close() error {
	err := s.w.Close()
	if s.r != s.w {
		err = errors.Join(err, s.r.Close())
	}
	return err
}

// attrs are the indexed attributes read from a record's headers.
type attrs struct{ id, typ, source, subject, corr, caus string }

func attrsOf(hs []Header) attrs {
	var a attrs
	for _, h := range hs {
		switch h.Key {
		case event.HeaderID:
			a.id = string(h.Value)
		case event.HeaderType:
			a.typ = string(h.Value)
		case event.HeaderSource:
			a.source = string(h.Value)
		case event.HeaderSubject:
			a.subject = string(h.Value)
		case event.HeaderCorrelationID:
			a.corr = string(h.Value)
		case event.HeaderCausationID:
			a.caus = string(h.Value)
		}
	}
	return a
}

func nullStr(s string) any {
	if s == "" {
		return nil
	}
	return s
}

const eventCols = "seq, topic, part, off, ts, key, ce_id, ce_type, ce_source, ce_subject, correlation_id, causation_id, boff, blen, size"

// Append writes rs as blocks of about blockTarget raw bytes in one
// transaction. The blocks are encoded and compressed (in parallel) before
// the transaction starts, so the write lock is held only for the inserts.
func (s *sqlStore) Append(ctx context.Context, rs []Record) error {
	if len(rs) == 0 {
		return nil
	}
	chunks := splitBlocks(rs)
	raws := make([][]byte, len(chunks))
	offs := make([][]int, len(chunks))
	for i, c := range chunks {
		raws[i], offs[i] = encodeBodies(c)
	}
	datas := compressAll(raws)
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("lookback: append: %w", err)
	}
	defer tx.Rollback()
	ins := &eventInserter{s: s, tx: tx}
	defer ins.close()
	for i, c := range chunks {
		if err := s.appendBlock(ctx, tx, ins, c, raws[i], offs[i], datas[i]); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("lookback: append commit: %w", err)
	}
	return nil
}

// encodeBodies concatenates the bodies of rs; offs[i] is where body i
// starts and offs[len(rs)] the end.
func encodeBodies(rs []Record) (raw []byte, offs []int) {
	offs = make([]int, len(rs)+1)
	for i, r := range rs {
		raw = appendBody(raw, r.Headers, r.Value)
		offs[i+1] = len(raw)
	}
	return raw, offs
}

// eventInserter runs the multi-row INSERT of events, keeping the
// statement of a full chunk (maxBatch rows) prepared for the whole
// transaction: building and parsing a 3,840-parameter statement per chunk
// was a tenth of an append's CPU.
type eventInserter struct {
	s    *sqlStore
	tx   *sql.Tx
	full *sql.Stmt
}

func (ins *eventInserter) close() {
	if ins.full != nil {
		ins.full.Close()
	}
}

func (ins *eventInserter) sql(n int) string {
	var q strings.Builder
	q.WriteString("INSERT INTO events (" + eventCols + ") VALUES ")
	for i := range n {
		if i > 0 {
			q.WriteByte(',')
		}
		q.WriteString("(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)")
	}
	q.WriteString(" ON CONFLICT (topic, part, off) DO NOTHING")
	return ins.s.d.q(q.String())
}

func (ins *eventInserter) exec(ctx context.Context, n int, args []any) (int64, error) {
	var res sql.Result
	var err error
	if n == ins.s.d.maxBatch {
		if ins.full == nil {
			if ins.full, err = ins.tx.PrepareContext(ctx, ins.sql(n)); err != nil {
				return 0, err
			}
		}
		res, err = ins.full.ExecContext(ctx, args...)
	} else {
		res, err = ins.tx.ExecContext(ctx, ins.sql(n), args...)
	}
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func (s *sqlStore) appendBlock(ctx context.Context, tx *sql.Tx, ins *eventInserter, rs []Record, raw []byte, offs []int, data []byte) error {
	minTS, maxTS := rs[0].Timestamp.UnixMilli(), rs[0].Timestamp.UnixMilli()
	for _, r := range rs {
		ts := r.Timestamp.UnixMilli()
		minTS, maxTS = min(minTS, ts), max(maxTS, ts)
	}
	var id int64
	err := tx.QueryRowContext(ctx, s.d.q(`INSERT INTO blocks (data, n, raw, stored, min_ts, max_ts) VALUES (?, 0, ?, ?, ?, ?) RETURNING id`),
		data, len(raw), len(data), minTS, maxTS).Scan(&id)
	if err != nil {
		return fmt.Errorf("lookback: append block: %w", err)
	}
	var inserted int64
	args := make([]any, 0, 15*min(s.d.maxBatch, len(rs)))
	for start := 0; start < len(rs); start += s.d.maxBatch {
		end := min(start+s.d.maxBatch, len(rs))
		args = args[:0]
		for i := start; i < end; i++ {
			r := rs[i]
			a := attrsOf(r.Headers)
			var key any
			if r.Key != nil {
				key = r.Key
			}
			args = append(args, id<<16|int64(i), r.Topic, r.Partition, r.Offset, r.Timestamp.UnixMilli(), key,
				nullStr(a.id), nullStr(a.typ), nullStr(a.source), nullStr(a.subject), nullStr(a.corr), nullStr(a.caus),
				offs[i], offs[i+1]-offs[i], recordSize(r))
		}
		n, err := ins.exec(ctx, end-start, args)
		if err != nil {
			return fmt.Errorf("lookback: append events: %w", err)
		}
		inserted += n
	}
	if inserted == 0 {
		// Every record was a redelivery: drop the block.
		_, err = tx.ExecContext(ctx, s.d.q(`DELETE FROM blocks WHERE id = ?`), id)
	} else {
		_, err = tx.ExecContext(ctx, s.d.q(`UPDATE blocks SET n = ? WHERE id = ?`), inserted, id)
	}
	if err != nil {
		return fmt.Errorf("lookback: append block count: %w", err)
	}
	return nil
}

// recordSize is the raw size of r's key, headers and value.
func recordSize(r Record) int {
	size := len(r.Key) + len(r.Value)
	for _, h := range r.Headers {
		size += len(h.Key) + len(h.Value)
	}
	return size
}

// row is an events row before its body is read.
type row struct {
	ev         Event
	boff, blen int
}

func scanRow(rows *sql.Rows) (*row, error) {
	var r row
	var ts int64
	var id, typ, src, subj, corr, caus sql.NullString
	if err := rows.Scan(&r.ev.seq, &r.ev.Topic, &r.ev.Partition, &r.ev.Offset, &ts, &r.ev.Key,
		&id, &typ, &src, &subj, &corr, &caus, &r.boff, &r.blen, &r.ev.Size); err != nil {
		return nil, fmt.Errorf("lookback: read event: %w", err)
	}
	r.ev.Timestamp = time.UnixMilli(ts).UTC()
	r.ev.ID, r.ev.Type, r.ev.Source, r.ev.Subject = id.String, typ.String, src.String, subj.String
	r.ev.CorrelationID, r.ev.CausationID = corr.String, caus.String
	return &r, nil
}

// fill reads the bodies of rows, decompressing each block once.
func (s *sqlStore) fill(ctx context.Context, db interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}, rs []*row) error {
	need := map[int64]bool{}
	for _, r := range rs {
		need[r.ev.seq>>16] = true
	}
	if len(need) == 0 {
		return nil
	}
	ids := make([]any, 0, len(need))
	for id := range need {
		ids = append(ids, id)
	}
	blocks := make(map[int64][]byte, len(ids))
	for start := 0; start < len(ids); start += 500 {
		chunk := ids[start:min(start+500, len(ids))]
		q := `SELECT id, data FROM blocks WHERE id IN (` + strings.TrimSuffix(strings.Repeat("?,", len(chunk)), ",") + `)`
		rows, err := db.QueryContext(ctx, s.d.q(q), chunk...)
		if err != nil {
			return fmt.Errorf("lookback: read blocks: %w", err)
		}
		for rows.Next() {
			var id int64
			var data []byte
			if err := rows.Scan(&id, &data); err != nil {
				rows.Close()
				return fmt.Errorf("lookback: read blocks: %w", err)
			}
			raw, err := decompress(data)
			if err != nil {
				rows.Close()
				return err
			}
			blocks[id] = raw
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("lookback: read blocks: %w", err)
		}
	}
	for _, r := range rs {
		raw, ok := blocks[r.ev.seq>>16]
		if !ok || r.boff+r.blen > len(raw) || r.boff < 0 {
			return fmt.Errorf("lookback: event %s/%d/%d: %w", r.ev.Topic, r.ev.Partition, r.ev.Offset, errBody)
		}
		hs, v, err := parseBody(raw[r.boff : r.boff+r.blen])
		if err != nil {
			return fmt.Errorf("lookback: event %s/%d/%d: %w", r.ev.Topic, r.ev.Partition, r.ev.Offset, err)
		}
		r.ev.Headers, r.ev.Value = hs, v
	}
	return nil
}

func (s *sqlStore) Get(ctx context.Context, topic string, partition int32, offset int64) (*Event, error) {
	rows, err := s.r.QueryContext(ctx, s.d.q(`SELECT `+eventCols+` FROM events WHERE topic = ? AND part = ? AND off = ?`), topic, partition, offset)
	if err != nil {
		return nil, fmt.Errorf("lookback: get: %w", err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("lookback: get: %w", err)
		}
		return nil, fmt.Errorf("%w: no event %s/%d/%d in the archive", ErrNotFound, topic, partition, offset)
	}
	r, err := scanRow(rows)
	if err != nil {
		return nil, err
	}
	rows.Close()
	if err := s.fill(ctx, s.r, []*row{r}); err != nil {
		return nil, err
	}
	return &r.ev, nil
}

// where builds the SQL condition of q's indexed filters.
func (q *Query) where() (string, []any) {
	var conds []string
	var args []any
	add := func(cond string, v any) { conds = append(conds, cond); args = append(args, v) }
	if q.Topic != "" {
		add("topic = ?", q.Topic)
	}
	if q.HasKey {
		add("key = ?", q.Key)
	}
	for _, f := range []struct{ col, v string }{{"ce_id", q.ID}, {"ce_type", q.Type}, {"ce_source", q.Source},
		{"ce_subject", q.Subject}, {"correlation_id", q.CorrelationID}, {"causation_id", q.CausationID}} {
		if f.v != "" {
			add(f.col+" = ?", f.v)
		}
	}
	if !q.From.IsZero() {
		add("ts >= ?", q.From.UnixMilli())
	}
	if !q.To.IsZero() {
		add("ts < ?", q.To.UnixMilli())
	}
	if len(conds) == 0 {
		return "", nil
	}
	return " WHERE " + strings.Join(conds, " AND "), args
}

// Validate reports whether q can run.
func (q *Query) Validate() error {
	if q.Limit < 0 || q.Limit > 1000 {
		return fmt.Errorf("%w: limit %d: must be between 1 and 1000", ErrBadQuery, q.Limit)
	}
	if !q.From.IsZero() && !q.To.IsZero() && !q.From.Before(q.To) {
		return fmt.Errorf("%w: from %s is not before to %s", ErrBadQuery, q.From.Format(time.RFC3339Nano), q.To.Format(time.RFC3339Nano))
	}
	if q.Cursor != "" {
		if _, err := parseCursor(q.Cursor); err != nil {
			return err
		}
	}
	return nil
}

func (q *Query) filtered() bool { return q.Contains != "" || q.Where != nil }

func (q *Query) match(e *Event) bool {
	if q.Contains != "" && !bytes.Contains(e.Value, []byte(q.Contains)) {
		return false
	}
	if q.Where != nil && !q.Where.Match(e.Value) {
		return false
	}
	return true
}

func (s *sqlStore) Search(ctx context.Context, q Query) (Page, error) {
	if err := q.Validate(); err != nil {
		return Page{}, err
	}
	limit := cmpOr(q.Limit, 100)
	maxScan := cmpOr(q.MaxScan, 100_000)
	cond, args := q.where()
	dir, cmp := "DESC", "<"
	if q.Oldest {
		dir, cmp = "ASC", ">"
	}
	var cur *cursor
	if q.Cursor != "" {
		c, _ := parseCursor(q.Cursor)
		cur = &c
	}
	var page Page
	batch := limit + 1
	if q.filtered() {
		batch = max(batch, 256)
	}
	for {
		c, a := cond, slices.Clone(args)
		if cur != nil {
			if c == "" {
				c = " WHERE "
			} else {
				c += " AND "
			}
			c += "(ts, seq) " + cmp + " (?, ?)"
			a = append(a, cur.ts, cur.seq)
		}
		a = append(a, batch)
		rows, err := s.r.QueryContext(ctx, s.d.q(`SELECT `+eventCols+` FROM events`+c+` ORDER BY ts `+dir+`, seq `+dir+` LIMIT ?`), a...)
		if err != nil {
			return Page{}, fmt.Errorf("lookback: search: %w", err)
		}
		var rs []*row
		for rows.Next() {
			r, err := scanRow(rows)
			if err != nil {
				rows.Close()
				return Page{}, err
			}
			rs = append(rs, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return Page{}, fmt.Errorf("lookback: search: %w", err)
		}
		more := len(rs) == batch
		if !q.filtered() && more {
			rs = rs[:limit]
		}
		if err := s.fill(ctx, s.r, rs); err != nil {
			return Page{}, err
		}
		for _, r := range rs {
			if q.filtered() {
				page.Scanned++
			}
			last := cursor{r.ev.Timestamp.UnixMilli(), r.ev.seq}
			cur = &last
			if q.match(&r.ev) {
				page.Events = append(page.Events, &r.ev)
				if len(page.Events) == limit {
					if more || r != rs[len(rs)-1] {
						page.Next = last.String()
					}
					return page, nil
				}
			}
			if q.filtered() && page.Scanned >= maxScan {
				page.Next = last.String()
				return page, nil
			}
		}
		if !more {
			return page, nil
		}
	}
}

func cmpOr(v, def int) int {
	if v <= 0 {
		return def
	}
	return v
}

// Erase deletes the key's events and rewrites their blocks without their
// bodies, so no copy of an erased payload stays on disk (beyond what the
// database engine keeps in freed pages until they are reused).
func (s *sqlStore) Erase(ctx context.Context, key []byte, topic string) (int64, error) {
	if key == nil {
		key = []byte{}
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("lookback: erase: %w", err)
	}
	defer tx.Rollback()
	q, args := `SELECT seq FROM events WHERE key = ?`, []any{key}
	if topic != "" {
		q, args = q+` AND topic = ?`, append(args, topic)
	}
	seqs, err := queryInts(ctx, tx, s.d.q(q), args...)
	if err != nil {
		return 0, fmt.Errorf("lookback: erase: %w", err)
	}
	blocks := map[int64]bool{}
	for _, seq := range seqs {
		if _, err := tx.ExecContext(ctx, s.d.q(`DELETE FROM events WHERE seq = ?`), seq); err != nil {
			return 0, fmt.Errorf("lookback: erase: %w", err)
		}
		blocks[seq>>16] = true
	}
	for b := range blocks {
		if err := s.rewriteBlock(ctx, tx, b); err != nil {
			return 0, err
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("lookback: erase commit: %w", err)
	}
	return int64(len(seqs)), nil
}

// rewriteBlock rebuilds block b from its remaining events (or deletes it).
func (s *sqlStore) rewriteBlock(ctx context.Context, tx *sql.Tx, b int64) error {
	rows, err := tx.QueryContext(ctx, s.d.q(`SELECT `+eventCols+` FROM events WHERE seq >= ? AND seq < ? ORDER BY seq`), b<<16, (b+1)<<16)
	if err != nil {
		return fmt.Errorf("lookback: erase: %w", err)
	}
	var rs []*row
	for rows.Next() {
		r, err := scanRow(rows)
		if err != nil {
			rows.Close()
			return err
		}
		rs = append(rs, r)
	}
	rows.Close()
	if len(rs) == 0 {
		_, err := tx.ExecContext(ctx, s.d.q(`DELETE FROM blocks WHERE id = ?`), b)
		return err
	}
	if err := s.fill(ctx, tx, rs); err != nil {
		return err
	}
	var raw []byte
	for _, r := range rs {
		start := len(raw)
		raw = appendBody(raw, r.ev.Headers, r.ev.Value)
		if _, err := tx.ExecContext(ctx, s.d.q(`UPDATE events SET boff = ?, blen = ? WHERE seq = ?`), start, len(raw)-start, r.ev.seq); err != nil {
			return fmt.Errorf("lookback: erase: %w", err)
		}
	}
	data := compress(raw)
	_, err = tx.ExecContext(ctx, s.d.q(`UPDATE blocks SET data = ?, n = ?, raw = ?, stored = ? WHERE id = ?`), data, len(rs), len(raw), len(data), b)
	if err != nil {
		return fmt.Errorf("lookback: erase: %w", err)
	}
	return nil
}

func queryInts(ctx context.Context, tx *sql.Tx, q string, args ...any) ([]int64, error) {
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var v int64
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// Retain works block by block: a block goes when its newest event is older
// than cutoff, or when it is among the oldest blocks beyond maxBytes of
// compressed payload.
func (s *sqlStore) Retain(ctx context.Context, cutoff time.Time, maxBytes int64) (int64, error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("lookback: retain: %w", err)
	}
	defer tx.Rollback()
	var drop []int64
	if !cutoff.IsZero() {
		drop, err = queryInts(ctx, tx, s.d.q(`SELECT id FROM blocks WHERE max_ts < ? ORDER BY id`), cutoff.UnixMilli())
		if err != nil {
			return 0, fmt.Errorf("lookback: retain: %w", err)
		}
	}
	if maxBytes > 0 {
		rows, err := tx.QueryContext(ctx, s.d.q(`SELECT id, stored FROM blocks ORDER BY id DESC`))
		if err != nil {
			return 0, fmt.Errorf("lookback: retain: %w", err)
		}
		var total int64
		for rows.Next() {
			var id, stored int64
			if err := rows.Scan(&id, &stored); err != nil {
				rows.Close()
				return 0, fmt.Errorf("lookback: retain: %w", err)
			}
			if total += stored; total > maxBytes {
				drop = append(drop, id)
			}
		}
		rows.Close()
	}
	slices.Sort(drop)
	drop = slices.Compact(drop)
	var removed int64
	for _, b := range drop {
		res, err := tx.ExecContext(ctx, s.d.q(`DELETE FROM events WHERE seq >= ? AND seq < ?`), b<<16, (b+1)<<16)
		if err != nil {
			return 0, fmt.Errorf("lookback: retain: %w", err)
		}
		n, _ := res.RowsAffected()
		removed += n
		if _, err := tx.ExecContext(ctx, s.d.q(`DELETE FROM blocks WHERE id = ?`), b); err != nil {
			return 0, fmt.Errorf("lookback: retain: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("lookback: retain commit: %w", err)
	}
	return removed, nil
}

func (s *sqlStore) Stats(ctx context.Context) (Stats, error) {
	var st Stats
	var minTS, maxTS sql.NullInt64
	err := s.r.QueryRowContext(ctx, s.d.q(`SELECT CAST(COALESCE(SUM(n), 0) AS BIGINT), CAST(COALESCE(SUM(raw), 0) AS BIGINT), CAST(COALESCE(SUM(stored), 0) AS BIGINT), MIN(min_ts), MAX(max_ts) FROM blocks WHERE n > 0`)).
		Scan(&st.Events, &st.RawBytes, &st.StoredBytes, &minTS, &maxTS)
	if err != nil {
		return Stats{}, fmt.Errorf("lookback: stats: %w", err)
	}
	if minTS.Valid {
		st.Oldest, st.Newest = time.UnixMilli(minTS.Int64).UTC(), time.UnixMilli(maxTS.Int64).UTC()
	}
	return st, nil
}

func (s *sqlStore) AddReceipts(ctx context.Context, rs []Receipt) error {
	if len(rs) == 0 {
		return nil
	}
	// One row per key in a statement (PostgreSQL refuses to update a row
	// twice in one INSERT): the last receipt of a key wins.
	last := make(map[[4]string]int, len(rs))
	for i, r := range rs {
		last[[4]string{r.Group, r.Topic, strconv.Itoa(int(r.Partition)), strconv.FormatInt(r.Offset, 10)}] = i
	}
	if len(last) < len(rs) {
		keep := rs[:0:0]
		for i, r := range rs {
			if last[[4]string{r.Group, r.Topic, strconv.Itoa(int(r.Partition)), strconv.FormatInt(r.Offset, 10)}] == i {
				keep = append(keep, r)
			}
		}
		rs = keep
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("lookback: receipts: %w", err)
	}
	defer tx.Rollback()
	for start := 0; start < len(rs); start += s.d.maxBatch {
		end := min(start+s.d.maxBatch, len(rs))
		var q strings.Builder
		q.WriteString(`INSERT INTO receipts (grp, topic, part, off, event_id, outcome, attempts, duration_ms, ts) VALUES `)
		var args []any
		for i := start; i < end; i++ {
			r := rs[i]
			if i > start {
				q.WriteByte(',')
			}
			q.WriteString("(?,?,?,?,?,?,?,?,?)")
			args = append(args, r.Group, r.Topic, r.Partition, r.Offset, nullStr(r.EventID), r.Outcome, r.Attempts, r.Duration, r.Time.UnixMilli())
		}
		q.WriteString(` ON CONFLICT (grp, topic, part, off) DO UPDATE SET outcome = excluded.outcome, attempts = excluded.attempts, duration_ms = excluded.duration_ms, ts = excluded.ts, event_id = excluded.event_id`)
		if _, err := tx.ExecContext(ctx, s.d.q(q.String()), args...); err != nil {
			return fmt.Errorf("lookback: receipts: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("lookback: receipts commit: %w", err)
	}
	return nil
}

func (s *sqlStore) Receipts(ctx context.Context, ids []string) ([]Receipt, error) {
	var out []Receipt
	for start := 0; start < len(ids); start += 500 {
		chunk := ids[start:min(start+500, len(ids))]
		args := make([]any, len(chunk))
		for i, id := range chunk {
			args[i] = id
		}
		q := `SELECT grp, topic, part, off, event_id, outcome, attempts, duration_ms, ts FROM receipts WHERE event_id IN (` +
			strings.TrimSuffix(strings.Repeat("?,", len(chunk)), ",") + `) ORDER BY ts, grp`
		rows, err := s.r.QueryContext(ctx, s.d.q(q), args...)
		if err != nil {
			return nil, fmt.Errorf("lookback: receipts: %w", err)
		}
		for rows.Next() {
			var r Receipt
			var id sql.NullString
			var ts int64
			if err := rows.Scan(&r.Group, &r.Topic, &r.Partition, &r.Offset, &id, &r.Outcome, &r.Attempts, &r.Duration, &ts); err != nil {
				rows.Close()
				return nil, fmt.Errorf("lookback: receipts: %w", err)
			}
			r.EventID, r.Time = id.String, time.UnixMilli(ts).UTC()
			out = append(out, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("lookback: receipts: %w", err)
		}
	}
	return out, nil
}

func (s *sqlStore) SaveReplay(ctx context.Context, st ReplayState) error {
	b, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("lookback: save replay: %w", err)
	}
	_, err = s.w.ExecContext(ctx, s.d.q(`INSERT INTO replays (id, created, state) VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE SET state = excluded.state`),
		st.ID, st.Created.UnixMilli(), string(b))
	if err != nil {
		return fmt.Errorf("lookback: save replay: %w", err)
	}
	return nil
}

func (s *sqlStore) Replay(ctx context.Context, id string) (ReplayState, error) {
	var b string
	err := s.r.QueryRowContext(ctx, s.d.q(`SELECT state FROM replays WHERE id = ?`), id).Scan(&b)
	if errors.Is(err, sql.ErrNoRows) {
		return ReplayState{}, fmt.Errorf("%w: no replay %q", ErrNotFound, id)
	}
	if err != nil {
		return ReplayState{}, fmt.Errorf("lookback: replay: %w", err)
	}
	var st ReplayState
	if err := json.Unmarshal([]byte(b), &st); err != nil {
		return ReplayState{}, fmt.Errorf("lookback: replay %q: %w", id, err)
	}
	return st, nil
}

func (s *sqlStore) Replays(ctx context.Context) ([]ReplayState, error) {
	rows, err := s.r.QueryContext(ctx, s.d.q(`SELECT state FROM replays ORDER BY created DESC, id DESC LIMIT 1000`))
	if err != nil {
		return nil, fmt.Errorf("lookback: replays: %w", err)
	}
	defer rows.Close()
	var out []ReplayState
	for rows.Next() {
		var b string
		if err := rows.Scan(&b); err != nil {
			return nil, fmt.Errorf("lookback: replays: %w", err)
		}
		var st ReplayState
		if err := json.Unmarshal([]byte(b), &st); err != nil {
			return nil, fmt.Errorf("lookback: replays: %w", err)
		}
		out = append(out, st)
	}
	return out, rows.Err()
}

// Count counts the events matching q's indexed filters, without reading
// bodies; it ignores the payload filters.
func (s *sqlStore) Count(ctx context.Context, q Query) (int64, error) {
	cond, args := q.where()
	var n int64
	if err := s.r.QueryRowContext(ctx, s.d.q(`SELECT COUNT(*) FROM events`+cond), args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("lookback: count: %w", err)
	}
	return n, nil
}
