package console

import (
	"context"
	"encoding/base64"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/spoolmq/spool/internal/httpapi"
)

// partitionRow is one partition of the topic page.
type partitionRow struct {
	Partition int32
	Leader    int32
	Replicas  []int32
	ISR       []int32
	Start     int64
	End       int64
	Records   int64
	Size      int64
	SizeKnown bool
	Err       string
}

// configRow is one config of the topic page.
type configRow struct {
	Name      string
	Value     string
	Sensitive bool
	Source    string // Kafka's name: DYNAMIC_TOPIC_CONFIG, DEFAULT_CONFIG, ...
	Override  bool   // set on the topic (so it can be reset)
	Default   string // the value it falls back to, when the broker says
}

// topicConfigsData is the configs section of the topic page (also the
// fragment an edit answers).
type topicConfigsData struct {
	Topic    string
	Configs  []configRow
	Denied   string // why the configs are not shown (no DescribeConfigs)
	CanEdit  bool
	EditNote string // why the configs cannot be edited
	Done     string // the change just made
}

type topicData struct {
	Name       string
	Internal   bool
	ID         string
	Partitions []partitionRow
	Records    int64
	Size       int64
	SizeKnown  bool
	Rate       Series
	Configs    topicConfigsData
	CanDelete  bool
	DeleteNote string
	// CanAddPartitions: Alter on the topic, and not read-only.
	CanAddPartitions bool
}

// topicDetail serves /topics/{topic}: its partitions with their leaders,
// offsets and sizes, its configs with their sources and an edit form.
func (c *Console) topicDetail(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("topic")
	if err := c.mayRead(r, topicResource, name, kmsg.ACLOperationDescribe); err != nil {
		c.fail(w, r, err)
		return
	}
	cl, adm, err := c.client()
	if err != nil {
		c.fail(w, r, err)
		return
	}
	ctx, cancel := c.pageContext(r)
	defer cancel()
	md, err := freshMetadata(ctx, cl, name)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	t, ok := md.Topics[name]
	if !ok {
		c.fail(w, r, kafkaProblem("describe topic", name, kerr.UnknownTopicOrPartition, ""))
		return
	}
	if t.Err != nil {
		c.fail(w, r, kafkaProblem("describe topic", name, t.Err, ""))
		return
	}
	d := topicData{Name: name, Internal: isInternalTopic(t)}
	if t.ID != (kadm.TopicID{}) {
		// As Kafka prints a Uuid: URL-safe base64 without padding.
		d.ID = base64.RawURLEncoding.EncodeToString(t.ID[:])
	}
	if err := c.fillPartitions(ctx, adm, &d, t); err != nil {
		c.fail(w, r, err)
		return
	}
	smps := c.sampler.samples()
	d.Rate = rateSeries("records produced/s", smps, func(s sample) (int64, bool) {
		v, ok := s.TopicEnds[name]
		return v, ok
	})
	if d.Configs, err = c.topicConfigs(ctx, r, adm, name); err != nil {
		c.fail(w, r, err)
		return
	}
	if err := c.mayWrite(r, topicResource, name, kmsg.ACLOperationDelete); err != nil {
		d.DeleteNote = err.Error()
	} else {
		d.CanDelete = true
	}
	d.CanAddPartitions = c.mayWrite(r, topicResource, name, kmsg.ACLOperationAlter) == nil
	c.render(w, r, http.StatusOK, "topic", "Topic "+name, "topics", d)
}

// fillPartitions reads the partitions' start and end offsets and sizes.
func (c *Console) fillPartitions(ctx context.Context, adm *kadm.Client, d *topicData, t kadm.TopicDetail) error {
	starts, err := adm.ListStartOffsets(ctx, d.Name)
	if err != nil {
		return kafkaProblem("list start offsets of topic", d.Name, err, "")
	}
	ends, err := adm.ListEndOffsets(ctx, d.Name)
	if err != nil {
		return kafkaProblem("list end offsets of topic", d.Name, err, "")
	}
	sizes := map[int32]int64{}
	set := kadm.TopicsSet{}
	for p := range t.Partitions {
		set.Add(d.Name, p)
	}
	if dirs, err := adm.DescribeAllLogDirs(ctx, set); err == nil {
		dirs.Each(func(ld kadm.DescribedLogDir) {
			ld.Topics.Each(func(p kadm.DescribedLogDirPartition) {
				if p.Topic == d.Name {
					sizes[p.Partition] += p.Size
				}
			})
		})
		d.SizeKnown = true
	}
	for _, p := range t.Partitions.Sorted() {
		row := partitionRow{Partition: p.Partition, Leader: p.Leader, Replicas: p.Replicas, ISR: p.ISR}
		if p.Err != nil {
			row.Err = p.Err.Error()
		}
		s, okS := starts.Lookup(d.Name, p.Partition)
		e, okE := ends.Lookup(d.Name, p.Partition)
		switch {
		case !okS || !okE:
			row.Err = "no offsets answered"
		case s.Err != nil:
			row.Err = s.Err.Error()
		case e.Err != nil:
			row.Err = e.Err.Error()
		default:
			row.Start, row.End, row.Records = s.Offset, e.Offset, e.Offset-s.Offset
		}
		row.Size, row.SizeKnown = sizes[p.Partition], d.SizeKnown
		d.Records += row.Records
		d.Size += row.Size
		d.Partitions = append(d.Partitions, row)
	}
	return nil
}

// topicConfigs describes the topic's configs, when the principal may
// (DescribeConfigs), sorted by name.
func (c *Console) topicConfigs(ctx context.Context, r *http.Request, adm *kadm.Client, name string) (topicConfigsData, error) {
	d := topicConfigsData{Topic: name}
	if err := c.mayWrite(r, topicResource, name, kmsg.ACLOperationAlterConfigs); err != nil {
		d.EditNote = err.Error()
	} else {
		d.CanEdit = true
	}
	if err := c.mayRead(r, topicResource, name, kmsg.ACLOperationDescribeConfigs); err != nil {
		d.Denied, d.CanEdit = err.Error(), false
		return d, nil
	}
	rcs, err := adm.DescribeTopicConfigs(ctx, name)
	if err != nil {
		return d, kafkaProblem("describe configs of topic", name, err, "")
	}
	rc, err := rcs.On(name, nil)
	if err == nil {
		err = rc.Err
	}
	if err != nil {
		return d, kafkaProblem("describe configs of topic", name, err, rc.ErrMessage)
	}
	for _, cfg := range rc.Configs {
		row := configRow{Name: cfg.Key, Value: cfg.MaybeValue(), Sensitive: cfg.Sensitive, Source: cfg.Source.String(),
			Override: cfg.Source == kmsg.ConfigSourceDynamicTopicConfig}
		for _, syn := range cfg.Synonyms {
			if syn.Source != kmsg.ConfigSourceDynamicTopicConfig {
				if syn.Value != nil {
					row.Default = *syn.Value
				}
				break
			}
		}
		d.Configs = append(d.Configs, row)
	}
	sort.Slice(d.Configs, func(i, j int) bool { return d.Configs[i].Name < d.Configs[j].Name })
	return d, nil
}

// SourceLabel says where a config's value comes from, in words.
func (r configRow) SourceLabel() string {
	switch r.Source {
	case "DYNAMIC_TOPIC_CONFIG":
		return "topic override"
	case "DYNAMIC_BROKER_CONFIG":
		return "broker (dynamic)"
	case "DYNAMIC_DEFAULT_BROKER_CONFIG":
		return "cluster default (dynamic)"
	case "STATIC_BROKER_CONFIG":
		return "broker config"
	case "DEFAULT_CONFIG":
		return "default"
	}
	return strings.ToLower(r.Source)
}

// joinInts formats broker ids: "0, 1, 2".
func joinInts(ns []int32) string {
	parts := make([]string, len(ns))
	for i, n := range ns {
		parts[i] = strconv.Itoa(int(n))
	}
	return strings.Join(parts, ", ")
}

// addPartitions raises the topic's partition count to the form's count
// (CreatePartitions). Kafka never removes partitions: a count not above
// the current one is the broker's INVALID_PARTITIONS, answered 400.
func (c *Console) addPartitions(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("topic")
	if err := parseForm(w, r); err != nil {
		c.fail(w, r, err)
		return
	}
	if err := c.mayWrite(r, topicResource, name, kmsg.ACLOperationAlter); err != nil {
		c.fail(w, r, err)
		return
	}
	count, err := formInt(r, "count", 1, 1<<20)
	if err == nil && count < 0 {
		err = httpapi.Errorf(http.StatusBadRequest, "console: add partitions to topic %q: how many partitions should it have?", name)
	}
	if err != nil {
		c.fail(w, r, err)
		return
	}
	_, adm, err := c.client()
	if err != nil {
		c.fail(w, r, err)
		return
	}
	ctx, cancel := c.pageContext(r)
	defer cancel()
	resps, err := adm.UpdatePartitions(ctx, count, name)
	var msg string
	if err == nil {
		resp, ok := resps[name]
		switch {
		case !ok:
			err = kerr.UnknownTopicOrPartition
		case resp.Err != nil:
			err, msg = resp.Err, resp.ErrMessage
		}
	}
	if err != nil {
		c.fail(w, r, kafkaProblem("add partitions to topic", name, err, msg))
		return
	}
	c.cfg.Logger.Info("console: partitions added", "topic", name, "partitions", count, "principal", c.principalName(r))
	c.sampler.poke()
	c.redirect(w, r, c.cfg.BasePath+"topics/"+url.PathEscape(name))
}
