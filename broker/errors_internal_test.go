package broker

import (
	"errors"
	"fmt"
	"io/fs"
	"syscall"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/spoolmq/spool/storage"
)

// Error codes say what happened: a log closed under a running broker was
// deleted (UNKNOWN_TOPIC_OR_PARTITION, not NOT_LEADER_FOR_PARTITION); only
// disk errors are KAFKA_STORAGE_ERROR; anything else unclassified is
// UNKNOWN_SERVER_ERROR. Before, a deleted topic's in-flight produce got
// NOT_LEADER_FOR_PARTITION and every unclassified error KAFKA_STORAGE_ERROR.
func TestErrorCodes(t *testing.T) {
	b, err := New(Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	closed := fmt.Errorf("storage: t-0: append: %w before the batch was synced", storage.ErrClosed)
	for _, c := range []struct {
		name string
		err  error
		want int16
	}{
		{"log closed under a running broker (deleted topic)", closed, kerr.UnknownTopicOrPartition.Code},
		{"fsync failed", fmt.Errorf("x: %w: sync: %w", storage.ErrLogFailed, syscall.EIO), kerr.KafkaStorageError.Code},
		{"file error", &fs.PathError{Op: "open", Path: "/x", Err: syscall.ENOSPC}, kerr.KafkaStorageError.Code},
		{"unclassified", errors.New("something else"), kerr.UnknownServerError.Code},
		{"timestamp", fmt.Errorf("x: %w", storage.ErrInvalidTimestamp), kerr.InvalidTimestamp.Code},
	} {
		if got := b.errorCode(c.err); got != c.want {
			t.Errorf("%s: %s, want %s", c.name, kerr.ErrorForCode(got), kerr.ErrorForCode(c.want))
		}
	}
	b.Close()
	if got := b.errorCode(closed); got != kerr.NotLeaderForPartition.Code {
		t.Errorf("log closed by shutdown: %s, want NOT_LEADER_FOR_PARTITION (retriable: the client comes back after the restart)", kerr.ErrorForCode(got))
	}
}
