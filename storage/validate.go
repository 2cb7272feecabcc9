package storage

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
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
	var bad error
	visit := func(i int32, tsDelta, offDelta int64) bool {
		if offDelta != int64(i) {
			bad = fmt.Errorf("%w: record %d has offset delta %d", ErrInvalidRecord, i, offDelta)
			return false
		}
		if ts := h.FirstTimestamp + tsDelta; ts < lo || ts > hi {
			bad = fmt.Errorf("%w: record %d: timestamp %d is outside [%d, %d] (message.timestamp.before.max.ms, message.timestamp.after.max.ms)",
				ErrInvalidTimestamp, i, ts, lo, hi)
			return false
		}
		return true
	}
	used := 0
	if d.r != nil {
		err = streamRecords(d.r, h.NumRecords, visit)
	} else {
		used, err = sliceRecords(d.data, h.NumRecords, visit)
	}
	if bad != nil {
		return bad
	}
	if err != nil {
		return err
	}
	// Nothing after the last record.
	if d.r != nil {
		if _, rerr := d.r.ReadByte(); rerr != io.EOF {
			return streamErr(rerr, fmt.Errorf("%w: bytes after the last of %d records", ErrInvalidRecord, h.NumRecords))
		}
	} else if rest := len(d.data) - used; rest != 0 {
		return fmt.Errorf("%w: %d bytes after the last of %d records", ErrInvalidRecord, rest, h.NumRecords)
	}
	return nil
}

// visitFunc is called with each record's index and deltas; false stops.
type visitFunc func(i int32, tsDelta, offDelta int64) bool

var (
	errRecordVarint = errors.New("bad varint")
	errRecordBounds = errors.New("field runs past the record's end")
	errRecordShape  = errors.New("record length does not match its fields")
)

// sliceRecords parses up to n records from data (uncompressed, or snappy
// decoded whole), calling visit for each, and returns the bytes they took.
func sliceRecords(data []byte, n int32, visit visitFunc) (int, error) {
	if int64(n)*minRecordSize > int64(len(data)) {
		return 0, fmt.Errorf("%w: %d records claimed in %d bytes of records", ErrInvalidRecord, n, len(data))
	}
	used := 0
	for i := int32(0); i < n; i++ {
		length, k := binary.Varint(data[used:])
		if k <= 0 || length < minRecordSize-1 || length > int64(len(data)-used-k) {
			return used, fmt.Errorf("%w: record %d: bad length", ErrInvalidRecord, i)
		}
		rec := data[used+k : used+k+int(length)]
		used += k + int(length)
		tsDelta, offDelta, err := checkRecord(rec)
		if err != nil {
			return used, fmt.Errorf("%w: record %d: %w", ErrInvalidRecord, i, err)
		}
		if !visit(i, tsDelta, offDelta) {
			return used, nil
		}
	}
	return used, nil
}

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

// streamErr classifies an error reading decompressed records: the
// decompressor failed or passed the bound (ErrCorruptBatch), or the
// records ended early (short, which says how).
func streamErr(err, short error) error {
	switch {
	case errors.Is(err, errTooLarge):
		return fmt.Errorf("%w: decompress: %w", ErrCorruptBatch, err)
	case err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) || err == nil:
		return short
	default:
		return fmt.Errorf("%w: decompress: %w", ErrCorruptBatch, err)
	}
}

// streamRecords parses n records from the decompressed stream r, the same
// grammar as checkRecord, without holding a record in memory: keys,
// values and headers are skipped as they come.
func streamRecords(r *bufio.Reader, n int32, visit visitFunc) error {
	for i := int32(0); i < n; i++ {
		length, err := binary.ReadVarint(r)
		if err != nil {
			return streamErr(err, fmt.Errorf("%w: %d records claimed, %d found", ErrInvalidRecord, n, i))
		}
		if length < minRecordSize-1 {
			return fmt.Errorf("%w: record %d: bad length", ErrInvalidRecord, i)
		}
		sr := streamRecord{r: r, left: length}
		sr.skip(1) // attributes
		tsDelta := sr.varint()
		offDelta := sr.varint()
		sr.bytes(true) // key
		sr.bytes(true) // value
		headers := sr.varint()
		if sr.err == nil && (headers < 0 || headers > sr.left/2) {
			sr.err = errRecordBounds
		}
		for h := int64(0); sr.err == nil && h < headers; h++ {
			sr.bytes(false)
			sr.bytes(true)
		}
		if sr.err == nil && sr.left != 0 {
			sr.err = errRecordShape
		}
		if sr.err != nil {
			return streamErr(sr.readErr, fmt.Errorf("%w: record %d: %w", ErrInvalidRecord, i, sr.err))
		}
		if !visit(i, tsDelta, offDelta) {
			return nil
		}
	}
	return nil
}

// streamRecord reads the fields of one record of left bytes from r.
type streamRecord struct {
	r       *bufio.Reader
	left    int64
	err     error // the first problem (errRecord*, or errRecordBounds on a read error)
	readErr error // the read error behind err, if any
}

func (s *streamRecord) fail(err, readErr error) {
	if s.err == nil {
		s.err, s.readErr = err, readErr
	}
}

func (s *streamRecord) skip(n int64) {
	if s.err != nil {
		return
	}
	if n > s.left {
		s.fail(errRecordBounds, nil)
		return
	}
	for n > 0 {
		k, err := s.r.Discard(int(min(n, 1<<30)))
		n -= int64(k)
		s.left -= int64(k)
		if err != nil {
			s.fail(errRecordBounds, err)
			return
		}
	}
}

func (s *streamRecord) varint() int64 {
	if s.err != nil {
		return 0
	}
	cr := countingByteReader{r: s.r}
	v, err := binary.ReadVarint(&cr)
	s.left -= cr.n
	switch {
	case err != nil:
		s.fail(errRecordVarint, err)
	case s.left < 0:
		s.fail(errRecordBounds, nil)
	}
	return v
}

func (s *streamRecord) bytes(nullable bool) {
	n := s.varint()
	switch {
	case s.err != nil:
	case n < 0 && !(nullable && n == -1):
		s.fail(errRecordBounds, nil)
	case n > 0:
		s.skip(n)
	}
}

// countingByteReader counts the bytes a varint took.
type countingByteReader struct {
	r *bufio.Reader
	n int64
}

func (c *countingByteReader) ReadByte() (byte, error) {
	b, err := c.r.ReadByte()
	if err == nil {
		c.n++
	}
	return b, err
}
