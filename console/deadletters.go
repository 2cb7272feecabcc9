package console

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/spoolmq/spool/internal/httpapi"
)

// The dead letters pages: every dead-letter topic (by name pattern or by
// the headers of its latest records), one topic's records grouped and
// filtered, and bulk redrive (redrive.go) with a dry run, a rate limit,
// progress and a report.

// dlqPageScan bounds the records a dead-letter topic's page reads (the
// newest, spread over its partitions); a redrive reads them all.
const dlqPageScan = 50000

// dlqState is the dead letters pages' state in the Console: the header
// probe cache and the redrive jobs. Its zero value is ready.
type dlqState struct {
	mu     sync.Mutex
	probed map[string]probeResult // topic -> what its latest records said
	jobs   map[string]*redriveJob
	order  []string // job ids, oldest first
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	closed bool
}

type probeResult struct {
	end        int64 // sum of the end offsets when probed
	dlq        bool
	convention string
}

// close cancels the running redrives and waits for them (their reports
// are final: every record handed to the producer is acknowledged or
// failed).
func (s *dlqState) close() {
	s.mu.Lock()
	s.closed = true
	if s.cancel != nil {
		s.cancel()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// clientOpts are the options of the clients the redrive engine makes.
func (c *Console) clientOpts() []kgo.Opt {
	return append([]kgo.Opt{kgo.SeedBrokers(c.cfg.Brokers...)}, c.cfg.ClientOptions...)
}

// freshAdmin is an admin client of its own for one request of the dead
// letters pages: the console's long-lived client caches metadata, so a
// topic created moments ago (a new dead-letter topic, the journal) would
// be missing, or answered 404, for a few seconds.
func (c *Console) freshAdmin() (*kadm.Client, func(), error) {
	if _, _, err := c.client(); err != nil {
		return nil, nil, err // not started, or closed
	}
	cl, err := kgo.NewClient(c.clientOpts()...)
	if err != nil {
		return nil, nil, fmt.Errorf("console: kafka client: %w", err)
	}
	return kadm.NewClient(cl), cl.Close, nil
}

func (c *Console) dlqPatterns() []string {
	if len(c.cfg.DeadLetterTopics) > 0 {
		return c.cfg.DeadLetterTopics
	}
	return DefaultDeadLetterTopics
}

// dlqInfo is one row of the dead letters list.
type dlqInfo struct {
	Name       string
	By         string // "name" or "headers"
	Convention string
	Partitions int
	Depth      int64
	Rate       float64
}

func (c *Console) deadLetters(w http.ResponseWriter, r *http.Request) {
	adm, done, err := c.freshAdmin()
	if err != nil {
		c.fail(w, r, err)
		return
	}
	defer done()
	ctx, cancel := c.pageContext(r)
	defer cancel()
	tds, err := adm.ListTopics(ctx)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	ends, err := adm.ListEndOffsets(ctx)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	starts, err := adm.ListStartOffsets(ctx)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	endOf := map[string]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err == nil {
			endOf[o.Topic] += o.Offset
		}
	})
	var list []dlqInfo
	var candidates []string
	for name, td := range tds {
		if td.Err != nil || td.IsInternal || strings.HasPrefix(name, "__") || !c.visible(r, topicResource, name) {
			continue
		}
		if matchesDeadLetterName(c.dlqPatterns(), name) {
			list = append(list, dlqInfo{Name: name, By: "name"})
			continue
		}
		if !strings.HasPrefix(name, "spool.") && endOf[name] > 0 && c.mayRead(r, topicResource, name, kmsg.ACLOperationRead) == nil {
			candidates = append(candidates, name)
		}
	}
	for name, pr := range c.probe(ctx, ends, candidates) {
		if pr.dlq {
			list = append(list, dlqInfo{Name: name, By: "headers", Convention: pr.convention})
		}
	}
	smps := c.sampler.samples()
	for i := range list {
		d := &list[i]
		d.Partitions = len(tds[d.Name].Partitions)
		d.Depth = depthOf(starts, ends, d.Name)
		name := d.Name
		d.Rate = lastRate(rateSeries(name, smps, func(s sample) (int64, bool) { v, ok := s.TopicEnds[name]; return v, ok }))
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Name < list[j].Name })
	c.render(w, r, http.StatusOK, "deadletters", "Dead letters", "deadletters", map[string]any{
		"Topics": list, "Patterns": strings.Join(c.dlqPatterns(), " "),
	})
}

// maxProbe bounds the topics whose latest records one page load reads.
const maxProbe = 200

// probe tells, for each candidate topic, whether its latest records carry
// dead-letter headers. A topic is read again only when its end offsets
// moved since it was last probed.
func (c *Console) probe(ctx context.Context, ends kadm.ListedOffsets, candidates []string) map[string]probeResult {
	out := map[string]probeResult{}
	endOf := map[string]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err == nil {
			endOf[o.Topic] += o.Offset
		}
	})
	c.dlq.mu.Lock()
	var todo []string
	for _, t := range candidates {
		if pr, ok := c.dlq.probed[t]; ok && pr.end == endOf[t] {
			out[t] = pr
		} else if len(todo) < maxProbe {
			todo = append(todo, t)
		}
	}
	c.dlq.mu.Unlock()
	if len(todo) == 0 {
		return out
	}
	found, complete := probeLatest(ctx, c.clientOpts(), ends, todo)
	c.dlq.mu.Lock()
	defer c.dlq.mu.Unlock()
	if c.dlq.probed == nil {
		c.dlq.probed = map[string]probeResult{}
	}
	for _, t := range todo {
		pr := probeResult{end: endOf[t], convention: found[t], dlq: found[t] != ""}
		if complete || pr.dlq { // a probe cut short by its deadline is not a "no"
			c.dlq.probed[t] = pr
		}
		out[t] = pr
	}
	return out
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// checkDLQ answers 403 without Read on topic, 404 when it does not exist.
func (c *Console) checkDLQ(ctx context.Context, r *http.Request, adm *kadm.Client, topic string) (kadm.TopicDetail, error) {
	if err := c.mayRead(r, topicResource, topic, kmsg.ACLOperationRead); err != nil {
		return kadm.TopicDetail{}, err
	}
	tds, err := adm.ListTopics(ctx, topic)
	if err != nil {
		return kadm.TopicDetail{}, err
	}
	td, ok := tds[topic]
	if !ok || errors.Is(td.Err, kerr.UnknownTopicOrPartition) {
		return td, httpapi.Errorf(http.StatusNotFound, "console: no topic %q", topic)
	}
	if td.Err != nil {
		return td, td.Err
	}
	return td, nil
}

// dlqRow is one record of a dead-letter topic's page.
type dlqRow struct {
	DeadLetter
	Key        string
	Value      string
	ValueHex   bool
	Headers    []headerRow
	RedrivenBy string
}

type headerRow struct{ Key, Value string }

// dlqGroup is one row of a grouping, with the link that filters by it.
type dlqGroup struct {
	Value  string
	Count  int64
	Href   string
	Active bool
}

func (c *Console) deadLetterTopic(w http.ResponseWriter, r *http.Request) {
	adm, done, err := c.freshAdmin()
	if err != nil {
		c.fail(w, r, err)
		return
	}
	defer done()
	topic := r.PathValue("topic")
	ctx, cancel := c.pageContext(r)
	defer cancel()
	td, err := c.checkDLQ(ctx, r, adm, topic)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	sel, err := parseSelection(r.URL.Query())
	if err != nil {
		c.fail(w, r, err)
		return
	}
	limit := 25
	if v := r.URL.Query().Get("limit"); v != "" {
		if n, err := strconv.Atoi(v); err == nil && n > 0 {
			limit = min(n, 1000)
		}
	}
	ranges, err := topicRanges(ctx, adm, topic)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	var depth int64
	per := int64(dlqPageScan / max(len(ranges), 1))
	for p, pr := range ranges {
		depth += pr.End - pr.Start
		if pr.End-pr.Start > per {
			pr.Start = pr.End - per
			ranges[p] = pr
		}
	}
	journal, jerr := readRedriveJournal(ctx, c.clientOpts(), topic)
	var scanned int64
	var matched []DeadLetter
	byReason, byError, byOrig, byGroup := map[string]int64{}, map[string]int64{}, map[string]int64{}, map[string]int64{}
	var redriven int64
	err = scanTopic(ctx, c.clientOpts(), topic, ranges, func(rec *kgo.Record) bool {
		scanned++
		d := DecodeDeadLetter(rec)
		if !sel.Match(d) {
			return true
		}
		matched = append(matched, d)
		byReason[d.Reason]++
		byError[shortError(d.Error)]++
		byOrig[d.OriginalTopic]++
		byGroup[d.Group]++
		if journal.redriven(d) != "" {
			redriven++
		}
		return true
	})
	if err != nil {
		c.fail(w, r, err)
		return
	}
	sort.SliceStable(matched, func(i, j int) bool {
		a, b := matched[i].Record, matched[j].Record
		if !a.Timestamp.Equal(b.Timestamp) {
			return a.Timestamp.After(b.Timestamp)
		}
		if a.Offset != b.Offset {
			return a.Offset > b.Offset
		}
		return a.Partition < b.Partition
	})
	q := r.URL.Query()
	q.Del("limit")
	rows := make([]dlqRow, 0, min(limit, len(matched)))
	for _, d := range matched[:min(limit, len(matched))] {
		rows = append(rows, newDLQRow(d, journal.redriven(d)))
	}
	jmsg := ""
	if jerr != nil {
		jmsg = jerr.Error()
	}
	data := map[string]any{
		"Topic": topic, "Partitions": len(td.Partitions), "Depth": depth, "Scanned": scanned,
		"Truncated": scanned < depth, "Matched": len(matched), "Redriven": redriven,
		"Select": sel, "Filtered": q.Encode() != "", "Query": q.Encode(), "Form": selectionForm(sel),
		"ByReason":   groups(q, "reason", byReason),
		"ByError":    groups(q, "error", byError),
		"ByOriginal": groups(q, "original", byOrig),
		"ByGroup":    groups(q, "group", byGroup),
		"Rows":       rows, "More": len(matched) > limit, "NextLimit": limit * 2,
		"Redrives": journal.newestFirst(), "JournalError": jmsg,
		"ReadOnly": c.cfg.ReadOnly, "DefaultRate": DefaultRedriveRate,
	}
	c.render(w, r, http.StatusOK, "deadletter", topic, "deadletters", data)
}

// shortError is the error text a grouping shows and filters by: its
// first line, at most 200 bytes (a filter on it is a substring match).
func shortError(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 200 {
		s = s[:200]
		for !utf8.ValidString(s) {
			s = s[:len(s)-1]
		}
	}
	return s
}

// groups is a grouping's rows, each linking to the page with the filter
// field set to its value (added to the current filters).
func groups(q url.Values, field string, m map[string]int64) []dlqGroup {
	var out []dlqGroup
	for _, cb := range sortedCounts(m) {
		nq := url.Values{}
		for k, v := range q {
			nq[k] = v
		}
		nq.Set(field, cb.Value)
		out = append(out, dlqGroup{Value: cb.Value, Count: cb.Count, Href: "?" + nq.Encode(), Active: q.Get(field) == cb.Value && cb.Value != ""})
		if len(out) == 20 {
			break
		}
	}
	return out
}

// dlqGroupTable is one grouping table of the page.
type dlqGroupTable struct {
	Title, ID string
	Rows      []dlqGroup
}

func newDLQRow(d DeadLetter, redrivenBy string) dlqRow {
	row := dlqRow{DeadLetter: d, RedrivenBy: redrivenBy}
	row.Key, _ = printable(d.Record.Key, 200)
	var text bool
	row.Value, text = printable(d.Record.Value, 300)
	row.ValueHex = !text
	for _, h := range d.Record.Headers {
		v, ok := printable(h.Value, 2000)
		if !ok && (len(h.Value) == 4 || len(h.Value) == 8) {
			if n, ok := springInt(h.Value); ok {
				v += " (" + strconv.FormatInt(n, 10) + ")"
			}
		}
		row.Headers = append(row.Headers, headerRow{h.Key, v})
	}
	return row
}

// printable is b as text when it is printable UTF-8, else as hex; at most
// n bytes of it, "…" marking a cut.
func printable(b []byte, n int) (string, bool) {
	cut := len(b) > n
	if cut {
		b = b[:n]
	}
	text := utf8.Valid(b) || cut && utf8.Valid(b[:max(len(b)-3, 0)])
	if text {
		for _, r := range string(b) {
			if r != '\n' && r != '\t' && r != utf8.RuneError && !unicode.IsPrint(r) {
				text = false
				break
			}
		}
	}
	s := string(b)
	if !text {
		s = hex.EncodeToString(b)
	}
	if cut {
		s += "…"
	}
	return s, text
}
