package storage

import "errors"

// Errors returned by the storage package, wrapped with context
// ("storage: topic-0: ..."); classify them with errors.Is.
var (
	// ErrCorruptBatch: bad framing, length or CRC. Kafka: CORRUPT_MESSAGE.
	ErrCorruptBatch = errors.New("corrupt record batch")
	// ErrInvalidRecord: a well-framed batch with invalid content (magic, counts).
	// Kafka: INVALID_RECORD.
	ErrInvalidRecord = errors.New("invalid record batch")
	// ErrOffsetOutOfRange: an offset outside [log start, log end]. Kafka: OFFSET_OUT_OF_RANGE.
	ErrOffsetOutOfRange = errors.New("offset out of range")
	// ErrLogExists: CreateLog of a partition that already has a log.
	ErrLogExists = errors.New("log already exists")
	// ErrLogNotFound: no log for the partition.
	ErrLogNotFound = errors.New("log not found")
	// ErrClosed: the store or log is closed (or the log was deleted).
	ErrClosed = errors.New("storage closed")
	// ErrLogFailed: a write or fsync of the log failed; the log refuses appends
	// until the store is reopened (recovery then decides what is on disk).
	// Kafka: KAFKA_STORAGE_ERROR.
	ErrLogFailed = errors.New("log failed")
)
