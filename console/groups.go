package console

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/spoolmq/spool/internal/httpapi"
)

// The consumer groups pages: the list (/groups), a group's detail
// (/groups/{group}) with its live lag stream (/groups/{group}/live), and
// the group actions in groupreset.go.

// groupStates are the classic group states, in the order of the state
// filter.
var groupStates = []string{"Stable", "PreparingRebalance", "CompletingRebalance", "Empty", "Dead"}

// groupRow is one line of the groups list.
type groupRow struct {
	Name        string
	State       string
	Protocol    string // the assignor ("range", "cooperative-sticky"), "" when not Stable
	Type        string // the protocol type ("consumer", "connect")
	Members     int
	Topics      []string
	Lag         int64
	TimeLag     time.Duration // the age of its oldest unconsumed record (lagtime.go), lagUnknown when not read
	Err         string        // why the lag is unknown
	Coordinator int32
	Trend       Series // the total lag over the sampler's history
}

// groupsQuery is the list's sort and filters, from the query string.
type groupsQuery struct {
	Sort   string // name, state, lag, timelag, members
	Desc   bool
	Q      string // name contains, case-insensitively
	State  string
	MinLag int64
}

// groupsData is the groups list page.
type groupsData struct {
	Query  groupsQuery
	States []string
	Rows   []groupRow
	Total  int // groups visible before the filters
	Heads  []sortHead
}

// sortHead is a sortable column header: its link and aria-sort.
type sortHead struct {
	Key, Title, Href, AriaSort string
	Numeric                    bool
}

func parseGroupsQuery(v url.Values) (groupsQuery, error) {
	q := groupsQuery{Sort: v.Get("sort"), Q: strings.TrimSpace(v.Get("q")), State: v.Get("state")}
	switch q.Sort {
	case "":
		q.Sort = "name"
	case "name", "state", "lag", "timelag", "members":
	default:
		return q, httpapi.Errorf(http.StatusBadRequest, "console: sort %q: want name, state, lag, timelag or members", q.Sort)
	}
	switch d := v.Get("dir"); d {
	case "", "asc":
	case "desc":
		q.Desc = true
	default:
		return q, httpapi.Errorf(http.StatusBadRequest, "console: dir %q: want asc or desc", d)
	}
	if q.State != "" && !slices.Contains(groupStates, q.State) {
		return q, httpapi.Errorf(http.StatusBadRequest, "console: state %q: want one of %s", q.State, strings.Join(groupStates, ", "))
	}
	if s := strings.TrimSpace(v.Get("minlag")); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			return q, httpapi.Errorf(http.StatusBadRequest, "console: min lag %q: want a whole number >= 0", s)
		}
		q.MinLag = n
	}
	return q, nil
}

// href is the list's link with q's filters and the sort of column key (toggling
// the direction when key is already the sort).
func (q groupsQuery) href(base, key string) string {
	v := url.Values{}
	v.Set("sort", key)
	desc := key == "lag" || key == "timelag" || key == "members" // the big ones first, on the first click
	if key == q.Sort {
		desc = !q.Desc
	}
	if desc {
		v.Set("dir", "desc")
	}
	if q.Q != "" {
		v.Set("q", q.Q)
	}
	if q.State != "" {
		v.Set("state", q.State)
	}
	if q.MinLag > 0 {
		v.Set("minlag", strconv.FormatInt(q.MinLag, 10))
	}
	return base + "groups?" + v.Encode()
}

func (c *Console) groupsPage(w http.ResponseWriter, r *http.Request) {
	q, err := parseGroupsQuery(r.URL.Query())
	if err != nil {
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
	// One kadm.Lag for every group: it lists the groups, describes them
	// and fetches their offsets in one request per coordinator, and lists
	// the start and end offsets of their topics once.
	lags, err := adm.Lag(ctx)
	if err != nil {
		c.fail(w, r, kafkaError("groups", err))
		return
	}
	smps := c.sampler.samples()
	d := groupsData{Query: q, States: groupStates}
	var shown []kadm.DescribedGroupLag
	for name, l := range lags {
		if !c.visible(r, groupResource, name) {
			continue
		}
		d.Total++
		row := newGroupRow(l)
		if !q.keep(row) {
			continue
		}
		row.Trend = valueSeries("lag", smps, func(s sample) (int64, bool) { v, ok := s.GroupLag[name]; return v, ok })
		d.Rows = append(d.Rows, row)
		shown = append(shown, l)
	}
	// The lag in time of the groups shown (every one: the list sorts by
	// it), read at once for all of them.
	times := c.lagTimes(ctx, cl, adm, shown...)
	now := time.Now()
	for i := range d.Rows {
		d.Rows[i].TimeLag = groupLagTime(now, lags[d.Rows[i].Name], times)
	}
	sortGroups(d.Rows, q)
	for _, h := range []sortHead{{Key: "name", Title: "Group"}, {Key: "state", Title: "State"},
		{Key: "members", Title: "Members", Numeric: true}, {Key: "lag", Title: "Lag", Numeric: true},
		{Key: "timelag", Title: "Lag in time", Numeric: true}} {
		h.Href = q.href(c.cfg.BasePath, h.Key)
		if h.Key == q.Sort {
			h.AriaSort = "ascending"
			if q.Desc {
				h.AriaSort = "descending"
			}
		}
		d.Heads = append(d.Heads, h)
	}
	c.render(w, r, http.StatusOK, "groups", "Consumer groups", "groups", d)
}

func newGroupRow(l kadm.DescribedGroupLag) groupRow {
	row := groupRow{Name: l.Group, State: l.State, Protocol: l.Protocol, Type: l.ProtocolType,
		Members: len(l.Members), Coordinator: l.Coordinator.NodeID, Lag: -1, TimeLag: lagUnknown}
	if err := l.Error(); err != nil {
		row.Err = err.Error()
		return row
	}
	for t := range l.Lag {
		row.Topics = append(row.Topics, t)
	}
	slices.Sort(row.Topics)
	row.Lag = l.Lag.Total()
	return row
}

func (q groupsQuery) keep(row groupRow) bool {
	if q.Q != "" && !strings.Contains(strings.ToLower(row.Name), strings.ToLower(q.Q)) {
		return false
	}
	if q.State != "" && row.State != q.State {
		return false
	}
	return q.MinLag <= 0 || row.Lag >= q.MinLag
}

func sortGroups(rows []groupRow, q groupsQuery) {
	slices.SortFunc(rows, func(a, b groupRow) int {
		var n int
		switch q.Sort {
		case "state":
			n = cmp.Compare(a.State, b.State)
		case "lag":
			n = cmp.Compare(a.Lag, b.Lag)
		case "timelag":
			n = cmp.Compare(a.TimeLag, b.TimeLag)
		case "members":
			n = cmp.Compare(a.Members, b.Members)
		}
		if q.Desc {
			n = -n
		}
		if n == 0 { // ties, and the name sort, by name in the chosen direction
			n = cmp.Compare(a.Name, b.Name)
			if q.Desc && q.Sort == "name" {
				n = -n
			}
		}
		return n
	})
}

// partitionLag is one line of a group's lag table.
type partitionLag struct {
	Topic     string
	Partition int32
	Committed int64 // -1: no commit
	Start     int64
	End       int64
	Lag       int64         // -1: unknown (see Err)
	TimeLag   time.Duration // the age of the oldest unconsumed record, 0 caught up, lagUnknown
	Member    string
	Client    string
	Err       string
}

// memberView is one member of a group with its assignment.
type memberView struct {
	ID, InstanceID, ClientID, Host string
	Assigned                       []string // "topic: 0, 1, 2"
}

// groupDetail is a group's page and its live fragment.
type groupDetail struct {
	Name        string
	State       string
	Type        string
	Protocol    string
	Coordinator int32
	Members     []memberView
	Partitions  []partitionLag
	Topics      []string // the topics the group has offsets or assignments on
	TotalLag    int64
	TimeLag     time.Duration // the partitions' largest lag in time, lagUnknown when one is not known
	LagErr      string
	LagChart    Series
	TimeChart   Series // the lag in time (seconds), sampled while a page of the group is open
	Active      bool   // members are connected: resets and deletes are refused
	ReadOnly    bool
}

// loadGroup describes group with its lag: 404 for a group that does not
// exist (Dead without committed offsets).
func (c *Console) loadGroup(ctx context.Context, cl *kgo.Client, adm *kadm.Client, group string) (groupDetail, error) {
	lags, err := adm.Lag(ctx, group)
	if err != nil {
		return groupDetail{}, kafkaError("group "+group, err)
	}
	l, ok := lags[group]
	if !ok {
		return groupDetail{}, httpapi.Errorf(http.StatusNotFound, "console: no consumer group %q", group)
	}
	if err := l.DescribeErr; err != nil {
		return groupDetail{}, kafkaError("group "+group, err)
	}
	d := groupDetail{Name: group, State: l.State, Type: l.ProtocolType, Protocol: l.Protocol,
		Coordinator: l.Coordinator.NodeID, Active: len(l.Members) > 0 || !groupInactive(l.State), ReadOnly: c.cfg.ReadOnly}
	if l.FetchErr != nil {
		d.LagErr = l.FetchErr.Error()
	}
	for _, m := range l.Members {
		mv := memberView{ID: m.MemberID, ClientID: m.ClientID, Host: m.ClientHost}
		if m.InstanceID != nil {
			mv.InstanceID = *m.InstanceID
		}
		if a, ok := m.Assigned.AsConsumer(); ok {
			for _, t := range a.Topics {
				ps := slices.Clone(t.Partitions)
				slices.Sort(ps)
				mv.Assigned = append(mv.Assigned, t.Topic+": "+groupJoinInt32(ps))
			}
			slices.Sort(mv.Assigned)
		}
		d.Members = append(d.Members, mv)
	}
	topics := map[string]bool{}
	times := c.lagTimes(ctx, cl, adm, l)
	now := time.Now()
	for _, ml := range l.Lag.Sorted() {
		p := partitionLag{Topic: ml.Topic, Partition: ml.Partition, Committed: ml.Commit.At,
			Start: ml.Start.Offset, End: ml.End.Offset, Lag: ml.Lag, TimeLag: partitionLagTime(now, ml, times)}
		if ml.Member != nil {
			p.Member, p.Client = ml.Member.MemberID, ml.Member.ClientID
		}
		if ml.Err != nil {
			p.Err = ml.Err.Error()
		}
		topics[ml.Topic] = true
		d.Partitions = append(d.Partitions, p)
	}
	d.Topics = groupSortedKeys(topics)
	d.TotalLag = l.Lag.Total()
	d.TimeLag = groupLagTime(now, l, times)
	if groupInactive(l.State) && len(l.Members) == 0 && len(d.Partitions) == 0 && l.State == "Dead" {
		return groupDetail{}, httpapi.Errorf(http.StatusNotFound, "console: no consumer group %q", group)
	}
	smps := c.sampler.samples()
	d.LagChart = valueSeries("total lag", smps, func(s sample) (int64, bool) { v, ok := s.GroupLag[group]; return v, ok })
	d.TimeChart = valueSeries("lag in time", smps, func(s sample) (int64, bool) {
		v, ok := s.GroupTimeLag[group]
		return int64(v.Seconds()), ok
	})
	return d, nil
}

// groupInactive reports whether a group in state may have its offsets reset or
// be deleted: Kafka's kafka-consumer-groups allows it only for Empty (or
// Dead) groups.
func groupInactive(state string) bool { return state == "Empty" || state == "Dead" }

func (c *Console) groupPage(w http.ResponseWriter, r *http.Request) {
	group := r.PathValue("group")
	if err := c.mayRead(r, groupResource, group, kmsg.ACLOperationDescribe); err != nil {
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
	d, err := c.loadGroup(ctx, cl, adm, group)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.render(w, r, http.StatusOK, "group", "Consumer group "+group, "groups", d)
}

// groupLive streams the group's lag fragment as server-sent events
// ("event: lag"), sampled every Config.SampleInterval, sending it when it
// changed. It ends when the client goes away or the console closes.
func (c *Console) groupLive(w http.ResponseWriter, r *http.Request) {
	group := r.PathValue("group")
	if err := c.mayRead(r, groupResource, group, kmsg.ACLOperationDescribe); err != nil {
		c.fail(w, r, err)
		return
	}
	if _, _, err := c.client(); err != nil {
		c.fail(w, r, err)
		return
	}
	fl, ok := w.(http.Flusher)
	if !ok {
		c.fail(w, r, httpapi.Errorf(http.StatusInternalServerError, "console: the response cannot stream"))
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // a proxy (nginx) must not buffer the stream
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, ": lag of consumer group\n\n")
	fl.Flush()
	defer c.sampler.watch(group)() // its lag in time goes into the samples while the page is open
	c.streamGroupLag(r.Context(), w, fl, group)
}

func (c *Console) streamGroupLag(ctx context.Context, w http.ResponseWriter, fl http.Flusher, group string) {
	t := time.NewTicker(c.cfg.SampleInterval)
	defer t.Stop()
	var last []byte
	for {
		b, err := c.liveFragment(ctx, group)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			// The group went away or the cluster did not answer: say so in
			// the page, and keep trying.
			b, _ = c.fragment("group", "live-error", err.Error())
		}
		if string(b) != string(last) {
			if writeGroupEvent(w, "lag", b) != nil {
				return
			}
			fl.Flush()
			last = b
		}
		select {
		case <-ctx.Done():
			return
		case <-c.closing:
			return
		case <-t.C:
		}
	}
}

func (c *Console) liveFragment(ctx context.Context, group string) ([]byte, error) {
	cl, adm, err := c.client()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout)
	defer cancel()
	d, err := c.loadGroup(ctx, cl, adm, group)
	if err != nil {
		return nil, err
	}
	return c.fragment("group", "live", d)
}

// writeGroupEvent writes one server-sent event; a multi-line payload is one
// "data:" line per line.
func writeGroupEvent(w http.ResponseWriter, event string, data []byte) error {
	var b strings.Builder
	b.WriteString("event: " + event + "\n")
	for line := range strings.SplitSeq(string(data), "\n") {
		b.WriteString("data: " + strings.TrimSuffix(line, "\r") + "\n")
	}
	b.WriteString("\n")
	_, err := w.Write([]byte(b.String()))
	return err
}

// kafkaError gives a Kafka error the HTTP status a user expects: a
// missing ACL is 403, an unknown group 404, a group with active members
// 409, an unknown topic or partition 400; anything else is the cluster's
// failure (502).
func kafkaError(what string, err error) error {
	status := kafkaStatus(err, http.StatusBadRequest)
	if g, ok := strings.CutPrefix(what, "group "); ok && errors.Is(err, kerr.GroupIDNotFound) {
		return &httpapi.Error{Status: status, Detail: fmt.Sprintf("console: no consumer group %q", g), Err: err}
	}
	return &httpapi.Error{Status: status, Detail: "console: " + what + ": " + err.Error(), Err: err}
}

// sparkline draws a series as a small inline SVG (the list's lag trend),
// labelled with its first and last value for screen readers.
func sparkline(s Series) template.HTML {
	if len(s.Points) < 2 {
		return `<span class="muted" title="the console has not sampled this group twice yet">–</span>`
	}
	pts := s.Points
	if len(pts) > 40 { // the most recent 40 samples are enough for a trend
		pts = pts[len(pts)-40:]
	}
	lo, hi := pts[0].V, pts[0].V
	for _, p := range pts {
		lo, hi = min(lo, p.V), max(hi, p.V)
	}
	span := hi - lo
	if span == 0 {
		span = 1
	}
	const w, h = 80.0, 18.0
	var b strings.Builder
	first, last := pts[0].V, pts[len(pts)-1].V
	fmt.Fprintf(&b, `<svg class="spark" viewBox="0 0 %g %g" width="%g" height="%g" role="img" aria-label="lag %s to %s over %s">`,
		w, h, w, h, fmtValue(first), fmtValue(last), humanSpan(pts[len(pts)-1].T.Sub(pts[0].T)))
	b.WriteString(`<polyline fill="none" points="`)
	for i, p := range pts {
		x := 1 + (w-2)*float64(i)/float64(len(pts)-1)
		y := h - 1 - (h-2)*(p.V-lo)/span
		fmt.Fprintf(&b, "%.1f,%.1f ", x, y)
	}
	b.WriteString(`"/></svg>`)
	switch d := last - first; {
	case d > 0:
		fmt.Fprintf(&b, ` <span class="trend up">+%s</span>`, fmtValue(d))
	case d < 0:
		fmt.Fprintf(&b, ` <span class="trend down">−%s</span>`, fmtValue(-d))
	}
	return template.HTML(b.String())
}

func groupJoinInt32(ps []int32) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = strconv.Itoa(int(p))
	}
	return strings.Join(s, ", ")
}

func groupSortedKeys(m map[string]bool) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// groupStateClass is the badge class of a group state.
func groupStateClass(state string) string {
	switch state {
	case "Stable":
		return "ok"
	case "PreparingRebalance", "CompletingRebalance":
		return "warn"
	case "Dead":
		return "bad"
	}
	return ""
}
