package broker

import (
	"errors"
	"io/fs"
	"syscall"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/spoolmq/spool/storage"
)

// errTransactions is the message of the UNSUPPORTED_VERSION answer to a
// transactional request.
const errTransactions = "transactions are not supported by Spool"

var (
	errTopicExists       = errors.New("broker: topic already exists")
	errUnknownTopic      = errors.New("broker: unknown topic or partition")
	errInvalidPartitions = errors.New("broker: invalid partitions")
	errInvalidConfig     = errors.New("broker: invalid config")
)

// errorCode is the package's errorCode, knowing whether the broker is
// closing: a log closed while the broker is not closing was deleted with
// its topic, which a request in flight learns as UNKNOWN_TOPIC_OR_PARTITION
// (the client refreshes its metadata), not as NOT_LEADER_FOR_PARTITION.
func (b *Broker) errorCode(err error) int16 {
	if errors.Is(err, storage.ErrClosed) && !b.isClosed() {
		return kerr.UnknownTopicOrPartition.Code
	}
	return errorCode(err)
}

// errorCode maps an error from a broker or storage operation to the Kafka
// error code a response carries for it. Only a failed disk or file-system
// operation is KAFKA_STORAGE_ERROR (which clients retry); an error nothing
// classifies is UNKNOWN_SERVER_ERROR.
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
	case isDiskError(err):
		return kerr.KafkaStorageError.Code
	default:
		return kerr.UnknownServerError.Code
	}
}

// isDiskError reports whether err comes from the disk: a log that failed
// a write or fsync, or a file-system call's error.
func isDiskError(err error) bool {
	var pe *fs.PathError
	var errno syscall.Errno
	return errors.Is(err, storage.ErrLogFailed) || errors.As(err, &pe) || errors.As(err, &errno)
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
