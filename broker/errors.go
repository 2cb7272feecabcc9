package broker

import (
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/spoolmq/spool/storage"
)

var (
	errTopicExists       = errors.New("broker: topic already exists")
	errUnknownTopic      = errors.New("broker: unknown topic or partition")
	errInvalidPartitions = errors.New("broker: invalid partitions")
	errInvalidConfig     = errors.New("broker: invalid config")
)

// errorCode maps an error from a broker or storage operation to the Kafka
// error code a response carries for it. Errors that are not classified are
// disk or file-system failures: KAFKA_STORAGE_ERROR, which clients retry.
func errorCode(err error) int16 {
	var ke *kerr.Error
	var ce *codeError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ce):
		return ce.code
	case errors.As(err, &ke):
		return ke.Code
	case errors.Is(err, errTopicExists):
		return kerr.TopicAlreadyExists.Code
	case errors.Is(err, errUnknownTopic), errors.Is(err, storage.ErrLogNotFound):
		return kerr.UnknownTopicOrPartition.Code
	case errors.Is(err, errInvalidPartitions):
		return kerr.InvalidPartitions.Code
	case errors.Is(err, errInvalidConfig):
		return kerr.InvalidConfig.Code
	case errors.Is(err, storage.ErrCorruptBatch):
		return kerr.CorruptMessage.Code
	case errors.Is(err, storage.ErrInvalidTimestamp):
		return kerr.InvalidTimestamp.Code
	case errors.Is(err, storage.ErrInvalidRecord):
		return kerr.InvalidRecord.Code
	case errors.Is(err, storage.ErrOffsetOutOfRange):
		return kerr.OffsetOutOfRange.Code
	case errors.Is(err, storage.ErrClosed):
		// The broker is shutting down: a retriable error sends the client
		// back to metadata and, after the restart, to us.
		return kerr.NotLeaderForPartition.Code
	default:
		return kerr.KafkaStorageError.Code
	}
}

// errMessage returns err's text for a response's ErrorMessage field.
func errMessage(err error) *string {
	if err == nil {
		return nil
	}
	s := err.Error()
	return &s
}

// codeError is an error with the Kafka error code a response reports for it
// and a message for the response's ErrorMessage.
type codeError struct {
	code int16
	msg  string
}

func (e *codeError) Error() string { return "broker: " + e.msg }

// withMessage returns an error that errorCode maps to e's code, with msg.
func withMessage(e *kerr.Error, msg string) error {
	return &codeError{code: e.Code, msg: msg}
}
