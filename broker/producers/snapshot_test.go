package producers

import (
	"testing"

	"github.com/spoolmq/spool/storage"
)

// TestOpenIgnoresDamagedSnapshotEntries: a snapshot is written atomically,
// so damage is unexpected, but it must not stop the broker from starting:
// an unreadable snapshot or a null producer entry is skipped (the log holds
// everything the snapshot does).
func TestOpenIgnoresDamagedSnapshotEntries(t *testing.T) {
	for name, content := range map[string]string{
		"null producer": `{"partitions":[{"topic":"t","partition":0,"offset":0,"producers":{"7":null,"8":{"epoch":1,"batches":[]}}}]}`,
		"not json":      `{"partitions":[`,
	} {
		t.Run(name, func(t *testing.T) {
			fsys := storage.NewMemFS()
			st, err := storage.Open(storage.Options{Dir: "/data", FS: fsys, RetentionCheckInterval: -1})
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			l, err := st.CreateLog(storage.TopicPartition{Topic: "t", Partition: 0}, storage.LogConfig{})
			if err != nil {
				t.Fatal(err)
			}
			if err := fsys.MkdirAll("/state"); err != nil {
				t.Fatal(err)
			}
			if err := storage.WriteFileAtomic(fsys, "/state/"+snapName, []byte(content)); err != nil {
				t.Fatal(err)
			}
			m, err := Open(Config{Dir: "/state", FS: fsys}, []*storage.Log{l})
			if err != nil {
				t.Fatalf("Open with a damaged snapshot: %v", err)
			}
			m.Close([]*storage.Log{l})
		})
	}
}
