package console

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/spoolmq/spool/internal/httpapi"
)

// The group actions: reset offsets (a dry run, then apply), delete a
// group, delete a group's offsets of a topic. Each checks the state of
// the group first and refuses, with 409, a group that has active members,
// as kafka-consumer-groups does; the broker refuses it again if members
// join in between (UNKNOWN_MEMBER_ID, NON_EMPTY_GROUP), which is also 409.

// resetModes are the ways to choose the new offsets, as
// kafka-consumer-groups --reset-offsets names them.
var resetModes = []struct{ Key, Title string }{
	{"earliest", "to earliest"},
	{"latest", "to latest"},
	{"time", "to a time"},
	{"shift", "shift by N"},
	{"offset", "to offset N"},
	{"exact", "exact offset per partition"},
}

// planRow is one partition of a reset: its committed offset now and the
// offset the reset commits.
type planRow struct {
	Topic     string
	Partition int32
	Current   int64 // -1: no committed offset
	New       int64
	Note      string // why New is not what was asked (clamped to the log)
}

// Delta is New - Current, for the dry run's "change" column.
func (p planRow) Delta() string {
	if p.Current < 0 {
		return ""
	}
	d := p.New - p.Current
	if d > 0 {
		return "+" + humanCount(d)
	}
	return humanCount(d)
}

// Set is the row as the apply form's "set" value.
func (p planRow) Set() string { return fmt.Sprintf("%d:%d:%s", p.Partition, p.New, p.Topic) }

// planData is the dry run's fragment.
type planData struct {
	Group    string
	Mode     string
	Rows     []planRow
	Changes  int
	ReadOnly bool
}

// appliedData is the fragment after apply.
type appliedData struct {
	Group string
	Rows  []planRow
}

// groupTP is a topic partition.
type groupTP struct {
	Topic     string
	Partition int32
}

func (c *Console) groupReset(w http.ResponseWriter, r *http.Request) {
	group := r.PathValue("group")
	// The apply form carries every partition's offset (~40 bytes each):
	// 1 MiB is some 25,000 partitions.
	r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
	if err := r.ParseForm(); err != nil {
		c.fail(w, r, httpapi.Errorf(http.StatusBadRequest, "console: reset form: %v", err))
		return
	}
	apply := r.PostForm.Has("set")
	op := kmsg.ACLOperationDescribe
	check := c.mayRead
	if apply {
		op, check = kmsg.ACLOperationRead, c.mayWrite
	}
	if err := check(r, groupResource, group, op); err != nil {
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
	if err := checkInactive(ctx, adm, group, "reset its offsets"); err != nil {
		c.fail(w, r, err)
		return
	}
	var rows []planRow
	if apply {
		rows, err = parseResetSet(r.PostForm["set"])
	} else {
		rows, err = planReset(ctx, adm, group, r.PostForm)
	}
	if err != nil {
		c.fail(w, r, err)
		return
	}
	for _, t := range resetPlanTopics(rows) {
		if err := check(r, topicResource, t, op); err != nil {
			c.fail(w, r, err)
			return
		}
	}
	if !apply {
		d := planData{Group: group, Mode: r.PostForm.Get("mode"), Rows: rows, ReadOnly: c.cfg.ReadOnly}
		for _, p := range rows {
			if p.New != p.Current {
				d.Changes++
			}
		}
		c.renderFragment(w, r, "group", "plan", d)
		return
	}
	if err := applyReset(ctx, adm, group, rows); err != nil {
		c.fail(w, r, err)
		return
	}
	c.sampler.poke()
	c.cfg.Logger.Info("console: offsets reset", "group", group, "partitions", len(rows), "principal", c.principalName(r))
	c.renderFragment(w, r, "group", "applied", appliedData{Group: group, Rows: rows})
}

// checkInactive answers 404 for a group that does not exist and 409 for
// one with active members.
func checkInactive(ctx context.Context, adm *kadm.Client, group, action string) error {
	ds, err := adm.DescribeGroups(ctx, group)
	if err != nil {
		return kafkaError("group "+group, err)
	}
	g, ok := ds[group]
	if !ok {
		return httpapi.Errorf(http.StatusNotFound, "console: no consumer group %q", group)
	}
	if g.Err != nil {
		return kafkaError("group "+group, g.Err)
	}
	if !groupInactive(g.State) || len(g.Members) > 0 {
		return httpapi.Errorf(http.StatusConflict, "console: consumer group %q is %s with %d member(s): stop the consumers first (Kafka changes only an inactive group) to %s",
			group, g.State, len(g.Members), action)
	}
	if g.State == "Dead" {
		offs, err := adm.FetchOffsets(ctx, group)
		if err != nil {
			return kafkaError("group "+group, err)
		}
		if len(offs) == 0 {
			return httpapi.Errorf(http.StatusNotFound, "console: no consumer group %q", group)
		}
	}
	return nil
}

// planReset computes the offsets a reset of group commits, from the
// form: mode (earliest, latest, time, shift, offset, exact), topic (none:
// every topic the group has committed offsets on), partitions ("0,2,4-7";
// none: all of the topic), and time, shift, offset, or for exact the
// parallel fields xt, xp, xo (topic, partition, new offset; an empty xo
// leaves the partition alone). Offsets before the log's start or past its
// end are clamped to it, as Kafka does.
func planReset(ctx context.Context, adm *kadm.Client, group string, form url.Values) ([]planRow, error) {
	mode := form.Get("mode")
	offs, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		return nil, kafkaError("group "+group, err)
	}
	var targets []groupTP
	exact := map[groupTP]int64{}
	switch mode {
	case "earliest", "latest", "time", "shift", "offset":
		targets, err = resetScope(ctx, adm, offs, form)
	case "exact":
		targets, exact, err = parseResetExact(form)
	case "":
		err = httpapi.Errorf(http.StatusBadRequest, "console: reset: choose a mode (earliest, latest, time, shift, offset or exact)")
	default:
		err = httpapi.Errorf(http.StatusBadRequest, "console: reset mode %q: want earliest, latest, time, shift, offset or exact", mode)
	}
	if err != nil {
		return nil, err
	}
	topics := groupTPTopics(targets)
	if err := checkResetPartitions(ctx, adm, targets); err != nil {
		return nil, err
	}
	starts, err := adm.ListStartOffsets(ctx, topics...)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return nil, kafkaError("start offsets", err)
	}
	ends, err := adm.ListEndOffsets(ctx, topics...)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, kafkaError("end offsets", err)
	}
	var want func(p groupTP, current int64) (int64, error)
	switch mode {
	case "earliest":
		want = func(p groupTP, _ int64) (int64, error) {
			o, _ := starts.Lookup(p.Topic, p.Partition)
			return o.Offset, nil
		}
	case "latest":
		want = func(p groupTP, _ int64) (int64, error) {
			o, _ := ends.Lookup(p.Topic, p.Partition)
			return o.Offset, nil
		}
	case "time":
		at, err := parseResetTime(form.Get("time"), time.Now())
		if err != nil {
			return nil, err
		}
		after, err := adm.ListOffsetsAfterMilli(ctx, at.UnixMilli(), topics...)
		if err == nil {
			err = after.Error()
		}
		if err != nil {
			return nil, kafkaError("offsets by time", err)
		}
		want = func(p groupTP, _ int64) (int64, error) {
			o, _ := after.Lookup(p.Topic, p.Partition)
			return o.Offset, nil
		}
	case "shift":
		n, err := parseResetInt(form.Get("shift"), "shift", true)
		if err != nil {
			return nil, err
		}
		want = func(p groupTP, current int64) (int64, error) {
			if current < 0 {
				return 0, httpapi.Errorf(http.StatusBadRequest, "console: %s[%d] has no committed offset to shift from: reset it to a time, an offset, earliest or latest", p.Topic, p.Partition)
			}
			return current + n, nil
		}
	case "offset":
		n, err := parseResetInt(form.Get("offset"), "offset", false)
		if err != nil {
			return nil, err
		}
		want = func(groupTP, int64) (int64, error) { return n, nil }
	case "exact":
		want = func(p groupTP, _ int64) (int64, error) { return exact[p], nil }
	}
	rows := make([]planRow, 0, len(targets))
	for _, p := range targets {
		current := int64(-1)
		if o, ok := offs.Lookup(p.Topic, p.Partition); ok && o.Err == nil {
			current = o.At
		}
		n, err := want(p, current)
		if err != nil {
			return nil, err
		}
		row := planRow{Topic: p.Topic, Partition: p.Partition, Current: current, New: n}
		start, _ := starts.Lookup(p.Topic, p.Partition)
		end, _ := ends.Lookup(p.Topic, p.Partition)
		switch {
		case n < start.Offset:
			row.New, row.Note = start.Offset, fmt.Sprintf("%d is before the log start: the start offset", n)
		case n > end.Offset:
			row.New, row.Note = end.Offset, fmt.Sprintf("%d is past the log end: the end offset", n)
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// resetScope is the partitions a reset applies to: every partition the
// group has an offset on, or the form's topic (and partitions).
func resetScope(ctx context.Context, adm *kadm.Client, offs kadm.OffsetResponses, form url.Values) ([]groupTP, error) {
	topic := strings.TrimSpace(form.Get("topic"))
	if topic == "" {
		if strings.TrimSpace(form.Get("partitions")) != "" {
			return nil, httpapi.Errorf(http.StatusBadRequest, "console: reset: partitions need a topic")
		}
		var ps []groupTP
		offs.Each(func(o kadm.OffsetResponse) {
			if o.Err == nil && o.At >= 0 {
				ps = append(ps, groupTP{o.Topic, o.Partition})
			}
		})
		if len(ps) == 0 {
			return nil, httpapi.Errorf(http.StatusBadRequest, "console: reset: the group has no committed offsets: choose a topic")
		}
		sortGroupTPs(ps)
		return ps, nil
	}
	tds, err := adm.ListTopics(ctx, topic)
	if err != nil {
		return nil, kafkaError("topic "+topic, err)
	}
	td, ok := tds[topic]
	if !ok || td.Err != nil {
		return nil, httpapi.Errorf(http.StatusBadRequest, "console: reset: no topic %q", topic)
	}
	var ps []groupTP
	if s := strings.TrimSpace(form.Get("partitions")); s != "" {
		nums, err := parseResetPartitions(s)
		if err != nil {
			return nil, err
		}
		for _, n := range nums {
			ps = append(ps, groupTP{topic, n})
		}
	} else {
		for p := range td.Partitions {
			ps = append(ps, groupTP{topic, p})
		}
	}
	sortGroupTPs(ps)
	return ps, nil
}

// checkResetPartitions answers 400 naming the first topic or partition of ps
// the cluster does not have.
func checkResetPartitions(ctx context.Context, adm *kadm.Client, ps []groupTP) error {
	topics := groupTPTopics(ps)
	tds, err := adm.ListTopics(ctx, topics...)
	if err != nil {
		return kafkaError("topics", err)
	}
	for _, p := range ps {
		td, ok := tds[p.Topic]
		if !ok || td.Err != nil {
			return httpapi.Errorf(http.StatusBadRequest, "console: reset: no topic %q", p.Topic)
		}
		if _, ok := td.Partitions[p.Partition]; !ok {
			return httpapi.Errorf(http.StatusBadRequest, "console: reset: topic %q has no partition %d (it has %d)", p.Topic, p.Partition, len(td.Partitions))
		}
	}
	return nil
}

// parseResetExact reads the per-partition form: parallel xt, xp, xo fields.
func parseResetExact(form url.Values) ([]groupTP, map[groupTP]int64, error) {
	xt, xp, xo := form["xt"], form["xp"], form["xo"]
	if len(xt) != len(xp) || len(xt) != len(xo) {
		return nil, nil, httpapi.Errorf(http.StatusBadRequest, "console: reset: the per-partition form needs as many xt, xp and xo fields")
	}
	var ps []groupTP
	offs := map[groupTP]int64{}
	for i := range xt {
		if strings.TrimSpace(xo[i]) == "" {
			continue
		}
		p, err := strconv.ParseInt(strings.TrimSpace(xp[i]), 10, 32)
		if err != nil || p < 0 {
			return nil, nil, httpapi.Errorf(http.StatusBadRequest, "console: reset: partition %q: want a whole number >= 0", xp[i])
		}
		o, err := parseResetInt(xo[i], fmt.Sprintf("offset of %s[%d]", xt[i], p), false)
		if err != nil {
			return nil, nil, err
		}
		k := groupTP{xt[i], int32(p)}
		if _, dup := offs[k]; dup {
			return nil, nil, httpapi.Errorf(http.StatusBadRequest, "console: reset: %s[%d] given twice", k.Topic, k.Partition)
		}
		offs[k] = o
		ps = append(ps, k)
	}
	if len(ps) == 0 {
		return nil, nil, httpapi.Errorf(http.StatusBadRequest, "console: reset: enter a new offset for at least one partition")
	}
	sortGroupTPs(ps)
	return ps, offs, nil
}

// parseResetSet reads the apply form's "set" fields ("partition:offset:topic").
func parseResetSet(grpSets []string) ([]planRow, error) {
	var rows []planRow
	for _, s := range grpSets {
		ps, rest, ok1 := strings.Cut(s, ":")
		os, topic, ok2 := strings.Cut(rest, ":")
		p, err1 := strconv.ParseInt(ps, 10, 32)
		o, err2 := strconv.ParseInt(os, 10, 64)
		if !ok1 || !ok2 || topic == "" || err1 != nil || err2 != nil || p < 0 || o < 0 {
			return nil, httpapi.Errorf(http.StatusBadRequest, "console: reset: set %q: want partition:offset:topic", s)
		}
		rows = append(rows, planRow{Topic: topic, Partition: int32(p), New: o, Current: -1})
	}
	if len(rows) == 0 {
		return nil, httpapi.Errorf(http.StatusBadRequest, "console: reset: nothing to apply")
	}
	return rows, nil
}

// applyReset commits rows' offsets for group, after checking their
// partitions exist.
func applyReset(ctx context.Context, adm *kadm.Client, group string, rows []planRow) error {
	ps := make([]groupTP, len(rows))
	var os kadm.Offsets
	for i, p := range rows {
		ps[i] = groupTP{p.Topic, p.Partition}
		os.Add(kadm.Offset{Topic: p.Topic, Partition: p.Partition, At: p.New, LeaderEpoch: -1})
	}
	if err := checkResetPartitions(ctx, adm, ps); err != nil {
		return err
	}
	resp, err := adm.CommitOffsets(ctx, group, os)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		e := kafkaError("commit offsets of "+group, err)
		if e.(*httpapi.Error).Status == http.StatusConflict {
			return &httpapi.Error{Status: http.StatusConflict, Err: err,
				Detail: fmt.Sprintf("console: consumer group %q has active members: stop the consumers first (%v)", group, err)}
		}
		return e
	}
	return nil
}

func (c *Console) groupDelete(w http.ResponseWriter, r *http.Request) {
	group := r.PathValue("group")
	if err := c.mayWrite(r, groupResource, group, kmsg.ACLOperationDelete); err != nil {
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
	if err := checkInactive(ctx, adm, group, "delete it"); err != nil {
		c.fail(w, r, err)
		return
	}
	resp, err := adm.DeleteGroup(ctx, group)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		c.fail(w, r, kafkaError("delete group "+group, err))
		return
	}
	c.sampler.poke()
	c.cfg.Logger.Info("console: group deleted", "group", group, "principal", c.principalName(r))
	c.redirect(w, r, c.cfg.BasePath+"groups")
}

func (c *Console) groupDeleteOffsets(w http.ResponseWriter, r *http.Request) {
	group := r.PathValue("group")
	if err := parseForm(w, r); err != nil {
		c.fail(w, r, err)
		return
	}
	topic := strings.TrimSpace(r.PostForm.Get("topic"))
	if err := c.mayWrite(r, groupResource, group, kmsg.ACLOperationDelete); err != nil {
		c.fail(w, r, err)
		return
	}
	if topic == "" {
		c.fail(w, r, httpapi.Errorf(http.StatusBadRequest, "console: delete offsets: choose a topic"))
		return
	}
	if err := c.mayWrite(r, topicResource, topic, kmsg.ACLOperationRead); err != nil {
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
	if err := checkInactive(ctx, adm, group, "delete its offsets"); err != nil {
		c.fail(w, r, err)
		return
	}
	offs, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		c.fail(w, r, kafkaError("group "+group, err))
		return
	}
	var ps []int32
	for p, o := range offs[topic] {
		if o.Err == nil && o.At >= 0 {
			ps = append(ps, p)
		}
	}
	if len(ps) == 0 {
		c.fail(w, r, httpapi.Errorf(http.StatusBadRequest, "console: group %q has no committed offsets on topic %q", group, topic))
		return
	}
	slices.Sort(ps)
	resp, err := adm.DeleteOffsets(ctx, group, kadm.TopicsSet{topic: groupPartitionSet(ps)})
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		c.fail(w, r, kafkaError("delete offsets of "+group, err))
		return
	}
	c.sampler.poke()
	c.cfg.Logger.Info("console: group offsets deleted", "group", group, "topic", topic, "principal", c.principalName(r))
	w.Header().Set("HX-Refresh", "true")
	c.renderFragment(w, r, "group", "offsets-deleted", map[string]any{"Group": group, "Topic": topic, "Partitions": len(ps)})
}

// parseResetTime reads a reset's time: RFC 3339 ("2026-12-01T10:00:00Z"),
// a browser's datetime-local ("2026-12-01T10:00", UTC), Unix milliseconds,
// or a duration ago ("15m", "2h30m").
func parseResetTime(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, httpapi.Errorf(http.StatusBadRequest, "console: reset: enter a time")
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04"} {
		if t, err := time.ParseInLocation(layout, s, time.UTC); err == nil {
			return t, nil
		}
	}
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil && ms >= 0 {
		return time.UnixMilli(ms), nil
	}
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, httpapi.Errorf(http.StatusBadRequest,
		"console: reset: time %q: want RFC 3339 (2026-12-01T10:00:00Z), YYYY-MM-DDTHH:MM (UTC), Unix milliseconds or a duration ago (15m)", s)
}

// parseResetInt reads a whole number field; negative only when signed.
func parseResetInt(s, what string, signed bool) (int64, error) {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || (!signed && n < 0) {
		want := "a whole number >= 0"
		if signed {
			want = "a whole number (negative moves back)"
		}
		return 0, httpapi.Errorf(http.StatusBadRequest, "console: reset: %s %q: want %s", what, s, want)
	}
	return n, nil
}

// parseResetPartitions reads "0,2,4-7".
func parseResetPartitions(s string) ([]int32, error) {
	seen := map[int32]bool{}
	var ps []int32
	for f := range strings.SplitSeq(s, ",") {
		f = strings.TrimSpace(f)
		lo, hi, isRange := strings.Cut(f, "-")
		a, err1 := strconv.ParseInt(strings.TrimSpace(lo), 10, 32)
		b := a
		var err2 error
		if isRange {
			b, err2 = strconv.ParseInt(strings.TrimSpace(hi), 10, 32)
		}
		if err1 != nil || err2 != nil || a < 0 || b < a || b-a > 100000 {
			return nil, httpapi.Errorf(http.StatusBadRequest, "console: reset: partitions %q: want numbers and ranges, e.g. 0,2,4-7", s)
		}
		for p := a; p <= b; p++ {
			if !seen[int32(p)] {
				seen[int32(p)] = true
				ps = append(ps, int32(p))
			}
		}
	}
	return ps, nil
}

func sortGroupTPs(ps []groupTP) {
	slices.SortFunc(ps, func(a, b groupTP) int {
		if n := strings.Compare(a.Topic, b.Topic); n != 0 {
			return n
		}
		return int(a.Partition) - int(b.Partition)
	})
}

func groupTPTopics(ps []groupTP) []string {
	m := map[string]bool{}
	for _, p := range ps {
		m[p.Topic] = true
	}
	return groupSortedKeys(m)
}

func resetPlanTopics(rows []planRow) []string {
	m := map[string]bool{}
	for _, p := range rows {
		m[p.Topic] = true
	}
	return groupSortedKeys(m)
}

func groupPartitionSet(ps []int32) map[int32]struct{} {
	m := make(map[int32]struct{}, len(ps))
	for _, p := range ps {
		m[p] = struct{}{}
	}
	return m
}
