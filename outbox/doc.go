// Package outbox is the transactional outbox: an application writes its
// business rows and the events they imply in one database transaction
// (Add), and a Relay publishes the committed events to Kafka (or Spool)
// with the idempotent producer, in commit order per key, retrying until
// the broker takes them. A rolled-back transaction leaves no event; a
// committed one is never lost.
//
//	tx, _ := db.BeginTx(ctx, nil)
//	tx.ExecContext(ctx, "INSERT INTO orders ...")
//	ev, _ := event.New("order.placed", event.JSON, order)
//	ev.Source, ev.Key = "/orders", []byte(order.Customer)
//	outbox.Add(ctx, tx, *ev, outbox.Topic("orders"))
//	tx.Commit()
//
// PostgreSQL (through pgx's database/sql driver) and SQLite (through
// modernc.org/sqlite) are supported. Migrate creates the schema (versioned,
// idempotent); Schema prints it for teams that run their own migrations.
//
// # Order and several relays
//
// Rows are hashed by key into NumBuckets buckets; a relay publishes only the
// buckets it leases (expiring leases in the <table>_leases table, renewed by
// their holder, taken over when it stops renewing). Within its buckets a
// relay publishes a key's pending rows oldest first and stops at the first
// that fails. Per key, row id order is commit order (SQLite has one writer;
// on PostgreSQL the insert trigger takes a transaction-scoped advisory lock
// on the key's hash before it assigns the id). Each event has a row in
// <table>_pending, written by the insert trigger in the event's own
// transaction, until it is published: the relay deletes it only after the
// broker acknowledged the event. Together: whenever any relay
// publishes a row, every earlier row of its key is already in the topic or
// goes before it in the same producer's stream, so the first copy of each
// event (by ce_id) is in commit order per key even if two relays ever
// overlap; overlaps and crashes can only add duplicates, which share the
// event's ce_id (drop them with package dedupe).
//
// # Table
//
// The table (default spool_outbox) is described in the schema that
// `spool outbox schema --dialect postgres|sqlite` prints. Record headers are
// stored in one column as:
//
//	version  byte     1
//	count    uvarint
//	count × (key length uvarint, key bytes, value length uvarint, value bytes)
//
// docs/outbox.md has the guarantees, failure behaviour, metrics and tuning.
package outbox
