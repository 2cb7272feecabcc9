package console

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// A filtered read without the archive is a broker scan: the page opens
// its SSE stream (GET .../messages/scan?<the page's query>), which sends
// "progress" events (scanned/total per partition, matches so far) while
// it reads and one "done" event with the results. Closing the stream
// (the page's Cancel button, leaving the page) cancels the scan: it runs
// in the request's context. The scan reads at most the query's budget
// (msgScanBudget by default) and says so when it stops there.

// msgProgressView is a "progress" event.
type msgProgressView struct {
	*msgResult
	Elapsed string
	Budget  int64
	Done    bool
}

// msgProgressEvery is how often a scan sends its progress at most.
const msgProgressEvery = 150 * time.Millisecond

func (c *Console) messagesScan(w http.ResponseWriter, r *http.Request) {
	// An EventSource cannot show an error page: refusals are problems.
	r.Header.Set("Accept", "application/problem+json")
	topic := r.PathValue("topic")
	if err := c.mayRead(r, topicResource, topic, kmsg.ACLOperationRead); err != nil {
		c.fail(w, r, err)
		return
	}
	q, err := parseMsgQuery(topic, r.URL.Query())
	if err != nil {
		c.fail(w, r, err)
		return
	}
	pctx, cancel := c.pageContext(r)
	prs, adm, err := c.msgPageRanges(pctx, q)
	var pl msgPlan
	if err == nil {
		pl, err = msgPlanRead(pctx, adm, q, prs, false)
	}
	cancel()
	if err != nil {
		c.fail(w, r, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	began := time.Now()
	var last time.Time
	send := func(name, fragment string, data any) {
		b, err := c.fragment("messages", fragment, data)
		if err != nil {
			c.cfg.Logger.Error("console: scan", "err", err)
			return
		}
		msgWriteSSE(w, name, b)
		rc.Flush()
	}
	progress := func(res *msgResult) {
		if time.Since(last) < msgProgressEvery {
			return
		}
		last = time.Now()
		send("progress", "msg-progress", msgProgressView{msgResult: res, Elapsed: time.Since(began).Round(time.Millisecond).String(), Budget: q.Budget})
	}
	first := &msgResult{Parts: msgPlanParts(pl)}
	for _, pp := range first.Parts {
		first.Planned += pp.Total
	}
	progress(first)
	// The scan ends with its stream: closed by the page, or by EndStreams
	// when the server shuts down.
	ctx, stop := context.WithCancel(r.Context())
	defer stop()
	go func() {
		select {
		case <-c.closing:
			stop()
		case <-ctx.Done():
		}
	}()
	res, err := c.msgBrowse(ctx, q, pl, c.cfg.RequestTimeout, progress)
	select {
	case <-c.closing:
		send("done", "msg-scan-error", "console: the console is shutting down; the scan stopped")
		return
	default:
	}
	if r.Context().Err() != nil {
		c.cfg.Logger.Info("console: scan cancelled", "topic", topic, "after", time.Since(began))
		return
	}
	if err != nil {
		send("done", "msg-scan-error", err.Error())
		return
	}
	send("progress", "msg-progress", msgProgressView{msgResult: res, Elapsed: time.Since(began).Round(time.Millisecond).String(), Budget: q.Budget, Done: true})
	send("done", "msg-results", c.msgResultsView(q, res))
	c.cfg.Logger.Debug("console: scan done", "topic", topic, "scanned", res.Scanned, "matches", res.Matches, "took", time.Since(began))
}

func msgPlanParts(pl msgPlan) []msgPartProgress {
	var out []msgPartProgress
	for _, r := range pl.ranges {
		out = append(out, msgPartProgress{P: r.P, Total: r.To - r.From})
	}
	return out
}

// msgWriteSSE writes one server-sent event; every line of data is a data
// field.
func msgWriteSSE(w io.Writer, name string, data []byte) {
	var b bytes.Buffer
	b.WriteString("event: " + name + "\n")
	for _, line := range bytes.Split(data, []byte("\n")) {
		b.WriteString("data: ")
		b.Write(bytes.TrimRight(line, "\r"))
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	w.Write(b.Bytes())
}

// msgExportEnd is the export's last line when it did not export every
// match.
type msgExportEnd struct {
	Truncated bool   `json:"truncated"`
	Reason    string `json:"reason"`
	Scanned   int64  `json:"scanned"`
	Of        int64  `json:"of"`
	Exported  int64  `json:"exported"`
	Next      string `json:"next,omitempty"` // the query that continues it
}

// messagesExport streams every match of the page's query (not just the
// page) as JSON lines, one record per line in offset order per partition,
// read within the query's budget; the last line says when it is
// truncated.
func (c *Console) messagesExport(w http.ResponseWriter, r *http.Request) {
	topic := r.PathValue("topic")
	if err := c.mayRead(r, topicResource, topic, kmsg.ACLOperationRead); err != nil {
		c.fail(w, r, err)
		return
	}
	v := r.URL.Query()
	v.Del("limit")
	q, err := parseMsgQuery(topic, v)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	q.Limit = msgMaxPageSize
	pctx, cancel := c.pageContext(r)
	prs, adm, err := c.msgPageRanges(pctx, q)
	var pl msgPlan
	if err == nil && c.msgUseArchive(q) && !c.msgArchiveHolds(pctx, r, q, &msgPageData{}) {
		q.Source = "broker" // the archive holds nothing of the topic
	}
	if err == nil && !c.msgUseArchive(q) {
		pl, err = msgPlanRead(pctx, adm, q, prs, true)
	}
	cancel()
	if err != nil {
		c.fail(w, r, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/x-ndjson")
	h.Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s-messages.ndjson"`, url.PathEscape(topic)))
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	bw := bufio.NewWriterSize(w, 64<<10)
	defer bw.Flush()
	enc := json.NewEncoder(bw)
	if c.msgUseArchive(q) {
		c.msgExportArchive(r, q, enc)
		return
	}
	ctx, stop := context.WithCancel(r.Context())
	defer stop()
	go func() {
		select {
		case <-c.closing:
			stop()
		case <-ctx.Done():
		}
	}()
	var n int64
	err = c.msgReadRanges(ctx, topic, pl.ranges, c.cfg.RequestTimeout, func(kr *kgo.Record) bool {
		rec := msgFromKgo(kr)
		if q.Filter.match(rec) {
			enc.Encode(msgRecordJSON(rec))
			n++
		}
		return true
	}, nil)
	if r.Context().Err() != nil {
		return
	}
	end := msgExportEnd{Truncated: true, Exported: n}
	if ctx.Err() != nil {
		err = errors.New("the console is shutting down")
	}
	limited := false
	for _, rr := range pl.ranges {
		end.Scanned += rr.Pos - rr.From
		pr := pl.parts[rr.P]
		end.Of += pr.End - pr.Start
		limited = limited || pl.limited[rr.P]
		if !rr.done() && err == nil {
			err = fmt.Errorf("partition %d stopped at offset %d of %d: nothing arrived within %s", rr.P, rr.Pos, rr.To, c.cfg.RequestTimeout)
		}
	}
	switch {
	case err != nil:
		end.Reason = "console: " + err.Error()
	case limited:
		end.Reason = fmt.Sprintf("scanned %d of %d records, stopped at the budget of %d; narrow the filter (a time range, a partition) or export the rest with the cursor of next", end.Scanned, end.Of, q.Budget)
		cur := &msgCursor{Older: pl.backward, Bounds: map[int32]int64{}}
		for _, rr := range pl.ranges {
			if pl.backward {
				cur.Bounds[rr.P] = rr.From
			} else {
				cur.Bounds[rr.P] = rr.Pos
			}
		}
		end.Next = q.with("cursor", cur.String()).Encode()
	default:
		return
	}
	enc.Encode(end)
}

// msgExportArchive writes every archived match of q, paging through the
// lookback API, at most q.Budget events.
func (c *Console) msgExportArchive(r *http.Request, q msgQuery, enc *json.Encoder) {
	sub := q
	sub.Limit = 1000
	var n int64
	for {
		res, err := c.msgSearchArchive(r.Context(), r, sub)
		if err != nil {
			enc.Encode(msgExportEnd{Truncated: true, Reason: err.Error(), Exported: n})
			return
		}
		for _, rec := range res.Records {
			enc.Encode(msgRecordJSON(rec))
			n++
		}
		if res.LBNext == "" {
			return
		}
		if n >= q.Budget {
			enc.Encode(msgExportEnd{Truncated: true, Exported: n, Reason: fmt.Sprintf("stopped at the budget of %d records", q.Budget),
				Next: q.with("cursor", "lb:"+res.LBNext).Encode()})
			return
		}
		sub.LBCursor = res.LBNext
	}
}
