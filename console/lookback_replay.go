package console

import (
	"fmt"
	"html/template"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/spoolmq/spool/internal/httpapi"
)

// lbReplayData is the answer to a replay form: a dry run's count, target
// and preview (with the form to apply it), or a started replay.
type lbReplayData struct {
	Spec    lbReplaySpec
	Target  string
	Form    []lbField // the form's fields, for the apply button
	Replay  *lbReplay
	Topics  []lbTopicCount
	Preview []*lbEvent
	DryRun  bool
}

type lbTopicCount struct {
	Topic string
	N     int64
}

// replaySpec reads a replay form: the filter's fields, target (original,
// topic or group), to_topic, to_group and rate.
func replaySpec(r *http.Request) (lbReplaySpec, error) {
	spec := lbReplaySpec{Filter: filterFromValues(r.PostForm)}
	if spec.Filter.empty() {
		return spec, httpapi.Errorf(http.StatusBadRequest, "console: a replay needs a selection: give at least one filter (topic, key, type, correlation id, time range...)")
	}
	switch t := r.PostForm.Get("target"); t {
	case "", "original":
	case "topic":
		spec.ToTopic = strings.TrimSpace(r.PostForm.Get("to_topic"))
		if spec.ToTopic == "" {
			return spec, httpapi.Errorf(http.StatusBadRequest, "console: replay to a topic: name the topic")
		}
	case "group":
		spec.ToGroup = strings.TrimSpace(r.PostForm.Get("to_group"))
		if spec.ToGroup == "" {
			return spec, httpapi.Errorf(http.StatusBadRequest, "console: replay to a group: name the consumer group")
		}
	default:
		return spec, httpapi.Errorf(http.StatusBadRequest, "console: replay target %q: want original, topic or group", t)
	}
	if s := strings.TrimSpace(r.PostForm.Get("rate")); s != "" {
		n, err := strconv.ParseFloat(s, 64)
		if err != nil || n < 0 {
			return spec, httpapi.Errorf(http.StatusBadRequest, "console: rate %q: want events per second, 0 or more (0 or empty: unlimited)", s)
		}
		spec.Rate = n
	}
	return spec, nil
}

func replayTarget(spec lbReplaySpec) string {
	switch {
	case spec.ToTopic != "":
		return "topic " + spec.ToTopic
	case spec.ToGroup != "":
		return "consumer group " + spec.ToGroup + " (topic spool.replay." + spec.ToGroup + ")"
	}
	return "each event's original topic and partition"
}

// lookbackReplay serves POST lookback/replays: action=dry-run counts the
// selection and shows where it would go; action=apply checks the ACLs on
// what a dry run selects, then starts the replay. Both are refused in
// read-only mode.
func (c *Console) lookbackReplay(w http.ResponseWriter, r *http.Request) {
	lb := c.lookback()
	if lb == nil {
		c.fail(w, r, httpapi.Errorf(http.StatusNotFound, "console: the lookback archive is off: no replay"))
		return
	}
	if err := r.ParseForm(); err != nil {
		c.fail(w, r, httpapi.Errorf(http.StatusBadRequest, "console: replay form: %v", err))
		return
	}
	spec, err := replaySpec(r)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	apply := r.PostForm.Get("action") == "apply"
	// A replay writes: refused in read-only mode even as a dry run, which
	// exists only to prepare one.
	if c.cfg.ReadOnly {
		c.fail(w, r, httpapi.Errorf(http.StatusForbidden, "console: read-only mode: replay refused (the console runs with --console-read-only)"))
		return
	}
	ctx, cancel := c.pageContext(r)
	defer cancel()
	dry := spec
	dry.DryRun = true
	st, err := lb.startReplay(ctx, r, dry)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	d := lbReplayData{Spec: spec, Target: replayTarget(spec), DryRun: !apply}
	for t, n := range st.ByTopic {
		d.Topics = append(d.Topics, lbTopicCount{t, n})
	}
	sort.Slice(d.Topics, func(i, j int) bool { return d.Topics[i].Topic < d.Topics[j].Topic })
	// Read on every topic selected; Write on every topic sent to.
	for _, tc := range d.Topics {
		if err := c.mayRead(r, topicResource, tc.Topic, kmsg.ACLOperationRead); err != nil {
			c.fail(w, r, err)
			return
		}
	}
	var targets []string
	switch {
	case spec.ToTopic != "":
		targets = []string{spec.ToTopic}
	case spec.ToGroup != "":
		targets = []string{"spool.replay." + spec.ToGroup}
	default:
		for _, tc := range d.Topics {
			targets = append(targets, tc.Topic)
		}
	}
	for _, t := range targets {
		if err := c.mayWrite(r, topicResource, t, kmsg.ACLOperationWrite); err != nil {
			c.fail(w, r, err)
			return
		}
	}
	if !apply {
		st.Spec = spec
		d.Replay, d.Preview = st, st.Preview
		for k, vs := range r.PostForm {
			if k != "action" && len(vs) > 0 {
				d.Form = append(d.Form, lbField{k, vs[0]})
			}
		}
		sort.Slice(d.Form, func(i, j int) bool { return d.Form[i].Name < d.Form[j].Name })
		c.renderFragment(w, r, "lookback", "lb-replay-result", d)
		return
	}
	if st.Total == 0 {
		c.fail(w, r, httpapi.Errorf(http.StatusConflict, "console: the selection matches no archived event: nothing to replay"))
		return
	}
	started, err := lb.startReplay(ctx, r, spec)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.cfg.Logger.Info("console: replay started", "replay", started.ID, "principal", principal(r), "events", started.Total, "target", d.Target)
	d.Replay = started
	c.renderFragment(w, r, "lookback", "lb-replay-result", d)
}

// lbReplaysData is the replays page.
type lbReplaysData struct {
	Off     bool
	Replays []lbReplay
}

func (c *Console) lookbackReplays(w http.ResponseWriter, r *http.Request) {
	lb := c.lookback()
	if lb == nil {
		c.lookbackOff(w, r)
		return
	}
	ctx, cancel := c.pageContext(r)
	defer cancel()
	rs, err := lb.replays(ctx, r)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	d := lbReplaysData{}
	for _, rp := range rs {
		// A dry run is a question, not a replay.
		if !rp.Spec.DryRun {
			rp.ReadOnly = c.cfg.ReadOnly
			d.Replays = append(d.Replays, rp)
		}
	}
	sort.SliceStable(d.Replays, func(i, j int) bool { return d.Replays[i].Created.After(d.Replays[j].Created) })
	c.render(w, r, http.StatusOK, "lookback_replays", "Replays", "lookback", d)
}

// lookbackReplayState serves GET lookback/replays/{id}: the progress
// fragment (whose progress line polls itself while the replay runs) for
// htmx, the replays page otherwise.
func (c *Console) lookbackReplayState(w http.ResponseWriter, r *http.Request) {
	lb := c.lookback()
	if lb == nil {
		c.lookbackOff(w, r)
		return
	}
	if r.Header.Get("HX-Request") == "" {
		http.Redirect(w, r, c.cfg.BasePath+"lookback/replays#"+r.PathValue("id"), http.StatusSeeOther)
		return
	}
	ctx, cancel := c.pageContext(r)
	defer cancel()
	st, err := lb.replay(ctx, r, r.PathValue("id"))
	if err != nil {
		c.fail(w, r, err)
		return
	}
	st.ReadOnly = c.cfg.ReadOnly
	if st.Status != "running" {
		// The page's poll swaps only the progress line (the Cancel button
		// beside it is never replaced while it may be clicked); the poll
		// that finds the replay finished replaces its whole state.
		w.Header().Set("HX-Retarget", "#replay-"+st.ID)
		w.Header().Set("HX-Reselect", "#replay-"+st.ID)
	}
	c.renderFragment(w, r, "lookback", "lb-replay-state", st)
}

func (c *Console) lookbackReplayCancel(w http.ResponseWriter, r *http.Request) {
	lb := c.lookback()
	if lb == nil {
		c.fail(w, r, httpapi.Errorf(http.StatusNotFound, "console: the lookback archive is off"))
		return
	}
	if c.cfg.ReadOnly {
		c.fail(w, r, httpapi.Errorf(http.StatusForbidden, "console: read-only mode: cancelling a replay refused (the console runs with --console-read-only)"))
		return
	}
	ctx, cancel := c.pageContext(r)
	defer cancel()
	st, err := lb.replay(ctx, r, r.PathValue("id"))
	if err != nil {
		c.fail(w, r, err)
		return
	}
	for t := range st.ByTopic {
		if err := c.mayWrite(r, topicResource, t, kmsg.ACLOperationWrite); err != nil {
			c.fail(w, r, err)
			return
		}
	}
	if st, err = lb.cancelReplay(ctx, r, st.ID); err != nil {
		c.fail(w, r, err)
		return
	}
	c.renderFragment(w, r, "lookback", "lb-replay-state", st)
}

// lbTimeline is a flow drawn as an SVG: one row per event, placed by its
// time between the flow's first and last event, a line from each cause to
// its effects.
type lbTimeline struct {
	SVG   template.HTML
	Shown int
	Total int
}

// lbTimelineMax bounds the events the SVG draws (the table has them all).
const lbTimelineMax = 200

func flowTimeline(steps []lbFlowEvent) lbTimeline {
	tl := lbTimeline{Total: len(steps)}
	if len(steps) == 0 {
		return tl
	}
	steps = steps[:min(len(steps), lbTimelineMax)]
	tl.Shown = len(steps)
	const w, row, pad, labelW = 640.0, 22.0, 10.0, 220.0
	h := float64(len(steps))*row + 2*pad
	t0, t1 := steps[0].Event.Timestamp, steps[len(steps)-1].Event.Timestamp
	span := float64(t1.Sub(t0))
	x := func(i int) float64 {
		if span <= 0 {
			return pad
		}
		return pad + (w-labelW-2*pad)*float64(steps[i].Event.Timestamp.Sub(t0))/span
	}
	y := func(i int) float64 { return pad + row*float64(i) + row/2 }
	at := map[string]int{}
	for i, s := range steps {
		if s.Event.ID != "" {
			at[s.Event.ID] = i
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="lb-timeline" viewBox="0 0 %.0f %.0f" role="img" aria-label="%s">`, w, h,
		template.HTMLEscapeString(fmt.Sprintf("Timeline of %d events over %s", len(steps), lbDuration(span/1e6))))
	for i, s := range steps {
		if p, ok := at[s.Event.CausationID]; ok && p != i {
			fmt.Fprintf(&b, `<path class="lb-cause" d="M%.1f %.1f V%.1f H%.1f"/>`, x(p), y(p), y(i), x(i))
		}
	}
	for i, s := range steps {
		cls := "lb-dot"
		for _, rc := range s.Receipts {
			if rc.Outcome == "dead-letter" {
				cls += " bad"
			}
		}
		if s.MissingCause {
			cls += " hole"
		}
		label := s.Event.Type
		if label == "" {
			label = s.Event.Ref()
		}
		fmt.Fprintf(&b, `<circle class="%s" cx="%.1f" cy="%.1f" r="5"><title>%s</title></circle>`, cls, x(i), y(i),
			template.HTMLEscapeString(s.Event.Ref()+" "+s.Event.Timestamp.UTC().Format("15:04:05.000")))
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f">%s</text>`, w-labelW+pad, y(i)+4, template.HTMLEscapeString(label))
	}
	b.WriteString(`</svg>`)
	tl.SVG = template.HTML(b.String())
	return tl
}

// Template functions of the lookback pages (registered in funcs).

func lbInt(n int) int64 { return int64(n) }

func lbIndent(depth int) float64 { return 1.25 * float64(min(depth, 24)) }

func lbPercent(done, total int64) int64 {
	if total <= 0 {
		return 0
	}
	return done * 100 / total
}

// lbOutcome is the badge class of a receipt's outcome.
func lbOutcome(o string) string {
	switch o {
	case "success":
		return "ok"
	case "warning", "skipped":
		return "warn"
	case "dead-letter":
		return "bad"
	}
	return ""
}

// lbFilterText is the filter's non-empty fields.
func lbFilterText(f lbFilter) map[string]string {
	m := map[string]string{}
	for k, v := range f.values() {
		m[k] = v[0]
	}
	return m
}
