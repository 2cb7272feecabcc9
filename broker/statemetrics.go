package broker

import (
	"context"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/spoolmq/spool/storage"
)

// stateCollector exports, at scrape time, the state a broker holds rather
// than the events it sees: each partition's size and offsets, each group's
// state, and each committed offset's lag, computed by the broker itself so
// that no lag exporter is needed:
//
//	spool_partition_log_bytes{topic,partition}             bytes on disk
//	spool_partition_start_offset{topic,partition}          log start offset
//	spool_partition_end_offset{topic,partition}            high watermark
//	spool_group_members{group,state}                        members (state as a label)
//	spool_group_lag_records{group,topic,partition}          end offset - committed offset
//	spool_group_lag_seconds{group,topic,partition}          age of the oldest unconsumed record
//	spool_group_coordinator_loaded                          1 once the coordinator has loaded
//	spool_storage_disk_free_bytes, ..._total_bytes          the data directory's file system
//
// Lag in seconds is now minus the first timestamp of the batch holding the
// committed offset (0 when the group is caught up): the age of the oldest
// record the group has not consumed, to within one producer batch. It
// costs one read of one batch per lagging partition per scrape.
type stateCollector struct {
	b *Broker

	logBytes, startOffset, endOffset *prometheus.Desc
	members, lagRecords, lagSeconds  *prometheus.Desc
	loaded                           *prometheus.Desc
	diskFree, diskTotal              *prometheus.Desc
}

func newStateCollector(b *Broker) *stateCollector {
	tp := []string{"topic", "partition"}
	gtp := []string{"group", "topic", "partition"}
	return &stateCollector{
		b:           b,
		logBytes:    prometheus.NewDesc("spool_partition_log_bytes", "Bytes of the partition's segments on disk.", tp, nil),
		startOffset: prometheus.NewDesc("spool_partition_start_offset", "The partition's log start offset (the first offset retention and DeleteRecords kept).", tp, nil),
		endOffset:   prometheus.NewDesc("spool_partition_end_offset", "The partition's high watermark: the offset the next record gets, once durable.", tp, nil),
		members:     prometheus.NewDesc("spool_group_members", "Members of a consumer group, with its state as a label.", []string{"group", "state"}, nil),
		lagRecords:  prometheus.NewDesc("spool_group_lag_records", "Records between a group's committed offset and the partition's end.", gtp, nil),
		lagSeconds:  prometheus.NewDesc("spool_group_lag_seconds", "Age of the oldest record a group has not consumed (0 when caught up), to within one producer batch.", gtp, nil),
		loaded:      prometheus.NewDesc("spool_group_coordinator_loaded", "1 once the group coordinator has loaded its offsets, 0 before.", nil, nil),
		diskFree:    prometheus.NewDesc("spool_storage_disk_free_bytes", "Bytes available to Spool on the data directory's file system.", nil, nil),
		diskTotal:   prometheus.NewDesc("spool_storage_disk_total_bytes", "Size of the data directory's file system.", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.logBytes, c.startOffset, c.endOffset, c.members, c.lagRecords, c.lagSeconds, c.loaded, c.diskFree, c.diskTotal} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	if !c.b.started.Load() {
		ch <- prometheus.MustNewConstMetric(c.loaded, prometheus.GaugeValue, 0)
		return
	}
	if free, total, ok := diskUsage(c.b.cfg.DataDir); ok {
		ch <- prometheus.MustNewConstMetric(c.diskFree, prometheus.GaugeValue, float64(free))
		ch <- prometheus.MustNewConstMetric(c.diskTotal, prometheus.GaugeValue, float64(total))
	}
	ts := c.b.topics()
	for _, t := range ts.sorted() {
		for p, l := range t.parts {
			ps := strconv.Itoa(p)
			ch <- prometheus.MustNewConstMetric(c.logBytes, prometheus.GaugeValue, float64(l.Size()), t.name, ps)
			ch <- prometheus.MustNewConstMetric(c.startOffset, prometheus.GaugeValue, float64(l.LogStartOffset()), t.name, ps)
			ch <- prometheus.MustNewConstMetric(c.endOffset, prometheus.GaugeValue, float64(l.HighWatermark()), t.name, ps)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	groups, offs, err := c.b.groups.Snapshot(ctx)
	if err != nil {
		ch <- prometheus.MustNewConstMetric(c.loaded, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.loaded, prometheus.GaugeValue, 1)
	for _, g := range groups {
		ch <- prometheus.MustNewConstMetric(c.members, prometheus.GaugeValue, float64(g.Members), g.Group, g.State)
	}
	now := c.b.cfg.Now()
	for _, o := range offs {
		t := ts.byName[o.Topic]
		if t == nil || int(o.Partition) >= len(t.parts) {
			continue // committed for a topic that is gone
		}
		l := t.parts[o.Partition]
		lag := max(l.HighWatermark()-o.Offset, 0)
		ps := strconv.Itoa(int(o.Partition))
		ch <- prometheus.MustNewConstMetric(c.lagRecords, prometheus.GaugeValue, float64(lag), o.Group, o.Topic, ps)
		ch <- prometheus.MustNewConstMetric(c.lagSeconds, prometheus.GaugeValue, lagSeconds(l, o.Offset, lag, now), o.Group, o.Topic, ps)
	}
}

// lagSeconds is the age at now of the record at offset (0 when lag is 0 or
// the record cannot be read, e.g. retention removed it a moment ago).
func lagSeconds(l *storage.Log, offset, lag int64, now time.Time) float64 {
	if lag == 0 {
		return 0
	}
	off := max(offset, l.LogStartOffset())
	rr, err := l.Read(off, 1)
	if err != nil || len(rr.Records) == 0 {
		return 0
	}
	h, err := storage.ParseBatchHeader(rr.Records)
	if err != nil {
		return 0
	}
	return max(now.Sub(time.UnixMilli(h.FirstTimestamp)).Seconds(), 0)
}
