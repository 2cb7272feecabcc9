package outbox

import (
	"strconv"
	"strings"
)

// queries are the relay's statements for one dialect and table. Lists of
// ids or buckets are one parameter: a PostgreSQL array, or a JSON array
// read with json_each on SQLite.
type queries struct {
	d          Dialect
	fetchAll   string // pending rows of every bucket
	fetchSome  string // pending rows of the buckets in $1
	markPub    string // $1 ids: delete their pending rows
	markReject string // $1 rejected_at, $2 error, $3 id
	markRetry  string // $1 error, $2 ids
	cleanup    string // $1 cut, $2 limit
	backlog    string
	aheadAll   string // PostgreSQL: rows above id $1 and the pending rows at or below it not in $2; limit $3
	aheadSome  string // the same in the buckets in $4

	heartbeat, live, forget, renew, release, acquire, releaseAll, dropRelay string
}

func newQueries(d Dialect, t string) queries {
	now := "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)"
	in := func(col, param string) string { return col + " IN (SELECT value FROM json_each(" + param + "))" }
	if d == Postgres {
		now = "(extract(epoch FROM clock_timestamp()) * 1000)::bigint"
		in = func(col, param string) string { return col + " = ANY(" + param + ")" }
	}
	// A row is held back while an earlier row of its topic and key is
	// rejected (a rejected row is always pending).
	const pendingWhere = `o.rejected_at IS NULL
  AND NOT EXISTS (SELECT 1 FROM {t} s WHERE s.rejected_at IS NOT NULL
                  AND s.record_key = o.record_key AND s.topic = o.topic AND s.id < o.id)`
	fetch := func(extra string) string {
		return expand(`SELECT o.id, o.topic, o.record_key, o.headers, o.value, o.created_at
FROM `+joinPending(d, t, "q", "o")+`
WHERE `+pendingWhere+extra+`
ORDER BY q.id LIMIT `, t)
	}
	// The count is an uncorrelated subquery: computed once, in the
	// statement's snapshot, and sent with every row.
	ahead := func(extra, gextra string) string {
		return expand(`SELECT o.id, o.topic, o.record_key, o.headers, o.value, o.created_at,
       (SELECT COUNT(*) FROM {t}_pending g WHERE g.id <= $1`+gextra+`
          AND NOT EXISTS (SELECT 1 FROM unnest($2::bigint[]) f(id) WHERE f.id = g.id))
FROM `+joinPending(d, t, "q", "o")+`
WHERE q.id > $1 AND `+pendingWhere+extra+`
ORDER BY q.id LIMIT $3`, t)
	}
	lt := t + "_leases"
	rt := t + "_relays"
	pt := t + "_pending"
	return queries{
		d:          d,
		fetchAll:   fetch("") + "$1",
		fetchSome:  fetch(" AND "+in("q.bucket", "$1")) + "$2",
		aheadAll:   ahead("", ""),
		aheadSome:  ahead(" AND q.bucket = ANY($4)", " AND g.bucket = ANY($4)"),
		markPub:    "DELETE FROM " + pt + " WHERE " + in("id", "$1"),
		markReject: "UPDATE " + t + " SET rejected_at = $1, last_error = $2, attempts = attempts + 1 WHERE id = $3",
		markRetry:  "UPDATE " + t + " SET last_error = $1, attempts = attempts + 1 WHERE " + in("id", "$2"),
		cleanup: "DELETE FROM " + t + " WHERE id IN (SELECT id FROM " + t + " o WHERE created_at < $1" +
			" AND NOT EXISTS (SELECT 1 FROM " + pt + " q WHERE q.id = o.id) ORDER BY created_at LIMIT $2)",
		backlog: "SELECT o.topic, COUNT(*), SUM(CASE WHEN o.rejected_at IS NULL THEN 0 ELSE 1 END), MIN(o.created_at)" +
			" FROM " + joinPending(d, t, "q", "o") + " GROUP BY o.topic ORDER BY o.topic",

		heartbeat: "INSERT INTO " + rt + " (relay_id, seen_at) VALUES ($1, " + now + ")" +
			" ON CONFLICT (relay_id) DO UPDATE SET seen_at = excluded.seen_at",
		live:   "SELECT COUNT(*) FROM " + rt + " WHERE seen_at > " + now + " - $1",
		forget: "DELETE FROM " + rt + " WHERE seen_at < " + now + " - $1",
		renew:  "UPDATE " + lt + " SET expires_at = " + now + " + $2 WHERE owner = $1 RETURNING bucket",
		release: "UPDATE " + lt + " SET owner = NULL, expires_at = 0 WHERE owner = $1 AND " +
			in("bucket", "$2"),
		acquire: "UPDATE " + lt + " SET owner = $1, expires_at = " + now + " + $2" +
			" WHERE bucket IN (SELECT bucket FROM " + lt + " WHERE owner IS NULL OR expires_at <= " + now +
			" ORDER BY random() LIMIT $3) AND (owner IS NULL OR expires_at <= " + now + ") RETURNING bucket",
		releaseAll: "UPDATE " + lt + " SET owner = NULL, expires_at = 0 WHERE owner = $1",
		dropRelay:  "DELETE FROM " + rt + " WHERE relay_id = $1",
	}
}

// joinPending joins the pending rows (alias q) to their outbox rows (alias
// o), driven by the pending rows: the outbox table holds the published rows
// too (Retention), so reading it first costs a scan of everything published.
// Left to itself, PostgreSQL's planner (young tables have no statistics)
// reads the outbox table in id order and probes the pending table, for
// every published row; an OFFSET 0 lateral subquery, which it cannot
// flatten, keeps the pending table outside. SQLite's CROSS JOIN keeps the
// left table outside.
func joinPending(d Dialect, t, q, o string) string {
	if d == Postgres {
		return t + "_pending " + q + " CROSS JOIN LATERAL (SELECT * FROM " + t + " x WHERE x.id = " + q + ".id OFFSET 0) " + o
	}
	return t + "_pending " + q + " CROSS JOIN " + t + " " + o + " ON " + o + ".id = " + q + ".id"
}

// ids returns the query parameter for a list of ids.
func (q queries) ids(ids []int64) any {
	if q.d == Postgres {
		return ids
	}
	var b strings.Builder
	b.Grow(len(ids) * 8)
	b.WriteByte('[')
	for i, id := range ids {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatInt(id, 10))
	}
	b.WriteByte(']')
	return b.String()
}

// bucketsArg returns the query parameter for a list of buckets.
func (q queries) bucketsArg(bs []int32) any {
	ids := make([]int64, len(bs))
	for i, b := range bs {
		ids[i] = int64(b)
	}
	if q.d == Postgres {
		return bs
	}
	return q.ids(ids)
}
