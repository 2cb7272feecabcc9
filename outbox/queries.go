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
	markPub    string // $1 published_at, $2 ids
	markReject string // $1 rejected_at, $2 error, $3 id
	markRetry  string // $1 error, $2 ids
	cleanup    string // $1 cut, $2 limit
	backlog    string

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
	// rejected.
	const pendingWhere = `published_at IS NULL AND rejected_at IS NULL
  AND NOT EXISTS (SELECT 1 FROM {t} s WHERE s.rejected_at IS NOT NULL AND s.published_at IS NULL
                  AND s.record_key = o.record_key AND s.topic = o.topic AND s.id < o.id)`
	fetch := func(extra string) string {
		return expand(`SELECT id, topic, record_key, headers, value, created_at FROM {t} o
WHERE `+pendingWhere+extra+`
ORDER BY id LIMIT `, t)
	}
	lt := t + "_leases"
	rt := t + "_relays"
	return queries{
		d:          d,
		fetchAll:   fetch("") + "$1",
		fetchSome:  fetch(" AND "+in("bucket", "$1")) + "$2",
		markPub:    "UPDATE " + t + " SET published_at = $1 WHERE " + in("id", "$2"),
		markReject: "UPDATE " + t + " SET rejected_at = $1, last_error = $2, attempts = attempts + 1 WHERE id = $3",
		markRetry:  "UPDATE " + t + " SET last_error = $1, attempts = attempts + 1 WHERE " + in("id", "$2"),
		cleanup: "DELETE FROM " + t + " WHERE id IN (SELECT id FROM " + t +
			" WHERE published_at IS NOT NULL AND published_at < $1 ORDER BY published_at LIMIT $2)",
		backlog: "SELECT topic, COUNT(*), SUM(CASE WHEN rejected_at IS NULL THEN 0 ELSE 1 END), MIN(created_at) FROM " + t +
			" WHERE published_at IS NULL GROUP BY topic ORDER BY topic",

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
