package broker

import (
	"context"
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

// startGroups rebuilds the idempotent-producer state from the logs and
// starts the group coordinator, waiting until it has loaded the committed
// offsets: a journal or snapshot it cannot read stops the start with the
// file, the offset and a remedy, rather than leaving the coordinator
// answering COORDINATOR_LOAD_IN_PROGRESS forever. Called by Start after the
// topics are loaded.
func (b *Broker) startGroups(ctx context.Context) error {
	dir := filepath.Join(b.store.Dir(), stateDir)
	pm, err := producers.Open(producers.Config{
		Dir:    filepath.Join(dir, "producers"),
		FS:     b.store.FS(),
		Logs:   b.store.Logs,
		Logger: b.cfg.Logger,
	}, b.store.Logs())
	if err != nil {
		return fmt.Errorf("broker: %w", err)
	}
	gc, err := group.New(group.Config{
		Dir:    filepath.Join(dir, "groups"),
		FS:     b.store.FS(),
		NoSync: b.cfg.Fsync == storage.FsyncNever,
		// Both set by Config.WithDefaults.
		MinSessionTimeout: b.cfg.GroupMinSessionTimeout,
		MaxSessionTimeout: b.cfg.GroupMaxSessionTimeout,
		// Negative (none) becomes 0 here.
		InitialRebalanceDelay: max(b.cfg.GroupInitialRebalanceDelay, 0),
		MaxGroupSize:          b.cfg.GroupMaxSize,
		PartitionExists: func(topic string, partition int32) bool {
			return b.topics().byName[topic].partition(partition) != nil
		},
		Logger: b.cfg.Logger,
	})
	if err != nil {
		pm.Close(nil)
		return fmt.Errorf("broker: %w", err)
	}
	var loadErr error
	select {
	case loadErr = <-gc.Start():
	case <-ctx.Done():
		loadErr = fmt.Errorf("group coordinator still loading: %w", ctx.Err())
	}
	if loadErr != nil {
		gc.Close()
		pm.Close(nil)
		return fmt.Errorf("broker: %w", loadErr)
	}
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
