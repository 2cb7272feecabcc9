package console

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/spoolmq/spool/internal/httpapi"
)

// The topics pages: the list (/topics), a topic's partitions and configs
// (/topics/{topic}), and the actions that change them: create (POST
// /topics), delete (POST /topics/{topic}/delete, with the topic's name
// typed as confirmation) and edit a config (POST /topics/{topic}/configs,
// IncrementalAlterConfigs). Everything is read and changed through the
// Kafka admin APIs, so the broker's own validation decides and its error
// message is what the page shows.

// maxFormBytes bounds the body of a topics form.
const maxFormBytes = 64 << 10

// topicRow is one line of the topics list.
type topicRow struct {
	Name        string
	Internal    bool
	Partitions  int
	Replication int
	Records     int64 // sum over partitions of end - start
	EndOffsets  int64 // sum of the end offsets
	Size        int64
	SizeKnown   bool
	Rate        float64 // records produced per second, from the sampler
	ConfigsSeen bool    // the principal may DescribeConfigs
	RetentionMs string
	RetentionB  string
	Cleanup     string
}

type topicsData struct {
	Query    string
	Internal bool
	Sort     string // name, partitions, records, size or rate
	Desc     bool
	Heads    map[string]sortHead // the sortable columns' headers
	Rows     []topicRow
	Hidden   int // internal topics left out
	Total    int
	Deleted  string
	ReadOnly bool
	Err      string // a part of the list the cluster did not answer
}

// topics serves the topics list; an htmx request from the filter form
// gets the table alone.
func (c *Console) topics(w http.ResponseWriter, r *http.Request) {
	cl, adm, err := c.client()
	if err != nil {
		c.fail(w, r, err)
		return
	}
	ctx, cancel := c.pageContext(r)
	defer cancel()
	q := r.URL.Query()
	d := topicsData{Query: strings.TrimSpace(q.Get("q")), Internal: q.Get("internal") != "", Deleted: q.Get("deleted"), ReadOnly: c.cfg.ReadOnly}
	if err := d.parseSort(q); err != nil {
		c.fail(w, r, err)
		return
	}
	md, err := freshMetadata(ctx, cl)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	var names []string
	for name, t := range md.Topics {
		if t.Err != nil || !c.visible(r, topicResource, name) {
			continue
		}
		d.Total++
		internal := isInternalTopic(t)
		if internal && !d.Internal {
			d.Hidden++
			continue
		}
		if d.Query != "" && !strings.Contains(strings.ToLower(name), strings.ToLower(d.Query)) {
			continue
		}
		row := topicRow{Name: name, Internal: internal, Partitions: len(t.Partitions)}
		if p, ok := t.Partitions[0]; ok {
			row.Replication = len(p.Replicas)
		}
		d.Rows = append(d.Rows, row)
		names = append(names, name)
	}
	sort.Slice(d.Rows, func(i, j int) bool { return d.Rows[i].Name < d.Rows[j].Name })
	if len(names) > 0 {
		d.Err = c.fillTopicRows(ctx, r, adm, d.Rows, names)
	}
	d.sortRows()
	d.Heads = map[string]sortHead{}
	for key, title := range topicSortColumns {
		h := sortHead{Key: key, Title: title, Href: d.sortHref(c.cfg.BasePath, key), Numeric: key != "name"}
		if key == d.Sort {
			h.AriaSort = "ascending"
			if d.Desc {
				h.AriaSort = "descending"
			}
		}
		d.Heads[key] = h
	}
	if r.Header.Get("HX-Request") != "" && r.Header.Get("HX-Target") == "topic-list" {
		c.renderFragment(w, r, "topics", "topic-list", d)
		return
	}
	c.render(w, r, http.StatusOK, "topics", "Topics", "topics", d)
}

// topicSortColumns are the columns the list sorts by, with their titles.
var topicSortColumns = map[string]string{"name": "Name", "partitions": "Partitions", "records": "Records", "size": "Size", "rate": "Produce/s"}

// parseSort reads ?sort= and ?dir= (default: by name, ascending).
func (d *topicsData) parseSort(q url.Values) error {
	d.Sort = q.Get("sort")
	if d.Sort == "" {
		d.Sort = "name"
	}
	if _, ok := topicSortColumns[d.Sort]; !ok {
		return httpapi.Errorf(http.StatusBadRequest, "console: sort %q: want name, partitions, records, size or rate", d.Sort)
	}
	switch dir := q.Get("dir"); dir {
	case "", "asc":
	case "desc":
		d.Desc = true
	default:
		return httpapi.Errorf(http.StatusBadRequest, "console: dir %q: want asc or desc", dir)
	}
	return nil
}

// sortRows orders the rows by d.Sort, ties by name.
func (d *topicsData) sortRows() {
	key := func(r topicRow) float64 {
		switch d.Sort {
		case "partitions":
			return float64(r.Partitions)
		case "records":
			return float64(r.Records)
		case "size":
			return float64(r.Size)
		case "rate":
			return r.Rate
		}
		return 0
	}
	sort.SliceStable(d.Rows, func(i, j int) bool {
		a, b := d.Rows[i], d.Rows[j]
		if ka, kb := key(a), key(b); ka != kb {
			return (ka < kb) != d.Desc
		}
		return (a.Name < b.Name) != (d.Desc && d.Sort == "name")
	})
}

// sortHref links the list sorted by key, keeping the filters; the current
// column's link turns the direction, another column's starts with the
// biggest first (the name with A).
func (d *topicsData) sortHref(base, key string) string {
	v := url.Values{}
	v.Set("sort", key)
	desc := key != "name"
	if key == d.Sort {
		desc = !d.Desc
	}
	if desc {
		v.Set("dir", "desc")
	}
	if d.Query != "" {
		v.Set("q", d.Query)
	}
	if d.Internal {
		v.Set("internal", "1")
	}
	return base + "topics?" + v.Encode()
}

// fillTopicRows adds the offsets, sizes, rates and configs to rows. What
// the cluster does not answer stays empty and is named in the result.
func (c *Console) fillTopicRows(ctx context.Context, r *http.Request, adm *kadm.Client, rows []topicRow, names []string) string {
	var problems []string
	byName := make(map[string]*topicRow, len(rows))
	for i := range rows {
		byName[rows[i].Name] = &rows[i]
	}
	starts, err := adm.ListStartOffsets(ctx, names...)
	if err != nil {
		problems = append(problems, "start offsets: "+err.Error())
	}
	ends, err2 := adm.ListEndOffsets(ctx, names...)
	if err2 != nil {
		problems = append(problems, "end offsets: "+err2.Error())
	}
	if err == nil && err2 == nil {
		ends.Each(func(o kadm.ListedOffset) {
			row := byName[o.Topic]
			if row == nil || o.Err != nil {
				return
			}
			row.EndOffsets += o.Offset
			if s, ok := starts.Lookup(o.Topic, o.Partition); ok && s.Err == nil {
				row.Records += o.Offset - s.Offset
			}
		})
	}
	// DescribeLogDirs answers the partitions asked for: name them all.
	set := kadm.TopicsSet{}
	for _, row := range rows {
		for p := range row.Partitions {
			set.Add(row.Name, int32(p))
		}
	}
	if dirs, err := adm.DescribeAllLogDirs(ctx, set); err != nil {
		problems = append(problems, "sizes (DescribeLogDirs): "+err.Error())
	} else {
		dirs.Each(func(ld kadm.DescribedLogDir) {
			ld.Topics.Each(func(p kadm.DescribedLogDirPartition) {
				if row := byName[p.Topic]; row != nil {
					row.Size += p.Size
					row.SizeKnown = true
				}
			})
		})
	}
	smps := c.sampler.samples()
	for i := range rows {
		name := rows[i].Name
		rows[i].Rate = lastRate(rateSeries(name, smps, func(s sample) (int64, bool) {
			v, ok := s.TopicEnds[name]
			return v, ok
		}))
	}
	var described []string
	for _, n := range names {
		if c.mayRead(r, topicResource, n, kmsg.ACLOperationDescribeConfigs) == nil {
			described = append(described, n)
		}
	}
	if len(described) > 0 {
		rcs, err := adm.DescribeTopicConfigs(ctx, described...)
		if err != nil {
			problems = append(problems, "configs: "+err.Error())
		}
		for _, rc := range rcs {
			row := byName[rc.Name]
			if row == nil || rc.Err != nil {
				continue
			}
			row.ConfigsSeen = true
			for _, cfg := range rc.Configs {
				switch cfg.Key {
				case "retention.ms":
					row.RetentionMs = humanMillis(cfg.MaybeValue())
				case "retention.bytes":
					row.RetentionB = humanLimitBytes(cfg.MaybeValue())
				case "cleanup.policy":
					row.Cleanup = cfg.MaybeValue()
				}
			}
		}
	}
	return strings.Join(problems, "; ")
}

// isInternalTopic: Kafka's internal topics and, by convention, every name
// starting with "__" (__consumer_offsets, __spool_*, Connect's and
// Streams' own).
func isInternalTopic(t kadm.TopicDetail) bool {
	return t.IsInternal || strings.HasPrefix(t.Topic, "__")
}

// createTopic creates the topic of the form: name, partitions and
// replication factor (empty: the broker's defaults) and configs, one
// name=value a line. The broker validates all of it.
func (c *Console) createTopic(w http.ResponseWriter, r *http.Request) {
	if err := parseForm(w, r); err != nil {
		c.fail(w, r, err)
		return
	}
	name := strings.TrimSpace(r.PostForm.Get("name"))
	if name == "" {
		c.fail(w, r, httpapi.Errorf(http.StatusBadRequest, "console: create topic: the topic needs a name"))
		return
	}
	if err := c.mayCreateTopic(r, name); err != nil {
		c.fail(w, r, err)
		return
	}
	partitions, err := formInt(r, "partitions", 1, 1<<20)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	replication, err := formInt(r, "replication", 1, 1<<10)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	configs, err := parseConfigLines(r.PostForm.Get("configs"))
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
	resp, err := adm.CreateTopic(ctx, int32(partitions), int16(replication), configs, name)
	if err != nil {
		c.fail(w, r, kafkaProblem("create topic", name, err, resp.ErrMessage))
		return
	}
	c.cfg.Logger.Info("console: topic created", "topic", name, "partitions", resp.NumPartitions, "principal", c.principalName(r))
	c.sampler.poke()
	c.redirect(w, r, c.cfg.BasePath+"topics/"+url.PathEscape(name))
}

// mayCreateTopic: Kafka lets CREATE on the topic or on the cluster create
// a topic.
func (c *Console) mayCreateTopic(r *http.Request, name string) error {
	err := c.mayWrite(r, topicResource, name, kmsg.ACLOperationCreate)
	if err == nil || c.cfg.ReadOnly {
		return err
	}
	if c.mayRead(r, clusterResource, "kafka-cluster", kmsg.ACLOperationCreate) == nil {
		return nil
	}
	return httpapi.Errorf(http.StatusForbidden, "console: %s may not CREATE topic %q: no ACL grants CREATE on the topic or on the cluster", principal(r), name)
}

// deleteTopic deletes the topic once the form's confirm field holds its
// name.
func (c *Console) deleteTopic(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("topic")
	if err := parseForm(w, r); err != nil {
		c.fail(w, r, err)
		return
	}
	if err := c.mayWrite(r, topicResource, name, kmsg.ACLOperationDelete); err != nil {
		c.fail(w, r, err)
		return
	}
	if got := r.PostForm.Get("confirm"); got != name {
		c.fail(w, r, httpapi.Errorf(http.StatusBadRequest, "console: delete topic %q: type the topic's name to confirm (got %q)", name, got))
		return
	}
	_, adm, err := c.client()
	if err != nil {
		c.fail(w, r, err)
		return
	}
	ctx, cancel := c.pageContext(r)
	defer cancel()
	resp, err := adm.DeleteTopic(ctx, name)
	if err != nil {
		c.fail(w, r, kafkaProblem("delete topic", name, err, resp.ErrMessage))
		return
	}
	c.cfg.Logger.Info("console: topic deleted", "topic", name, "principal", c.principalName(r))
	c.sampler.poke()
	c.redirect(w, r, c.cfg.BasePath+"topics?deleted="+url.QueryEscape(name))
}

// alterTopicConfig sets (op=set) or removes the override of (op=delete)
// one config of the topic with IncrementalAlterConfigs, and answers the
// configs table again.
func (c *Console) alterTopicConfig(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("topic")
	if err := parseForm(w, r); err != nil {
		c.fail(w, r, err)
		return
	}
	if err := c.mayWrite(r, topicResource, name, kmsg.ACLOperationAlterConfigs); err != nil {
		c.fail(w, r, err)
		return
	}
	key := strings.TrimSpace(r.PostForm.Get("name"))
	if key == "" {
		c.fail(w, r, httpapi.Errorf(http.StatusBadRequest, "console: alter configs of topic %q: no config name", name))
		return
	}
	ac := kadm.AlterConfig{Name: key}
	var done string
	switch op := r.PostForm.Get("op"); op {
	case "", "set":
		v := strings.TrimSpace(r.PostForm.Get("value"))
		ac.Op, ac.Value = kadm.SetConfig, &v
		done = fmt.Sprintf("%s set to %s.", key, v)
	case "delete":
		ac.Op = kadm.DeleteConfig
		done = fmt.Sprintf("%s reset to its default.", key)
	default:
		c.fail(w, r, httpapi.Errorf(http.StatusBadRequest, "console: alter configs of topic %q: op %q: want set or delete", name, op))
		return
	}
	_, adm, err := c.client()
	if err != nil {
		c.fail(w, r, err)
		return
	}
	ctx, cancel := c.pageContext(r)
	defer cancel()
	resps, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{ac}, name)
	var msg string
	if err == nil {
		var resp kadm.AlterConfigsResponse
		if resp, err = resps.On(name, nil); err == nil {
			err, msg = resp.Err, resp.ErrMessage
		}
	}
	if err != nil {
		c.fail(w, r, kafkaProblem("alter configs of topic", name, err, msg))
		return
	}
	c.cfg.Logger.Info("console: topic config altered", "topic", name, "config", key, "op", r.PostForm.Get("op"), "principal", c.principalName(r))
	cfgs, err := c.topicConfigs(ctx, r, adm, name)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	cfgs.Done = done
	if r.Header.Get("HX-Request") == "" {
		c.redirect(w, r, c.cfg.BasePath+"topics/"+url.PathEscape(name))
		return
	}
	c.renderFragment(w, r, "topic", "configs", cfgs)
}

// redirect sends the browser to path after an action: htmx follows
// HX-Redirect, a plain form post a 303.
func (c *Console) redirect(w http.ResponseWriter, r *http.Request, path string) {
	if r.Header.Get("HX-Request") != "" {
		w.Header().Set("HX-Redirect", path)
		w.WriteHeader(http.StatusNoContent)
		return
	}
	http.Redirect(w, r, path, http.StatusSeeOther)
}

// kafkaProblem turns the error Kafka answered an admin request with into
// the HTTP status a caller understands, keeping Kafka's error name and
// the broker's message.
func kafkaProblem(what, topic string, err error, msg string) error {
	var he *httpapi.Error
	if errors.As(err, &he) {
		return err
	}
	status := kafkaStatus(err, http.StatusNotFound)
	if msg != "" && !strings.Contains(err.Error(), msg) {
		return httpapi.Errorf(status, "console: %s %q: %w (%s)", what, topic, err, msg)
	}
	return httpapi.Errorf(status, "console: %s %q: %w", what, topic, err)
}

// parseForm reads a bounded form body.
func parseForm(w http.ResponseWriter, r *http.Request) error {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		return httpapi.Errorf(http.StatusBadRequest, "console: form: %v", err)
	}
	return nil
}

// formInt reads an optional integer field in [lo, hi]; empty is -1 (the
// broker's default).
func formInt(r *http.Request, field string, lo, hi int) (int, error) {
	s := strings.TrimSpace(r.PostForm.Get(field))
	if s == "" {
		return -1, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < lo || n > hi {
		return 0, httpapi.Errorf(http.StatusBadRequest, "console: %s %q: want a number from %d to %d, or empty for the broker's default", field, s, lo, hi)
	}
	return n, nil
}

// parseConfigLines parses "name=value" lines; blank lines and lines
// starting with # are skipped.
func parseConfigLines(s string) (map[string]*string, error) {
	out := map[string]*string{}
	for i, line := range strings.Split(s, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok || k == "" {
			return nil, httpapi.Errorf(http.StatusBadRequest, "console: configs line %d %q: want name=value", i+1, line)
		}
		if _, dup := out[k]; dup {
			return nil, httpapi.Errorf(http.StatusBadRequest, "console: configs line %d: %s is set twice", i+1, k)
		}
		out[k] = &v
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// humanMillis formats a retention.ms value: "7d", "36h", "forever" for -1.
func humanMillis(v string) string {
	ms, err := strconv.ParseInt(v, 10, 64)
	switch {
	case err != nil:
		return v
	case ms < 0:
		return "forever"
	case ms == 0:
		return "0"
	}
	d := time.Duration(ms) * time.Millisecond
	for _, u := range []struct {
		d time.Duration
		s string
	}{{24 * time.Hour, "d"}, {time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}} {
		if d >= u.d && d%u.d == 0 {
			return strconv.FormatInt(int64(d/u.d), 10) + u.s
		}
	}
	return strconv.FormatInt(ms, 10) + "ms"
}

// humanLimitBytes formats a retention.bytes value: "unlimited" for -1.
func humanLimitBytes(v string) string {
	n, err := strconv.ParseInt(v, 10, 64)
	switch {
	case err != nil:
		return v
	case n < 0:
		return "unlimited"
	}
	return humanBytes(n)
}
