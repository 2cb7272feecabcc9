package storage

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// Record batch (magic v2) header layout. These offsets are part of the Kafka
// wire and on-disk format.
const (
	batchHeaderSize = 61 // bytes before the first record
	batchLengthOff  = 8  // int32: bytes after this field
	batchLengthEnd  = 12 // batch size = batchLengthEnd + Length
	batchMagicOff   = 16
	batchCRCOff     = 17 // uint32 CRC-32C over bytes [batchAttrsOff, end)
	batchAttrsOff   = 21
	batchMaxTSOff   = 35
	batchMagic      = 2
	attrTimestampLA = 0x08 // timestamp type bit: LogAppendTime
	attrCompression = 0x07
	attrTxn         = 0x10
	attrControl     = 0x20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// BatchHeader is the fixed 61-byte header of a Kafka record batch (magic v2).
type BatchHeader struct {
	BaseOffset           int64
	Length               int32 // bytes after the Length field; the batch is 12+Length bytes
	PartitionLeaderEpoch int32
	Magic                int8
	CRC                  uint32
	Attributes           int16
	LastOffsetDelta      int32
	FirstTimestamp       int64
	MaxTimestamp         int64
	ProducerID           int64
	ProducerEpoch        int16
	BaseSequence         int32
	NumRecords           int32
}

// Size is the whole batch's size in bytes.
func (h BatchHeader) Size() int64 { return batchLengthEnd + int64(h.Length) }

// LastOffset is the offset of the batch's last record.
func (h BatchHeader) LastOffset() int64 { return h.BaseOffset + int64(h.LastOffsetDelta) }

// Compression is the codec: 0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd.
func (h BatchHeader) Compression() int8 { return int8(h.Attributes & attrCompression) }

// IsTransactional reports the transactional attribute bit.
func (h BatchHeader) IsTransactional() bool { return h.Attributes&attrTxn != 0 }

// IsControl reports the control-batch attribute bit.
func (h BatchHeader) IsControl() bool { return h.Attributes&attrControl != 0 }

// TimestampType is 0 for CreateTime and 1 for LogAppendTime.
func (h BatchHeader) TimestampType() int8 { return int8((h.Attributes & attrTimestampLA) >> 3) }

// ParseBatchHeader decodes the 61-byte header at the start of b. It checks
// framing only (enough bytes, a plausible length), not the magic or the CRC.
func ParseBatchHeader(b []byte) (BatchHeader, error) {
	h, err := parseBatchHeader(b)
	if err != nil {
		return h, fmt.Errorf("storage: %w", err)
	}
	return h, nil
}

// parseBatchHeader is ParseBatchHeader with errors for callers that add context.
func parseBatchHeader(b []byte) (BatchHeader, error) {
	if len(b) < batchHeaderSize {
		return BatchHeader{}, fmt.Errorf("%w: %d bytes, header needs %d", ErrCorruptBatch, len(b), batchHeaderSize)
	}
	h := BatchHeader{
		BaseOffset:           int64(binary.BigEndian.Uint64(b[0:])),
		Length:               int32(binary.BigEndian.Uint32(b[8:])),
		PartitionLeaderEpoch: int32(binary.BigEndian.Uint32(b[12:])),
		Magic:                int8(b[16]),
		CRC:                  binary.BigEndian.Uint32(b[17:]),
		Attributes:           int16(binary.BigEndian.Uint16(b[21:])),
		LastOffsetDelta:      int32(binary.BigEndian.Uint32(b[23:])),
		FirstTimestamp:       int64(binary.BigEndian.Uint64(b[27:])),
		MaxTimestamp:         int64(binary.BigEndian.Uint64(b[35:])),
		ProducerID:           int64(binary.BigEndian.Uint64(b[43:])),
		ProducerEpoch:        int16(binary.BigEndian.Uint16(b[51:])),
		BaseSequence:         int32(binary.BigEndian.Uint32(b[53:])),
		NumRecords:           int32(binary.BigEndian.Uint32(b[57:])),
	}
	if h.Length < batchHeaderSize-batchLengthEnd {
		return h, fmt.Errorf("%w: length %d shorter than a batch header", ErrCorruptBatch, h.Length)
	}
	return h, nil
}

// ValidateBatch checks that b is exactly one well-formed magic v2 batch:
// framing, length, magic, CRC-32C, NumRecords > 0 and LastOffsetDelta == NumRecords-1.
func ValidateBatch(b []byte) (BatchHeader, error) {
	h, err := validateBatch(b)
	if err != nil {
		return h, fmt.Errorf("storage: %w", err)
	}
	return h, nil
}

func validateBatch(b []byte) (BatchHeader, error) {
	h, err := parseBatchHeader(b)
	if err != nil {
		return h, err
	}
	if int64(len(b)) != h.Size() {
		return h, fmt.Errorf("%w: batch length field says %d bytes, got %d", ErrCorruptBatch, h.Size(), len(b))
	}
	if h.Magic != batchMagic {
		return h, fmt.Errorf("%w: magic %d, only magic 2 is supported", ErrInvalidRecord, h.Magic)
	}
	if err := checkCRC(b, h); err != nil {
		return h, err
	}
	if h.NumRecords <= 0 {
		return h, fmt.Errorf("%w: %d records", ErrInvalidRecord, h.NumRecords)
	}
	if h.LastOffsetDelta != h.NumRecords-1 {
		return h, fmt.Errorf("%w: last offset delta %d with %d records", ErrInvalidRecord, h.LastOffsetDelta, h.NumRecords)
	}
	return h, nil
}

// checkCRC verifies the CRC of a whole batch b (len(b) == h.Size()).
func checkCRC(b []byte, h BatchHeader) error {
	if got := crc32.Checksum(b[batchAttrsOff:], castagnoli); got != h.CRC {
		return fmt.Errorf("%w: CRC-32C %08x, header says %08x", ErrCorruptBatch, got, h.CRC)
	}
	return nil
}

// setBaseOffset rewrites the batch's base offset (not covered by the CRC).
func setBaseOffset(b []byte, base int64) { binary.BigEndian.PutUint64(b, uint64(base)) }

// setLogAppendTime stamps b as Kafka does for LogAppendTime topics: the
// timestamp-type bit, MaxTimestamp = ms, and a recomputed CRC.
func setLogAppendTime(b []byte, ms int64) {
	attrs := binary.BigEndian.Uint16(b[batchAttrsOff:]) | attrTimestampLA
	binary.BigEndian.PutUint16(b[batchAttrsOff:], attrs)
	binary.BigEndian.PutUint64(b[batchMaxTSOff:], uint64(ms))
	binary.BigEndian.PutUint32(b[batchCRCOff:], crc32.Checksum(b[batchAttrsOff:], castagnoli))
}
