package console

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/spoolmq/spool/internal/httpapi"
)

// The redrive actions of a dead-letter topic's page:
//
//	POST {base}deadletters/{topic}/redrive/plan         dry run
//	POST {base}deadletters/{topic}/redrive              start (202, Location: the status)
//	GET  {base}deadletters/{topic}/redrive/{id}         progress, then the report
//	POST {base}deadletters/{topic}/redrive/{id}/cancel  stop it
//
// Each answers an HTML fragment to htmx and JSON to Accept:
// application/json. The form fields are the page's filters (reason,
// error, original, group, key, from, to), target (empty: each record's
// original topic), rate (records/s, 0 unlimited), again and through (the
// dry run's "partition:offset,..." end offsets).

// maxJobs is how many finished redrives the console remembers.
const maxJobs = 50

type redriveJob struct {
	id, dlq string
	cancel  context.CancelFunc
	done    chan struct{}

	mu  sync.Mutex
	rep RedriveReport
}

func (j *redriveJob) report() RedriveReport {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.rep
}

func (j *redriveJob) set(rep RedriveReport) {
	j.mu.Lock()
	j.rep = rep
	j.mu.Unlock()
}

// start runs spec in the background.
func (s *dlqState) start(opts []kgo.Opt, spec RedriveSpec) (*redriveJob, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errUnavailable
	}
	if s.ctx == nil {
		s.ctx, s.cancel = context.WithCancel(context.Background())
		s.jobs = map[string]*redriveJob{}
	}
	ctx, cancel := context.WithCancel(s.ctx)
	j := &redriveJob{id: id.String(), dlq: spec.DLQ, cancel: cancel, done: make(chan struct{}),
		rep: RedriveReport{ID: id.String(), DLQ: spec.DLQ, Target: spec.Target, Started: time.Now().UTC()}}
	s.jobs[j.id] = j
	s.order = append(s.order, j.id)
	for len(s.order) > maxJobs {
		old := s.jobs[s.order[0]]
		select {
		case <-old.done:
			delete(s.jobs, s.order[0])
			s.order = s.order[1:]
			continue
		default:
		}
		break // the oldest still runs: keep it
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(j.done)
		defer cancel()
		rep, err := redrive(ctx, opts, spec, j.id, j.set)
		if err != nil {
			r := j.report()
			r.Error, r.Finished = err.Error(), time.Now().UTC()
			j.set(r)
			return
		}
		j.set(*rep)
	}()
	return j, nil
}

func (s *dlqState) job(dlq, id string) *redriveJob {
	s.mu.Lock()
	defer s.mu.Unlock()
	if j := s.jobs[id]; j != nil && j.dlq == dlq {
		return j
	}
	return nil
}

// parseSelection reads the filter fields.
func parseSelection(q url.Values) (Selection, error) {
	var s Selection
	for _, v := range q["reason"] {
		if v != "" {
			s.Reasons = append(s.Reasons, v)
		}
	}
	for _, v := range q["key"] {
		if v != "" {
			s.Keys = append(s.Keys, v)
		}
	}
	s.ErrorContains, s.OriginalTopic, s.Group = q.Get("error"), q.Get("original"), q.Get("group")
	var err error
	if s.From, err = parseFormTime("from", q.Get("from")); err != nil {
		return s, err
	}
	if s.To, err = parseFormTime("to", q.Get("to")); err != nil {
		return s, err
	}
	if !s.From.IsZero() && !s.To.IsZero() && !s.From.Before(s.To) {
		return s, httpapi.Errorf(http.StatusBadRequest, "console: from (%s) must be before to (%s)", q.Get("from"), q.Get("to"))
	}
	return s, nil
}

// parseFormTime reads a datetime-local value (UTC) or RFC 3339.
func parseFormTime(field, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04"} {
		if t, err := time.ParseInLocation(layout, v, time.UTC); err == nil {
			return t, nil
		}
	}
	return time.Time{}, httpapi.Errorf(http.StatusBadRequest, "console: %s %q is not a time (2006-01-02T15:04 UTC or RFC 3339)", field, v)
}

// selectionForm is the filter form's values for sel.
func selectionForm(s Selection) map[string]string {
	f := map[string]string{"error": s.ErrorContains, "original": s.OriginalTopic, "group": s.Group}
	if len(s.Reasons) > 0 {
		f["reason"] = s.Reasons[0]
	}
	if len(s.Keys) > 0 {
		f["key"] = s.Keys[0]
	}
	if !s.From.IsZero() {
		f["from"] = s.From.UTC().Format("2006-01-02T15:04")
	}
	if !s.To.IsZero() {
		f["to"] = s.To.UTC().Format("2006-01-02T15:04")
	}
	return f
}

// parseSpec reads a redrive form.
func parseSpec(r *http.Request, dlq string) (RedriveSpec, error) {
	if err := r.ParseForm(); err != nil {
		return RedriveSpec{}, httpapi.Errorf(http.StatusBadRequest, "console: redrive form: %v", err)
	}
	sel, err := parseSelection(r.PostForm)
	if err != nil {
		return RedriveSpec{}, err
	}
	spec := RedriveSpec{DLQ: dlq, Select: sel, Target: strings.TrimSpace(r.PostForm.Get("target")), Rate: DefaultRedriveRate}
	if v := r.PostForm.Get("rate"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return spec, httpapi.Errorf(http.StatusBadRequest, "console: rate %q: want records per second, 0 for unlimited", v)
		}
		spec.Rate = n
	}
	switch v := r.PostForm.Get("again"); v {
	case "", "false", "off":
	case "on", "true":
		spec.Again = true
	default:
		return spec, httpapi.Errorf(http.StatusBadRequest, "console: again %q: want true or false", v)
	}
	if spec.Target == dlq {
		return spec, httpapi.Errorf(http.StatusBadRequest, "console: the target %q is the dead-letter topic itself", dlq)
	}
	if v := r.PostForm.Get("through"); v != "" {
		spec.Through = map[int32]int64{}
		for _, part := range strings.Split(v, ",") {
			p, o, ok := strings.Cut(part, ":")
			pn, err1 := strconv.ParseInt(p, 10, 32)
			on, err2 := strconv.ParseInt(o, 10, 64)
			if !ok || err1 != nil || err2 != nil || pn < 0 || on < 0 {
				return spec, httpapi.Errorf(http.StatusBadRequest, "console: through %q: want partition:offset,...", v)
			}
			spec.Through[int32(pn)] = on
		}
	}
	return spec, nil
}

// specFields are spec's form fields, for the hidden inputs of the apply
// form a dry run shows.
func specFields(spec RedriveSpec, through map[int32]int64) []headerRow {
	var f []headerRow
	for _, v := range spec.Select.Reasons {
		f = append(f, headerRow{"reason", v})
	}
	for _, v := range spec.Select.Keys {
		f = append(f, headerRow{"key", v})
	}
	for k, v := range selectionForm(spec.Select) {
		if k != "reason" && k != "key" && v != "" {
			f = append(f, headerRow{k, v})
		}
	}
	if !spec.Select.From.IsZero() { // full precision, not the form's minutes
		f = slices.DeleteFunc(f, func(h headerRow) bool { return h.Key == "from" })
		f = append(f, headerRow{"from", spec.Select.From.UTC().Format(time.RFC3339Nano)})
	}
	if !spec.Select.To.IsZero() {
		f = slices.DeleteFunc(f, func(h headerRow) bool { return h.Key == "to" })
		f = append(f, headerRow{"to", spec.Select.To.UTC().Format(time.RFC3339Nano)})
	}
	f = append(f, headerRow{"target", spec.Target}, headerRow{"rate", strconv.Itoa(spec.Rate)})
	if spec.Again {
		f = append(f, headerRow{"again", "true"})
	}
	ps := make([]int32, 0, len(through))
	for p := range through {
		ps = append(ps, p)
	}
	slices.Sort(ps)
	var tb []string
	for _, p := range ps {
		tb = append(tb, strconv.FormatInt(int64(p), 10)+":"+strconv.FormatInt(through[p], 10))
	}
	f = append(f, headerRow{"through", strings.Join(tb, ",")})
	sort.SliceStable(f, func(i, j int) bool { return f[i].Key < f[j].Key })
	return f
}

// deniedTargets lists the targets r's principal may not write.
func (c *Console) deniedTargets(r *http.Request, targets map[string]int64) []string {
	var out []string
	for t := range targets {
		if c.mayRead(r, topicResource, t, kmsg.ACLOperationWrite) != nil {
			out = append(out, t)
		}
	}
	slices.Sort(out)
	return out
}

func (c *Console) redrivePlan(w http.ResponseWriter, r *http.Request) {
	adm, done, err := c.freshAdmin()
	if err != nil {
		c.fail(w, r, err)
		return
	}
	defer done()
	topic := r.PathValue("topic")
	ctx, cancel := c.pageContext(r)
	defer cancel()
	if _, err := c.checkDLQ(ctx, r, adm, topic); err != nil {
		c.fail(w, r, err)
		return
	}
	spec, err := parseSpec(r, topic)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	plan, err := PlanRedrive(ctx, c.clientOpts(), spec)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	denied := c.deniedTargets(r, plan.ByTarget)
	if wantsJSON(r) {
		httpapi.WriteJSON(w, http.StatusOK, struct {
			*RedrivePlan
			DeniedTargets []string `json:"denied_targets,omitempty"`
		}{plan, denied})
		return
	}
	var sample []dlqRow
	for _, d := range plan.Sample {
		sample = append(sample, newDLQRow(d, ""))
	}
	c.renderFragment(w, r, "deadletter", "redrive-plan", map[string]any{
		"Topic": topic, "Plan": plan, "Spec": spec, "Fields": specFields(spec, plan.Through), "Denied": denied,
		"ByTarget": sortedCounts(plan.ByTarget), "ByReason": sortedCounts(plan.ByReason), "Sample": sample,
		"ReadOnly": c.cfg.ReadOnly,
	})
}

func (c *Console) redriveStart(w http.ResponseWriter, r *http.Request) {
	adm, done, err := c.freshAdmin()
	if err != nil {
		c.fail(w, r, err)
		return
	}
	defer done()
	topic := r.PathValue("topic")
	if c.cfg.ReadOnly {
		c.fail(w, r, httpapi.Errorf(http.StatusForbidden, "console: read-only mode: redrive of %q refused (the console runs with --console-read-only)", topic))
		return
	}
	ctx, cancel := c.pageContext(r)
	defer cancel()
	if _, err := c.checkDLQ(ctx, r, adm, topic); err != nil {
		c.fail(w, r, err)
		return
	}
	spec, err := parseSpec(r, topic)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	if c.cfg.Authorizer != nil {
		// Write on every target before anything is sent: a named one, or
		// the original topics the records to redrive name.
		targets := map[string]int64{spec.Target: 1}
		if spec.Target == "" {
			plan, err := PlanRedrive(ctx, c.clientOpts(), spec)
			if err != nil {
				c.fail(w, r, err)
				return
			}
			targets, spec.Through = plan.ByTarget, plan.Through
		}
		for _, t := range c.deniedTargets(r, targets) {
			c.fail(w, r, c.mayRead(r, topicResource, t, kmsg.ACLOperationWrite))
			return
		}
		spec.Authorize = func(t string) error {
			if _, ok := targets[t]; !ok {
				return httpapi.Errorf(http.StatusForbidden, "console: target %q was not authorized when the redrive started", t)
			}
			return nil
		}
	}
	j, err := c.dlq.start(c.clientOpts(), spec)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.sampler.poke()
	c.answerJob(w, r, topic, j, http.StatusAccepted)
}

func (c *Console) redriveStatus(w http.ResponseWriter, r *http.Request) {
	topic := r.PathValue("topic")
	if err := c.mayRead(r, topicResource, topic, kmsg.ACLOperationRead); err != nil {
		c.fail(w, r, err)
		return
	}
	j := c.dlq.job(topic, r.PathValue("id"))
	if j == nil {
		c.fail(w, r, httpapi.Errorf(http.StatusNotFound, "console: no redrive %q of %q (the console keeps its last %d)", r.PathValue("id"), topic, maxJobs))
		return
	}
	c.answerJob(w, r, topic, j, http.StatusOK)
}

func (c *Console) redriveCancel(w http.ResponseWriter, r *http.Request) {
	topic := r.PathValue("topic")
	if err := c.mayRead(r, topicResource, topic, kmsg.ACLOperationRead); err != nil {
		c.fail(w, r, err)
		return
	}
	j := c.dlq.job(topic, r.PathValue("id"))
	if j == nil {
		c.fail(w, r, httpapi.Errorf(http.StatusNotFound, "console: no redrive %q of %q", r.PathValue("id"), topic))
		return
	}
	j.cancel()
	// The report is final once the records in flight are settled; wait a
	// little for it, else the page keeps polling.
	select {
	case <-j.done:
	case <-time.After(c.cfg.RequestTimeout):
	case <-r.Context().Done():
	}
	c.answerJob(w, r, topic, j, http.StatusOK)
}

// answerJob answers a redrive's state: JSON, or the progress fragment
// (which polls until the redrive is done).
func (c *Console) answerJob(w http.ResponseWriter, r *http.Request, topic string, j *redriveJob, status int) {
	rep := j.report()
	statusURL := c.cfg.BasePath + "deadletters/" + url.PathEscape(topic) + "/redrive/" + j.id
	if wantsJSON(r) {
		if status == http.StatusAccepted {
			w.Header().Set("Location", statusURL)
		}
		httpapi.WriteJSON(w, status, rep)
		return
	}
	pct := 0 // before the engine knows the range, nothing is read
	if rep.Records > 0 {
		pct = int(rep.Scanned * 100 / rep.Records)
	} else if rep.Done() {
		pct = 100
	}
	if r.Method == http.MethodGet && rep.Done() {
		// The page's poll swaps only the progress line (the Cancel button
		// beside it is never replaced while it may be clicked); the poll
		// that finds the redrive done replaces the whole section.
		w.Header().Set("HX-Retarget", "#redrive-job")
		w.Header().Set("HX-Reselect", "#redrive-job")
	}
	c.renderFragment(w, r, "deadletter", "redrive-job", map[string]any{
		"Topic": topic, "Report": rep, "Running": !rep.Done(), "URL": statusURL, "Pct": pct,
		"Failures": sortedCounts(rep.FailedByError), "ByTarget": sortedCounts(rep.ByTarget),
	})
}
