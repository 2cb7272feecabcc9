package httpapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

type body struct {
	Name string `json:"name"`
	N    int    `json:"n"`
}

func TestDecodeJSON(t *testing.T) {
	for _, tc := range []struct {
		name, ct, body string
		status         int // 0: decoded
	}{
		{"ok", "application/json", `{"name":"a","n":1}`, 0},
		{"no content type", "", `{"name":"a"}`, 0},
		{"suffix", "application/cloudevents+json; charset=utf-8", `{"name":"a"}`, 0},
		{"wrong type", "text/plain", `{"name":"a"}`, 415},
		{"too big", "application/json", `{"name":"` + strings.Repeat("x", 100) + `"}`, 413},
		{"empty", "application/json", ``, 400},
		{"syntax", "application/json", `{"name":`, 400},
		{"type", "application/json", `{"n":"x"}`, 400},
		{"unknown field", "application/json", `{"other":1}`, 400},
		{"trailing", "application/json", `{"n":1} {}`, 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/", strings.NewReader(tc.body))
			if tc.ct != "" {
				r.Header.Set("Content-Type", tc.ct)
			}
			w := httptest.NewRecorder()
			var v body
			err := DecodeJSON(w, r, 64, &v)
			if tc.status == 0 {
				if err != nil || v.Name != "a" {
					t.Fatalf("DecodeJSON = %v, %+v", err, v)
				}
				return
			}
			var he *Error
			if !errors.As(err, &he) || he.Status != tc.status || he.Detail == "" {
				t.Fatalf("DecodeJSON = %#v, want status %d with a detail", err, tc.status)
			}
		})
	}
}

func TestWriteError(t *testing.T) {
	w := httptest.NewRecorder()
	WriteError(w, &Error{Status: 503, Detail: "broker unreachable", RetryAfter: 1500 * time.Millisecond})
	if w.Code != 503 || w.Header().Get("Content-Type") != ProblemType || w.Header().Get("Retry-After") != "2" {
		t.Fatalf("got %d %v", w.Code, w.Header())
	}
	var p Problem
	if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil || p.Status != 503 || p.Detail != "broker unreachable" || p.Title != http.StatusText(503) {
		t.Fatalf("body %s: %v", w.Body, err)
	}

	w = httptest.NewRecorder()
	WriteError(w, errors.New("secret internal path /var/x"))
	if w.Code != 500 || strings.Contains(w.Body.String(), "/var/x") {
		t.Fatalf("unexpected error leaked or wrong code: %d %s", w.Code, w.Body)
	}
}
