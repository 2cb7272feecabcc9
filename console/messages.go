package console

import (
	"context"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The messages page (/ui/topics/{topic}/messages): browse a topic from the
// newest, the oldest, an offset or a time, one partition or all, page by
// page with a cursor; filter by key, header, ce_type, time range and
// payload text; see each record decoded; export every match as JSON
// lines; produce a record. Filters are answered by the lookback archive's
// index when the console has it (Config.Lookback), otherwise by a bounded
// broker scan that streams its progress (messages_scan.go). /ui/messages
// picks the topic.

// msgPickData is the topic picker.
type msgPickData struct {
	Topics []msgTopic
}

type msgTopic struct {
	Name       string
	Partitions int
}

func (c *Console) messagesPick(w http.ResponseWriter, r *http.Request) {
	if t := strings.TrimSpace(r.URL.Query().Get("topic")); t != "" {
		http.Redirect(w, r, c.cfg.BasePath+"topics/"+url.PathEscape(t)+"/messages", http.StatusSeeOther)
		return
	}
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
	var d msgPickData
	for name, t := range md.Topics {
		if t.Err != nil || !c.visible(r, topicResource, name) {
			continue
		}
		d.Topics = append(d.Topics, msgTopic{Name: name, Partitions: len(t.Partitions)})
	}
	sort.Slice(d.Topics, func(i, j int) bool {
		a, b := d.Topics[i].Name, d.Topics[j].Name
		if ia, ib := strings.HasPrefix(a, "__"), strings.HasPrefix(b, "__"); ia != ib {
			return ib
		}
		return a < b
	})
	c.render(w, r, http.StatusOK, "messages_pick", "Messages", "messages", d)
}

// msgPageData is the messages page.
type msgPageData struct {
	Topic      string
	Parts      []msgPartRange
	Q          msgQuery
	Form       msgForm
	Result     *msgResultView // nil while a scan streams
	ScanURL    string         // the scan's SSE stream, when the filters scan the broker
	ExportURL  string
	ProduceURL string
	CanProduce bool
	ReadOnly   bool
	// ArchivedUpTo is the time of the archive's newest event of the topic;
	// NotArchived says the archive holds none, so filters scan the broker.
	ArchivedUpTo time.Time
	NotArchived  bool
	Archive      bool // the console has the lookback archive
}

// msgForm is the filter form as typed.
type msgForm struct {
	Partition, Start, Offset, Time, Limit               string
	Key, KeyMatch, Header, Type, From, To, Text, Source string
}

func msgFormOf(v url.Values) msgForm {
	return msgForm{Partition: v.Get("partition"), Start: v.Get("start"), Offset: v.Get("offset"), Time: v.Get("time"),
		Limit: v.Get("limit"), Key: v.Get("key"), KeyMatch: v.Get("key_match"), Header: v.Get("header"),
		Type: v.Get("type"), From: v.Get("from"), To: v.Get("to"), Text: v.Get("q"), Source: v.Get("source")}
}

// msgResultView is a result as the templates draw it.
type msgResultView struct {
	*msgResult
	Views     []msgView
	OlderURL  string
	NewerURL  string
	FirstURL  string
	BrokerURL string // the same query scanning the broker, for an archive answer
	// ArchivedUpTo is the time of the archive's newest event of the topic.
	ArchivedUpTo time.Time
	Filtered     bool
	TimeoutIn    time.Duration
}

func (c *Console) messagesPage(w http.ResponseWriter, r *http.Request) {
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
	ctx, cancel := c.pageContext(r)
	defer cancel()
	prs, adm, err := c.msgPageRanges(ctx, q)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	base := c.cfg.BasePath + "topics/" + url.PathEscape(topic) + "/messages"
	d := msgPageData{Topic: topic, Parts: prs, Q: q, Form: msgFormOf(r.URL.Query()), Archive: c.cfg.Lookback != nil,
		ExportURL: base + "/export?" + r.URL.RawQuery, ProduceURL: base,
		CanProduce: c.mayWrite(r, topicResource, topic, kmsg.ACLOperationWrite) == nil, ReadOnly: c.cfg.ReadOnly}
	switch {
	case c.msgUseArchive(q) && c.msgArchiveHolds(ctx, r, q, &d):
		res, err := c.msgSearchArchive(ctx, r, q)
		if err != nil {
			c.fail(w, r, err)
			return
		}
		d.Result = c.msgResultsView(q, res)
		d.Result.ArchivedUpTo = d.ArchivedUpTo
	case q.Filter.active():
		sq := r.URL.Query()
		if c.msgUseArchive(q) {
			sq.Set("source", "broker") // the archive holds nothing of the topic
		}
		d.ScanURL = base + "/scan?" + sq.Encode()
	default:
		pl, err := msgPlanRead(ctx, adm, q, prs, false)
		if err != nil {
			c.fail(w, r, err)
			return
		}
		res, err := c.msgBrowse(ctx, q, pl, c.cfg.RequestTimeout, nil)
		if err != nil {
			c.fail(w, r, err)
			return
		}
		d.Result = c.msgResultsView(q, res)
	}
	c.render(w, r, http.StatusOK, "messages", topic, "messages", d)
}

// msgResultsView adds the page's links and the decoded records.
func (c *Console) msgResultsView(q msgQuery, res *msgResult) *msgResultView {
	v := &msgResultView{msgResult: res, Filtered: q.Filter.active(), TimeoutIn: c.cfg.RequestTimeout}
	base := c.cfg.BasePath + "topics/" + url.PathEscape(q.Topic) + "/messages?"
	for _, rec := range res.Records {
		mv := msgViewRecord(rec)
		if c.cfg.Lookback == nil {
			mv.Flow = ""
		}
		v.Views = append(v.Views, mv)
	}
	if res.Older != nil {
		v.OlderURL = base + q.with("cursor", res.Older.String()).Encode()
	}
	if res.Newer != nil {
		v.NewerURL = base + q.with("cursor", res.Newer.String()).Encode()
	}
	if res.LBNext != "" {
		v.OlderURL = base + q.with("cursor", "lb:"+res.LBNext).Encode()
		if q.Start != "newest" {
			v.OlderURL, v.NewerURL = "", v.OlderURL
		}
	}
	if res.Source == "lookback" {
		v.BrokerURL = base + q.with("source", "broker", "cursor", "").Encode()
	}
	if q.Cursor != nil || q.LBCursor != "" {
		v.FirstURL = base + q.with("cursor", "").Encode()
	}
	return v
}

// msgUseArchive reports whether q's filters go to the lookback archive: it
// is on, a filter is set, the user did not ask for a broker scan, and the
// start is one the archive can answer (not an offset, not a broker
// cursor).
func (c *Console) msgUseArchive(q msgQuery) bool {
	if q.LBCursor != "" {
		return c.cfg.Lookback != nil
	}
	return c.cfg.Lookback != nil && q.Filter.active() && q.Source != "broker" && q.Start != "offset" && q.Cursor == nil
}

// msgArchiveHolds reports whether the archive holds any event of q's
// topic (recording the newest one's time in d): a topic it excludes, or a
// new one it has not picked up yet, is scanned on the broker instead of
// answering "no match". An error of the API is left to the search.
func (c *Console) msgArchiveHolds(ctx context.Context, r *http.Request, q msgQuery, d *msgPageData) bool {
	page, err := c.lookback().search(ctx, r, lbFilter{Topic: q.Topic}, "newest", "", 1)
	if err != nil {
		return true
	}
	if len(page.Events) == 0 {
		d.NotArchived = true
		return false
	}
	d.ArchivedUpTo = page.Events[0].Timestamp
	return true
}

// msgSearchArchive answers q from the lookback archive's index: the indexed
// filters (topic, exact key, ce_type, time range, payload text) go to its
// search API; the others (partition, key contains, header) are applied to
// its answers, examining at most lbPostBudget events.
func (c *Console) msgSearchArchive(ctx context.Context, r *http.Request, q msgQuery) (*msgResult, error) {
	lb := c.lookback()
	f := lbFilter{Topic: q.Topic, Type: q.Filter.Type, Q: q.Filter.Text}
	if q.Filter.Key != "" && !q.Filter.KeyContains {
		f.Key = q.Filter.Key
	}
	from := q.Filter.From
	if q.Start == "time" && q.Time.After(from) {
		from = q.Time
	}
	if !from.IsZero() {
		f.From = from.UTC().Format(time.RFC3339Nano)
	}
	if !q.Filter.To.IsZero() {
		f.To = q.Filter.To.UTC().Format(time.RFC3339Nano)
	}
	order := "newest"
	if q.Start != "newest" {
		order = "oldest"
	}
	post := q.Partition >= 0 || q.Filter.KeyContains || q.Filter.HeaderName != ""
	res := &msgResult{Source: "lookback", Newest: order == "newest"}
	cursor := q.LBCursor
	for {
		limit := q.Limit
		if post {
			limit = min(1000, max(q.Limit, 100))
		}
		page, err := lb.search(ctx, r, f, order, cursor, limit)
		if err != nil {
			return nil, err
		}
		for _, e := range page.Events {
			res.Examined++
			rec := msgFromArchive(e)
			if (q.Partition >= 0 && rec.Partition != q.Partition) || !q.Filter.match(rec) {
				continue
			}
			res.Records = append(res.Records, rec)
		}
		res.Scanned += int64(page.Scanned)
		cursor = page.Next
		if cursor == "" || len(res.Records) >= q.Limit || res.Examined >= msgLBPostBudget {
			break
		}
		if !post {
			break
		}
	}
	res.Matches = int64(len(res.Records))
	res.LBNext = cursor
	res.Budget = cursor != "" && res.Examined >= msgLBPostBudget && len(res.Records) < q.Limit
	return res, nil
}

func msgKgoHeader(k string, v []byte) kgo.RecordHeader { return kgo.RecordHeader{Key: k, Value: v} }
