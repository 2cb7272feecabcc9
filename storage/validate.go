package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// ErrInvalidTimestamp: a CreateTime record timestamp outside the bounds of
// RecordRules. Kafka: INVALID_TIMESTAMP.
var ErrInvalidTimestamp = errors.New("invalid record timestamp")

// RecordRules are the checks Kafka's LogValidator makes of a produced batch
// beyond its framing and CRC: the records inside the batch are parsed
// (decompressed, within a bound) and must agree with the header. Append
// applies them when AppendOptions.Records is set; the broker's produce path
// sets it, recovery and storage's own tests do not need it.
//
// A batch is refused (nothing of it written) when:
//   - it is a control batch or has the transactional bit (ErrInvalidRecord:
//     clients may not write control records, and Spool has no transactions);
//   - its records do not decompress, or decompress to more than
//     MaxDecompressedBytes (ErrCorruptBatch);
//   - the records are not exactly NumRecords well-formed records
//     (length varint matching the record's content, offset deltas 0..n-1
//     in order, key, value and header lengths inside the record, header
//     keys not null, no bytes after the last record) (ErrInvalidRecord);
//   - with CreateTime (LogAppendTime unset in AppendOptions), a record's
//     timestamp is more than TimestampBeforeMax before Now or more than
//     TimestampAfterMax after it (ErrInvalidTimestamp).
type RecordRules struct {
	// MaxDecompressedBytes bounds what the records of a compressed batch
	// may decompress to. Default DefaultMaxDecompressedBytes.
	MaxDecompressedBytes int
	// Now is the time timestamps are checked against. Required when either
	// bound is set.
	Now time.Time
	// TimestampBeforeMax and TimestampAfterMax bound how far before and
	// after Now a CreateTime timestamp may be (Kafka's
	// message.timestamp.before.max.ms and message.timestamp.after.max.ms).
	// Zero or negative: unbounded.
	TimestampBeforeMax, TimestampAfterMax time.Duration
}

// minRecordSize is the smallest encoded record: a one-byte length varint,
// then attributes, timestamp delta, offset delta, key length, value length
// and header count, one byte each.
const minRecordSize = 7

// ValidateRecords checks batch b (exactly one batch, as Append takes it)
// against r: framing, CRC, and then every record, as Append does with
// AppendOptions.Records set. It returns the parsed header.
func ValidateRecords(b []byte, r RecordRules, logAppendTime bool) (BatchHeader, error) {
	h, err := validateBatch(b)
	if err == nil {
		err = checkRecords(b, h, &r, logAppendTime)
	}
	if err != nil {
		return h, fmt.Errorf("storage: %w", err)
	}
	return h, nil
}

// checkRecords applies r to batch b, whose header h validateBatch checked.
func checkRecords(b []byte, h BatchHeader, r *RecordRules, logAppendTime bool) error {
	switch {
	case h.IsControl():
		return fmt.Errorf("%w: control batches may not be produced by clients", ErrInvalidRecord)
	case h.IsTransactional():
		return fmt.Errorf("%w: transactional batches are not supported", ErrInvalidRecord)
	}
	raw := len(b) - batchHeaderSize
	if h.Compression() == codecNone && int64(h.NumRecords)*minRecordSize > int64(raw) {
		// Answered without a scan: the 61-byte batch that claims 2^31 records.
		return fmt.Errorf("%w: %d records claimed in %d bytes of records", ErrInvalidRecord, h.NumRecords, raw)
	}
	limit := r.MaxDecompressedBytes
	if limit <= 0 {
		limit = DefaultMaxDecompressedBytes
	}
	if h.Compression() != codecNone && int64(h.NumRecords)*minRecordSize > int64(limit) {
		return fmt.Errorf("%w: %d records claimed, more than %d bytes could hold", ErrInvalidRecord, h.NumRecords, limit)
	}
	d, err := recordsData(b, h, limit)
	if err != nil {
		return err
	}
	defer d.release()
	lo, hi := int64(-1<<63), int64(1<<63-1)
	if !logAppendTime && h.TimestampType() == 0 {
		now := r.Now.UnixMilli()
		if r.TimestampBeforeMax > 0 {
			lo = now - r.TimestampBeforeMax.Milliseconds()
		}
		if r.TimestampAfterMax > 0 {
			hi = now + r.TimestampAfterMax.Milliseconds()
		}
	}
	return walkRecords(d.data, h, lo, hi)
}

// walkRecords checks that data holds exactly h.NumRecords well-formed
// records with offset deltas 0..n-1 and timestamps in [lo, hi].
func walkRecords(data []byte, h BatchHeader, lo, hi int64) error {
	if int64(h.NumRecords)*minRecordSize > int64(len(data)) {
		return fmt.Errorf("%w: %d records claimed in %d bytes of records", ErrInvalidRecord, h.NumRecords, len(data))
	}
	for i := int32(0); i < h.NumRecords; i++ {
		length, n := binary.Varint(data)
		if n <= 0 || length < minRecordSize-1 || length > int64(len(data)-n) {
			return fmt.Errorf("%w: record %d: bad length", ErrInvalidRecord, i)
		}
		rec := data[n : n+int(length)]
		data = data[n+int(length):]
		tsDelta, offDelta, err := checkRecord(rec)
		if err != nil {
			return fmt.Errorf("%w: record %d: %w", ErrInvalidRecord, i, err)
		}
		if offDelta != int64(i) {
			return fmt.Errorf("%w: record %d has offset delta %d", ErrInvalidRecord, i, offDelta)
		}
		if ts := h.FirstTimestamp + tsDelta; ts < lo || ts > hi {
			return fmt.Errorf("%w: record %d: timestamp %d is outside [%d, %d] (message.timestamp.before.max.ms, message.timestamp.after.max.ms)",
				ErrInvalidTimestamp, i, ts, lo, hi)
		}
	}
	if len(data) != 0 {
		return fmt.Errorf("%w: %d bytes after the last of %d records", ErrInvalidRecord, len(data), h.NumRecords)
	}
	return nil
}

var (
	errRecordVarint = errors.New("bad varint")
	errRecordBounds = errors.New("field runs past the record's end")
	errRecordShape  = errors.New("record length does not match its fields")
)

// checkRecord parses one record (without its length prefix): attributes,
// timestamp delta, offset delta, key, value, headers. Every length must lie
// inside rec, and the fields must fill it exactly.
func checkRecord(rec []byte) (tsDelta, offDelta int64, err error) {
	p := 1 // attributes: unused in v2, any value is accepted, as Kafka does
	varint := func() int64 {
		v, n := binary.Varint(rec[p:])
		if n <= 0 {
			err = errRecordVarint
			return 0
		}
		p += n
		return v
	}
	skip := func(nullable bool) {
		n := varint()
		switch {
		case err != nil:
		case n < 0 && !(nullable && n == -1):
			err = errRecordBounds
		case n > int64(len(rec)-p):
			err = errRecordBounds
		case n > 0:
			p += int(n)
		}
	}
	tsDelta = varint()
	offDelta = varint()
	skip(true) // key
	skip(true) // value
	headers := varint()
	if err == nil && (headers < 0 || headers > int64(len(rec)-p)/2) {
		err = errRecordBounds
	}
	for i := int64(0); err == nil && i < headers; i++ {
		skip(false) // header key: not null
		skip(true)  // header value
	}
	if err == nil && p != len(rec) {
		err = errRecordShape
	}
	return tsDelta, offDelta, err
}
