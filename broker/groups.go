package broker

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/spoolmq/spool/broker/group"
	"github.com/spoolmq/spool/broker/producers"
	"github.com/spoolmq/spool/storage"
)

// stateDir holds the group coordinator's and the producer state's files
// inside the data directory. Its name has no "-<partition>" suffix, so
// storage does not take it for a partition log.
const stateDir = "__state"

// startGroups starts the group coordinator (loading committed offsets in the
// background: requests meanwhile get COORDINATOR_LOAD_IN_PROGRESS) and
// rebuilds the idempotent-producer state from the logs. Called by Start
// after the topics are loaded.
func (b *Broker) startGroups() error {
	dir := filepath.Join(b.cfg.DataDir, stateDir)
	pm, err := producers.Open(producers.Config{Dir: filepath.Join(dir, "producers"), FS: b.store.FS(), Logger: b.cfg.Logger}, b.store.Logs())
	if err != nil {
		return fmt.Errorf("broker: %w", err)
	}
	gc, err := group.New(group.Config{
		Dir:    filepath.Join(dir, "groups"),
		NoSync: b.cfg.Fsync == storage.FsyncNever,
		// Both set by Config.WithDefaults.
		MinSessionTimeout: b.cfg.GroupMinSessionTimeout,
		MaxSessionTimeout: b.cfg.GroupMaxSessionTimeout,
		PartitionExists: func(topic string, partition int32) bool {
			return b.topics().byName[topic].partition(partition) != nil
		},
		Logger: b.cfg.Logger,
	})
	if err != nil {
		pm.Close(nil)
		return fmt.Errorf("broker: %w", err)
	}
	gc.Start()
	b.producers, b.groups = pm, gc
	return nil
}

// closeGroups stops the coordinator (its journal is snapshotted) and writes
// the producer-state snapshot. Called by Close after the last request and
// before the store closes.
func (b *Broker) closeGroups() error {
	var errs []error
	if b.groups != nil {
		errs = append(errs, b.groups.Close())
	}
	if b.producers != nil {
		errs = append(errs, b.producers.Close(b.store.Logs()))
	}
	return errors.Join(errs...)
}

func (r *request) client() group.Client {
	return group.Client{ID: r.clientID, Host: r.conn.remote}
}
