package console

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/spoolmq/spool/internal/httpapi"
)

// The requests page: the gateway's asynchronous requests (GET
// /api/requests and /api/requests/{id} of Config.Gateway), with their
// status and callback attempts. A request is shown to a principal with
// Read on its topic.

// gwRequest is the gateway's status document of a request.
type gwRequest struct {
	ID           string          `json:"id"`
	Topic        string          `json:"topic"`
	State        string          `json:"state"`
	CreatedAt    time.Time       `json:"created_at"`
	UpdatedAt    time.Time       `json:"updated_at"`
	ExpiresAt    time.Time       `json:"expires_at"`
	Partition    *int32          `json:"partition,omitempty"`
	Offset       *int64          `json:"offset,omitempty"`
	ContentType  string          `json:"content_type,omitempty"`
	Result       json.RawMessage `json:"result,omitempty"`
	ResultBase64 string          `json:"result_base64,omitempty"`
	Error        string          `json:"error,omitempty"`
	Callback     *gwCallback     `json:"callback,omitempty"`
}

type gwCallback struct {
	URL           string      `json:"url"`
	State         string      `json:"state,omitempty"`
	Attempts      []gwAttempt `json:"attempts"`
	NextAttemptAt *time.Time  `json:"next_attempt_at,omitempty"`
}

type gwAttempt struct {
	At     time.Time `json:"at"`
	Status int       `json:"status,omitempty"`
	Error  string    `json:"error,omitempty"`
}

// Open reports whether the request is still waiting for its reply.
func (r *gwRequest) Open() bool { return r.State == "accepted" || r.State == "pending" }

// Finished is when the request reached its final state (zero while open).
func (r *gwRequest) Finished() time.Time {
	if r.Open() {
		return time.Time{}
	}
	return r.UpdatedAt
}

// LastError is the error of the last callback attempt, if it failed.
func (r *gwRequest) LastError() string {
	if r.Callback == nil || len(r.Callback.Attempts) == 0 {
		return ""
	}
	a := r.Callback.Attempts[len(r.Callback.Attempts)-1]
	if a.Error != "" {
		return a.Error
	}
	if a.Status >= 300 {
		return "HTTP " + strconv.Itoa(a.Status)
	}
	return ""
}

// StateClass is the badge class of the request's state.
func (r *gwRequest) StateClass() string {
	switch r.State {
	case "succeeded":
		return "ok"
	case "failed", "expired":
		return "bad"
	case "cancelled":
		return "warn"
	}
	return ""
}

// ResultText is the result for display: JSON pretty-printed, or its
// base64 form.
func (r *gwRequest) ResultText() string {
	if len(r.Result) > 0 {
		var b bytes.Buffer
		if json.Indent(&b, r.Result, "", "  ") == nil {
			return b.String()
		}
		return string(r.Result)
	}
	if r.ResultBase64 != "" {
		return "base64:" + r.ResultBase64
	}
	return ""
}

type gatewayClient struct{ api apiClient }

func (c *Console) gateway() *gatewayClient {
	if c.cfg.Gateway == nil {
		return nil
	}
	return &gatewayClient{apiClient{h: c.cfg.Gateway, name: "gateway"}}
}

func (g *gatewayClient) list(ctx context.Context, r *http.Request, q url.Values) ([]*gwRequest, string, error) {
	var out struct {
		Requests []*gwRequest `json:"requests"`
		Next     string       `json:"next"`
	}
	_, err := g.api.do(ctx, r, http.MethodGet, "/api/requests", q, nil, &out)
	return out.Requests, out.Next, err
}

func (g *gatewayClient) cancel(ctx context.Context, r *http.Request, id string) (*gwRequest, error) {
	var out gwRequest
	_, err := g.api.do(ctx, r, http.MethodDelete, "/api/requests/"+url.PathEscape(id), nil, nil, &out)
	return &out, err
}

func (g *gatewayClient) get(ctx context.Context, r *http.Request, id string) (*gwRequest, error) {
	var out gwRequest
	_, err := g.api.do(ctx, r, http.MethodGet, "/api/requests/"+url.PathEscape(id), nil, nil, &out)
	return &out, err
}

// reqStates are the status filter's choices; "open" is accepted or
// pending.
var reqStates = []string{"open", "accepted", "pending", "succeeded", "failed", "cancelled", "expired"}

type requestsData struct {
	Off      bool
	Status   string
	Topic    string
	States   []string
	Requests []*gwRequest
	Hidden   int
	Next     string
	First    string
	Lookback bool
}

const reqPageSize = 50

func (c *Console) requests(w http.ResponseWriter, r *http.Request) {
	gw := c.gateway()
	if gw == nil {
		c.render(w, r, http.StatusOK, "requests", "Async requests", "requests", requestsData{Off: true})
		return
	}
	v := r.URL.Query()
	d := requestsData{Status: v.Get("status"), Topic: strings.TrimSpace(v.Get("topic")), States: reqStates, Lookback: c.cfg.Lookback != nil}
	if d.Topic != "" {
		if err := c.mayRead(r, topicResource, d.Topic, kmsg.ACLOperationRead); err != nil {
			c.fail(w, r, err)
			return
		}
	}
	q := url.Values{"limit": {strconv.Itoa(reqPageSize)}}
	if d.Topic != "" {
		q.Set("topic", d.Topic)
	}
	switch d.Status {
	case "":
	case "open":
		q.Set("status", "accepted,pending")
	default:
		q.Set("status", d.Status)
	}
	if b := v.Get("before"); b != "" {
		q.Set("before", b)
	}
	ctx, cancel := c.pageContext(r)
	defer cancel()
	reqs, next, err := gw.list(ctx, r, q)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	for _, rq := range reqs {
		if c.mayRead(r, topicResource, rq.Topic, kmsg.ACLOperationRead) != nil {
			d.Hidden++
			continue
		}
		d.Requests = append(d.Requests, rq)
	}
	page := url.Values{}
	if d.Status != "" {
		page.Set("status", d.Status)
	}
	if d.Topic != "" {
		page.Set("topic", d.Topic)
	}
	if v.Get("before") != "" {
		d.First = c.cfg.BasePath + "requests?" + page.Encode()
	}
	if next != "" {
		page.Set("before", next)
		d.Next = c.cfg.BasePath + "requests?" + page.Encode()
	}
	c.render(w, r, http.StatusOK, "requests", "Async requests", "requests", d)
}

type requestData struct {
	Off      bool
	Request  *gwRequest
	Lookback bool
	ReadOnly bool
}

// request serves a request's page; for htmx, its status fragment alone
// (whose fields reload themselves while the request is open).
func (c *Console) request(w http.ResponseWriter, r *http.Request) {
	gw := c.gateway()
	if gw == nil {
		c.render(w, r, http.StatusOK, "requests", "Async requests", "requests", requestsData{Off: true})
		return
	}
	ctx, cancel := c.pageContext(r)
	defer cancel()
	rq, err := gw.get(ctx, r, r.PathValue("id"))
	if err != nil {
		c.fail(w, r, err)
		return
	}
	if err := c.mayRead(r, topicResource, rq.Topic, kmsg.ACLOperationRead); err != nil {
		// Not "not found": the principal learns the request exists, not
		// what it holds, as Kafka answers TOPIC_AUTHORIZATION_FAILED.
		c.fail(w, r, httpapi.Errorf(http.StatusForbidden, "%v", err))
		return
	}
	d := requestData{Request: rq, Lookback: c.cfg.Lookback != nil, ReadOnly: c.cfg.ReadOnly}
	if r.Header.Get("HX-Request") != "" {
		if !rq.Open() {
			// The page's poll swaps only the fields (the Cancel button
			// below them is never replaced while it may be clicked); the
			// poll that finds the request final replaces the whole detail.
			w.Header().Set("HX-Retarget", "#req-detail")
			w.Header().Set("HX-Reselect", "#req-detail")
		}
		c.renderFragment(w, r, "request", "req-detail", d)
		return
	}
	c.render(w, r, http.StatusOK, "request", "Request "+rq.ID, "requests", d)
}

// requestCancel serves POST requests/{id}/cancel: the gateway's DELETE
// (a cancellation event to the command's topic, then the request is
// cancelled). It needs Write on the request's topic and is refused in
// read-only mode; the gateway refuses a request already final (409).
func (c *Console) requestCancel(w http.ResponseWriter, r *http.Request) {
	gw := c.gateway()
	if gw == nil {
		c.fail(w, r, httpapi.Errorf(http.StatusNotFound, "console: the gateway is off: no request to cancel"))
		return
	}
	ctx, cancel := c.pageContext(r)
	defer cancel()
	rq, err := gw.get(ctx, r, r.PathValue("id"))
	if err != nil {
		c.fail(w, r, err)
		return
	}
	if err := c.mayWrite(r, topicResource, rq.Topic, kmsg.ACLOperationWrite); err != nil {
		c.fail(w, r, err)
		return
	}
	if rq, err = gw.cancel(ctx, r, rq.ID); err != nil {
		c.fail(w, r, err)
		return
	}
	c.cfg.Logger.Info("console: request cancelled", "request", rq.ID, "topic", rq.Topic, "principal", principal(r))
	c.renderFragment(w, r, "request", "req-detail", requestData{Request: rq, Lookback: c.cfg.Lookback != nil, ReadOnly: c.cfg.ReadOnly})
}
