package console

import (
	"net/http"
	"sort"

	"github.com/twmb/franz-go/pkg/kadm"
)

// overviewData is the overview page: the cluster at a glance.
type overviewData struct {
	ClusterID  string
	Controller int32
	Brokers    []kadm.BrokerDetail
	Topics     int
	Internal   int
	Partitions int
	Groups     int
	DiskBytes  int64
	DiskKnown  bool
	Disks      []diskRow
	DiskErr    string
	Produce    Series
	Consume    Series
	// From Config.Metrics: fsync latency and request rates.
	MetricsOn  bool
	MetricsErr string // the last scrape's failure
	FsyncSeen  bool   // the metrics have spool's fsync histogram
	FsyncP50   Series
	FsyncP99   Series
	ProduceReq Series
	FetchReq   Series
}

// diskRow is one log directory of one broker (DescribeLogDirs).
type diskRow struct {
	Broker int32
	Dir    string
	Size   int64 // the partitions' bytes
	Total  int64 // the volume's size, -1 when the broker does not say (Kafka < 3.3)
	Usable int64 // its free bytes, -1 likewise
	Err    string
}

// UsedPercent is the share of the volume in use, -1 when unknown.
func (d diskRow) UsedPercent() int {
	if d.Total <= 0 || d.Usable < 0 {
		return -1
	}
	return int(100 * (d.Total - d.Usable) / d.Total)
}

func (c *Console) overview(w http.ResponseWriter, r *http.Request) {
	cl, adm, err := c.client()
	if err != nil {
		c.fail(w, r, err)
		return
	}
	ctx, cancel := c.pageContext(r)
	defer cancel()
	md, err := freshMetadata(ctx, cl)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	d := overviewData{ClusterID: md.Cluster, Controller: md.Controller, Brokers: md.Brokers}
	sort.Slice(d.Brokers, func(i, j int) bool { return d.Brokers[i].NodeID < d.Brokers[j].NodeID })
	for name, t := range md.Topics {
		if !c.visible(r, topicResource, name) {
			continue
		}
		if isInternalTopic(t) {
			d.Internal++
			continue
		}
		d.Topics++
		d.Partitions += len(t.Partitions)
	}
	if groups, err := adm.ListGroups(ctx); err == nil {
		d.Groups = len(groups)
	}
	if dirs, err := adm.DescribeAllLogDirs(ctx, nil); err != nil {
		d.DiskErr = err.Error()
	} else {
		d.DiskKnown = true
		for _, ld := range dirs.Sorted() {
			row := diskRow{Broker: ld.Broker, Dir: ld.Dir, Size: ld.Size(), Total: ld.TotalBytes, Usable: ld.UsableBytes}
			if ld.Err != nil {
				row.Err = ld.Err.Error()
			}
			d.DiskBytes += row.Size
			d.Disks = append(d.Disks, row)
		}
	}
	smps := c.sampler.samples()
	d.Produce = rateSeries("records produced/s", smps, func(s sample) (int64, bool) { return sumMap(s.TopicEnds), true })
	d.Consume = rateSeries("offsets committed/s", smps, func(s sample) (int64, bool) { return sumMap(s.GroupCommitted), true })
	if c.cfg.Metrics != nil {
		d.MetricsOn = true
		if m := lastMetrics(smps); m != nil {
			d.MetricsErr = m.Err
		}
		for _, s := range smps {
			if s.Metrics != nil && s.Metrics.Fsync != nil {
				d.FsyncSeen = true
			}
		}
		d.FsyncP50 = fsyncSeries("p50", smps, 0.50)
		d.FsyncP99 = fsyncSeries("p99", smps, 0.99)
		d.ProduceReq = requestRateSeries("Produce", "0", smps)
		d.FetchReq = requestRateSeries("Fetch", "1", smps)
	}
	c.render(w, r, http.StatusOK, "overview", "Overview", "", d)
}

func sumMap(m map[string]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}
