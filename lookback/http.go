package lookback

import (
	_ "embed"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/spoolmq/spool/internal/httpapi"
)

//go:embed openapi.json
var openAPI []byte

// routes are the API's routes. openapi.json describes each (a test checks).
func (s *Service) routes() map[string]http.HandlerFunc {
	return map[string]http.HandlerFunc{
		"GET /api/lookback/openapi.json": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Write(openAPI)
		},
		"GET /api/lookback/events":                              s.apiSearch,
		"GET /api/lookback/events/{topic}/{partition}/{offset}": s.apiShow,
		"POST /api/lookback/erasures":                           s.apiErase,
		"GET /api/lookback/stats":                               s.apiStats,
		"GET /api/lookback/flows/{id}":                          s.apiFlow,
		"POST /api/lookback/replays":                            s.apiReplayStart,
		"GET /api/lookback/replays":                             s.apiReplayList,
		"GET /api/lookback/replays/{id}":                        s.apiReplayGet,
		"POST /api/lookback/replays/{id}/cancel":                s.apiReplayCancel,
		"GET /api/lookback/rules":                               s.apiRules,
		"POST /api/lookback/verify":                             s.apiVerify,
	}
}

// handler serves the HTTP API under /api/lookback/ (docs/lookback.md and
// openapi.json describe it).
func (s *Service) handler() http.Handler {
	mux := http.NewServeMux()
	for pattern, h := range s.routes() {
		mux.HandleFunc(pattern, h)
	}
	mux.HandleFunc("/api/lookback/", func(w http.ResponseWriter, r *http.Request) {
		httpapi.WriteProblem(w, http.StatusNotFound, "no such lookback endpoint: "+r.Method+" "+r.URL.Path+"; see /api/lookback/openapi.json")
	})
	return s.authenticate(mux)
}

// badRequest turns store and parse errors into HTTP errors.
func apiError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, ErrBadQuery):
		httpapi.WriteProblem(w, http.StatusBadRequest, strings.TrimPrefix(err.Error(), "lookback: bad query: "))
	case errors.Is(err, ErrNotFound):
		httpapi.WriteProblem(w, http.StatusNotFound, strings.TrimPrefix(err.Error(), "lookback: not found: "))
	default:
		httpapi.WriteError(w, err)
	}
}

// SearchResponse is the body of GET /api/lookback/events.
type SearchResponse struct {
	Events []*Event `json:"events"`
	// Next is the cursor of the next page; absent on the last page.
	Next string `json:"next,omitempty"`
	// Scanned counts the events the payload filter examined.
	Scanned int `json:"scanned,omitempty"`
}

var searchParams = map[string]bool{"limit": true, "cursor": true, "order": true}

func (s *Service) apiSearch(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	for name := range v {
		if !searchParams[name] && !isFilterParam(name) {
			apiError(w, errors.Join(ErrBadQuery, errors.New("unknown query parameter "+strconv.Quote(name)+
				"; the filters are "+strings.Join(filterParams, ", ")+", with limit, cursor and order")))
			return
		}
	}
	q, err := FilterFromValues(v).Query(s.cfg.Now())
	if err != nil {
		apiError(w, err)
		return
	}
	if q.Limit, err = ParseLimit(v.Get("limit")); err != nil {
		apiError(w, err)
		return
	}
	if q.Oldest, err = ParseOrder(v.Get("order")); err != nil {
		apiError(w, err)
		return
	}
	q.Cursor = v.Get("cursor")
	if q.Topic != "" {
		if err := s.mayTopic(r, q.Topic, kmsg.ACLOperationRead); err != nil {
			httpapi.WriteError(w, err)
			return
		}
	}
	p, err := s.cfg.Store.Search(r.Context(), q)
	if err != nil {
		s.cfg.Logger.Warn("lookback: search failed", "err", err)
		apiError(w, err)
		return
	}
	// Events of topics the principal may not Read are left out; the page
	// may then hold fewer than limit, and Next still continues after it. A
	// page left empty is followed by the next ones (up to 10), so a search
	// does not answer a run of empty pages.
	p.Events = s.readableEvents(r, p.Events)
	for n := 0; len(p.Events) == 0 && p.Next != "" && s.cfg.Authorizer != nil && n < 10; n++ {
		q.Cursor = p.Next
		more, err := s.cfg.Store.Search(r.Context(), q)
		if err != nil {
			apiError(w, err)
			return
		}
		p.Events, p.Next, p.Scanned = s.readableEvents(r, more.Events), more.Next, p.Scanned+more.Scanned
	}
	if p.Events == nil {
		p.Events = []*Event{}
	}
	httpapi.WriteJSON(w, http.StatusOK, SearchResponse{Events: p.Events, Next: p.Next, Scanned: p.Scanned})
}

func isFilterParam(name string) bool {
	for _, p := range filterParams {
		if p == name {
			return true
		}
	}
	return false
}

func (s *Service) apiShow(w http.ResponseWriter, r *http.Request) {
	p, err1 := strconv.ParseInt(r.PathValue("partition"), 10, 32)
	o, err2 := strconv.ParseInt(r.PathValue("offset"), 10, 64)
	if err1 != nil || err2 != nil || p < 0 || o < 0 {
		httpapi.WriteProblem(w, http.StatusBadRequest, "want /api/lookback/events/TOPIC/PARTITION/OFFSET with a partition and offset that are non-negative numbers")
		return
	}
	if err := s.mayTopic(r, r.PathValue("topic"), kmsg.ACLOperationRead); err != nil {
		httpapi.WriteError(w, err)
		return
	}
	e, err := s.cfg.Store.Get(r.Context(), r.PathValue("topic"), int32(p), o)
	if err != nil {
		apiError(w, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, e)
}

// EraseRequest is the body of POST /api/lookback/erasures.
type EraseRequest struct {
	Key   string `json:"key"`
	Topic string `json:"topic,omitempty"`
}

// EraseResponse answers POST /api/lookback/erasures.
type EraseResponse struct {
	Erased int64 `json:"erased"`
}

func (s *Service) apiErase(w http.ResponseWriter, r *http.Request) {
	var req EraseRequest
	if err := httpapi.DecodeJSON(w, r, 1<<20, &req); err != nil {
		httpapi.WriteError(w, err)
		return
	}
	if req.Key == "" {
		httpapi.WriteProblem(w, http.StatusBadRequest, `an erasure needs a non-empty "key"`)
		return
	}
	if err := s.mayTopic(r, req.Topic, kmsg.ACLOperationDelete); err != nil {
		httpapi.WriteError(w, err)
		return
	}
	n, err := s.cfg.Store.Erase(r.Context(), []byte(req.Key), req.Topic)
	if err != nil {
		s.cfg.Logger.Error("lookback: erase failed", "err", err)
		apiError(w, err)
		return
	}
	s.cfg.Logger.Info("lookback: erased events", "events", n, "topic", req.Topic)
	httpapi.WriteJSON(w, http.StatusOK, EraseResponse{Erased: n})
}

// StatsResponse is the body of GET /api/lookback/stats.
type StatsResponse struct {
	Stats
	// IngestError is the store error ingestion is waiting out (a full
	// disk), if any.
	IngestError string `json:"ingest_error,omitempty"`
}

func (s *Service) apiStats(w http.ResponseWriter, r *http.Request) {
	if err := s.mayCluster(r); err != nil {
		httpapi.WriteError(w, err)
		return
	}
	st, err := s.cfg.Store.Stats(r.Context())
	if err != nil {
		apiError(w, err)
		return
	}
	resp := StatsResponse{Stats: st}
	if err := s.LastError(); err != nil {
		resp.IngestError = err.Error()
	}
	httpapi.WriteJSON(w, http.StatusOK, resp)
}

func (s *Service) apiFlow(w http.ResponseWriter, r *http.Request) {
	f, err := BuildFlow(r.Context(), s.cfg.Store, r.PathValue("id"))
	if err != nil {
		apiError(w, err)
		return
	}
	s.readableFlow(r, f)
	if len(f.Events) == 0 {
		httpapi.WriteProblem(w, http.StatusNotFound, "no archived event has correlation id "+strconv.Quote(f.CorrelationID))
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, f)
}
