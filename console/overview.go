package console

import (
	"net/http"
	"sort"
	"strings"

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
	Produce    Series
	Consume    Series
}

func (c *Console) overview(w http.ResponseWriter, r *http.Request) {
	_, adm, err := c.client()
	if err != nil {
		c.fail(w, r, err)
		return
	}
	ctx, cancel := c.pageContext(r)
	defer cancel()
	md, err := adm.Metadata(ctx)
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
		if t.IsInternal || strings.HasPrefix(name, "__") {
			d.Internal++
			continue
		}
		d.Topics++
		d.Partitions += len(t.Partitions)
	}
	if groups, err := adm.ListGroups(ctx); err == nil {
		d.Groups = len(groups)
	}
	if dirs, err := adm.DescribeAllLogDirs(ctx, nil); err == nil {
		d.DiskKnown = true
		dirs.Each(func(ld kadm.DescribedLogDir) { d.DiskBytes += ld.Size() })
	}
	smps := c.sampler.samples()
	d.Produce = rateSeries("records produced/s", smps, func(s sample) (int64, bool) { return sumMap(s.TopicEnds), true })
	d.Consume = rateSeries("offsets committed/s", smps, func(s sample) (int64, bool) { return sumMap(s.GroupCommitted), true })
	c.render(w, r, http.StatusOK, "overview", "Overview", "", d)
}

func sumMap(m map[string]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}
