package gateway_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/spoolmq/spool/gateway"
	"github.com/spoolmq/spool/internal/kafkatest"
)

// TestStoreList: Store.List on SQLite and PostgreSQL: newest first, by
// topic and state, paged with the cursor without a gap or a repeat, also
// among requests created in the same millisecond.
func TestStoreList(t *testing.T) {
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			s := st.open(t)
			ctx := context.Background()
			base := time.Now().UTC().Truncate(time.Millisecond)
			for i := range 10 {
				r := newReq(fmt.Sprintf("r%02d", i), "", base.Add(time.Hour))
				// Pairs share a millisecond: the id breaks the tie.
				r.CreatedAt = base.Add(time.Duration(i/2) * time.Millisecond)
				if i%3 == 0 {
					r.Topic = "other"
				}
				if _, _, err := s.Create(ctx, r); err != nil {
					t.Fatal(err)
				}
			}
			if _, ok, err := s.Transition(ctx, "r09", gateway.Transition{From: []gateway.State{gateway.Accepted}, To: gateway.Failed,
				Error: "boom", Partition: -1, Offset: -1, At: base}); err != nil || !ok {
				t.Fatal(ok, err)
			}
			ids := func(rs []*gateway.Request) string {
				out := ""
				for _, r := range rs {
					out += r.ID + " "
				}
				return out
			}
			all, err := s.List(ctx, gateway.ListQuery{})
			if err != nil {
				t.Fatal(err)
			}
			if got := ids(all); got != "r09 r08 r07 r06 r05 r04 r03 r02 r01 r00 " {
				t.Fatalf("newest first: %s", got)
			}
			var paged []*gateway.Request
			q := gateway.ListQuery{Limit: 3}
			for range 10 {
				page, err := s.List(ctx, q)
				if err != nil {
					t.Fatal(err)
				}
				paged = append(paged, page...)
				if len(page) < 3 {
					break
				}
				c, err := gateway.ParseListCursor(gateway.ListCursor{CreatedAt: page[2].CreatedAt, ID: page[2].ID}.String())
				if err != nil {
					t.Fatal(err)
				}
				q.Before = &c
			}
			if ids(paged) != ids(all) {
				t.Fatalf("pages of 3: %s, want %s", ids(paged), ids(all))
			}
			other, _ := s.List(ctx, gateway.ListQuery{Topic: "other"})
			if got := ids(other); got != "r09 r06 r03 r00 " {
				t.Fatalf("topic other: %s", got)
			}
			failed, _ := s.List(ctx, gateway.ListQuery{States: []gateway.State{gateway.Failed, gateway.Succeeded}})
			if got := ids(failed); got != "r09 " || failed[0].Error != "boom" {
				t.Fatalf("failed or succeeded: %s", got)
			}
			if _, err := gateway.ParseListCursor("not-a-cursor"); err == nil {
				t.Fatal("a malformed cursor parsed")
			}
		})
	}
}

type listBody struct {
	Requests []status `json:"requests"`
	Next     string   `json:"next"`
}

// TestListRequests: GET /api/requests lists recent requests with their
// status and callback, filters by status and topic, pages with next, and
// refuses bad parameters; with tokens, a caller sees the requests of the
// topics it may read and those it submitted.
func TestListRequests(t *testing.T) {
	kafkatest.Run(t, func(t *testing.T, addrs []string) {
		kafkatest.CreateTopic(t, addrs, "orders", 1)
		kafkatest.CreateTopic(t, addrs, "payments", 1)
		g := tokenGateway(t, addrs)
		admin := []string{"Authorization", "Bearer admin-secret"}
		o1 := submit(t, g, "orders", "", `{"n":1}`, "Authorization", "Bearer shop-secret")
		p1 := submit(t, g, "payments", "", `{"n":2}`, admin...)
		o2 := submit(t, g, "orders", "", `{"n":3}`, admin...)
		resp, b := call(t, "DELETE", g.URL+"/api/requests/"+o2.ID, "", admin...)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("cancel: %d %s", resp.StatusCode, b)
		}

		list := func(query string, hdr ...string) listBody {
			t.Helper()
			resp, b := call(t, "GET", g.URL+"/api/requests"+query, "", hdr...)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("GET /api/requests%s: %d %s", query, resp.StatusCode, b)
			}
			return decode[listBody](t, b)
		}
		got := list("", admin...)
		if len(got.Requests) != 3 || got.Requests[0].ID != o2.ID || got.Requests[1].ID != p1.ID || got.Requests[2].ID != o1.ID ||
			got.Requests[0].State != "cancelled" || got.Next != "" {
			t.Fatalf("admin's list: %+v", got)
		}
		if got := list("?status=cancelled", admin...); len(got.Requests) != 1 || got.Requests[0].ID != o2.ID {
			t.Fatalf("cancelled: %+v", got)
		}
		if got := list("?topic=orders&status=pending,cancelled", admin...); len(got.Requests) != 2 {
			t.Fatalf("orders pending or cancelled: %+v", got)
		}
		page := list("?limit=2", admin...)
		if len(page.Requests) != 2 || page.Next == "" {
			t.Fatalf("first page of 2: %+v", page)
		}
		if rest := list("?limit=2&before="+page.Next, admin...); len(rest.Requests) != 1 || rest.Requests[0].ID != o1.ID {
			t.Fatalf("second page: %+v", rest)
		}
		// shop reads orders; it sees both orders requests, not payments.
		if got := list("", "Authorization", "Bearer shop-secret"); len(got.Requests) != 2 || got.Requests[0].ID != o2.ID || got.Requests[1].ID != o1.ID {
			t.Fatalf("shop's list: %+v", got)
		}
		resp, b = call(t, "GET", g.URL+"/api/requests?topic=payments", "", "Authorization", "Bearer shop-secret")
		wantProblem(t, resp, b, 403, `no read scope for topic "payments"`)
		resp, b = call(t, "GET", g.URL+"/api/requests", "")
		wantProblem(t, resp, b, 401, "missing bearer token")
		for q, want := range map[string]string{
			"?status=done":     `status "done"`,
			"?limit=0":         `limit "0"`,
			"?limit=501":       `limit "501"`,
			"?before=!!":       "before",
			"?before=bm9wZQ":   "want the next cursor",
			"?order=oldest":    `unknown query parameter "order"`,
			"?status=pending,": "",
		} {
			resp, b := call(t, "GET", g.URL+"/api/requests"+q, "", admin...)
			if want == "" {
				if resp.StatusCode != http.StatusOK {
					t.Errorf("%s: %d %s", q, resp.StatusCode, b)
				}
				continue
			}
			if resp.StatusCode != http.StatusBadRequest {
				t.Errorf("%s: %d %s, want 400", q, resp.StatusCode, b)
				continue
			}
			wantProblem(t, resp, b, 400, want)
		}
	})
}
