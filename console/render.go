package console

import (
	"bytes"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/spoolmq/spool/internal/httpapi"
)

// errUnavailable is the answer before Start or after Close.
var errUnavailable = httpapi.Errorf(http.StatusServiceUnavailable, "console: not connected to Kafka")

// templates holds one template set per page: the layout and the partials
// (files whose name starts with "_") with the page's own file, which
// defines "content" and any fragments htmx fetches.
type templates struct {
	pages map[string]*template.Template
}

// parseTemplates parses templates/*.html: layout.html and _*.html are
// shared by every page; each other file is a page named after it.
func parseTemplates(base string) (*templates, error) {
	names, err := fs.Glob(assets, "templates/*.html")
	if err != nil {
		return nil, fmt.Errorf("console: templates: %w", err)
	}
	shared := []string{"templates/layout.html"}
	var pageFiles []string
	for _, n := range names {
		switch b := path.Base(n); {
		case b == "layout.html":
		case strings.HasPrefix(b, "_"):
			shared = append(shared, n)
		default:
			pageFiles = append(pageFiles, n)
		}
	}
	root, err := template.New("layout.html").Funcs(funcs(base)).ParseFS(assets, shared...)
	if err != nil {
		return nil, fmt.Errorf("console: templates: %w", err)
	}
	t := &templates{pages: map[string]*template.Template{}}
	for _, f := range pageFiles {
		clone, err := root.Clone()
		if err != nil {
			return nil, fmt.Errorf("console: templates: %w", err)
		}
		if _, err := clone.ParseFS(assets, f); err != nil {
			return nil, fmt.Errorf("console: templates: %w", err)
		}
		t.pages[strings.TrimSuffix(path.Base(f), ".html")] = clone
	}
	return t, nil
}

// funcs are the template functions every page may use.
func funcs(base string) template.FuncMap {
	return template.FuncMap{
		"base":  func() string { return base },
		"bytes": humanBytes,
		"num":   humanCount,
		"since": func(t time.Time) string { return humanAgo(time.Since(t)) },
		"rfc3339": func(t time.Time) string {
			if t.IsZero() {
				return ""
			}
			return t.UTC().Format(time.RFC3339Nano)
		},
		"chart": lineChart,
		// dead letters
		"groupTable": func(title, id string, rows []dlqGroup) dlqGroupTable { return dlqGroupTable{title, id, rows} },
		"inList":     func(list []string, v string) bool { return contains(list, v) },
		// topics
		"rate": fmtValue,
		"ints": joinInts,
		"pathEscape": func(s string) string {
			return strings.ReplaceAll(template.URLQueryEscaper(s), "+", "%20")
		},
		"lbDuration": lbDuration, "lbInt": lbInt, "lbIndent": lbIndent, "lbPercent": lbPercent,
		"lbOutcome": lbOutcome, "lbFilterText": lbFilterText,
		"sparkline": sparkline, "lagTime": lagTimeCell, "stateClass": groupStateClass, "resetModes": func() any { return resetModes },
		"reqAdd":   func(a, b int) int { return a + b },
		"msgCount": func(a, b int64) string { return humanCount(b - a) }, "msgInt": func(n int) int64 { return int64(n) },
		"msgPageSizes": func() []int { return []int{20, 50, 100, 500} },
	}
}

// view is what the layout receives: the page's own data is Data.
type view struct {
	Title     string
	Active    string // the nav path of the page
	Nav       []navItem
	ReadOnly  bool
	Principal string
	Data      any
}

// render writes the page name with its layout. A template error after the
// first byte cannot change the status, so the page is rendered to a buffer
// first.
func (c *Console) render(w http.ResponseWriter, r *http.Request, status int, name, title, active string, data any) {
	t := c.tmpl.pages[name]
	if t == nil {
		c.fail(w, r, fmt.Errorf("console: no page %q", name))
		return
	}
	v := view{Title: title, Active: active, Nav: c.navFor(r), ReadOnly: c.cfg.ReadOnly, Principal: c.principalName(r), Data: data}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout.html", v); err != nil {
		c.cfg.Logger.Error("console: render", "page", name, "err", err)
		httpapi.WriteProblem(w, http.StatusInternalServerError, "console: render "+name+": "+err.Error())
		return
	}
	writeHTML(w, status, buf.Bytes())
}

// renderFragment writes the template fragment of page name alone (an htmx
// swap, an SSE event).
func (c *Console) renderFragment(w http.ResponseWriter, r *http.Request, name, fragment string, data any) {
	b, err := c.fragment(name, fragment, data)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	writeHTML(w, http.StatusOK, b)
}

// fragment renders the template fragment of page name to bytes.
func (c *Console) fragment(name, fragment string, data any) ([]byte, error) {
	t := c.tmpl.pages[name]
	if t == nil {
		return nil, fmt.Errorf("console: no page %q", name)
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, fragment, data); err != nil {
		return nil, fmt.Errorf("console: render %s/%s: %w", name, fragment, err)
	}
	return buf.Bytes(), nil
}

func writeHTML(w http.ResponseWriter, status int, b []byte) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(b)
}

// fail answers err: an *httpapi.Error keeps its status, anything else is a
// 502 (the cluster refused or did not answer). A page load (a GET that is
// not an htmx request) gets the error page; an action or fragment gets
// application/problem+json, which the layout's script shows as an alert.
func (c *Console) fail(w http.ResponseWriter, r *http.Request, err error) {
	status := http.StatusBadGateway
	var he *httpapi.Error
	if errors.As(err, &he) {
		status = he.Status
	}
	if status >= 500 {
		c.cfg.Logger.Warn("console: request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	if r.Method == http.MethodGet && r.Header.Get("HX-Request") == "" && !wantsJSON(r) {
		t := c.tmpl.pages["error"]
		v := view{Title: http.StatusText(status), Nav: c.navFor(r), ReadOnly: c.cfg.ReadOnly, Principal: c.principalName(r),
			Data: map[string]any{"Status": status, "Detail": err.Error()}}
		var buf bytes.Buffer
		if t != nil && t.ExecuteTemplate(&buf, "layout.html", v) == nil {
			writeHTML(w, status, buf.Bytes())
			return
		}
	}
	httpapi.WriteProblem(w, status, err.Error())
}

func wantsJSON(r *http.Request) bool {
	a := r.Header.Get("Accept")
	return strings.Contains(a, "application/json") || strings.Contains(a, "application/problem+json")
}

func (c *Console) notFound(w http.ResponseWriter, r *http.Request) {
	c.fail(w, r, httpapi.Errorf(http.StatusNotFound, "console: no page %s", r.URL.Path))
}

// staticHandler serves the embedded static files (paths "static/...").
func staticHandler() http.Handler {
	fsrv := http.FileServerFS(assets)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		fsrv.ServeHTTP(w, r)
	})
}

// humanBytes formats n bytes as "1.5 MiB".
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatInt(n, 10) + " B"
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// humanCount formats n with thousands separators: 1234567 is "1,234,567".
func humanCount(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, ch := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(ch)
	}
	return b.String()
}

// humanAgo formats a duration in the past: "12s ago", "3m ago", "5h ago".
func humanAgo(d time.Duration) string {
	switch {
	case d < time.Second:
		return "now"
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh ago", int(d.Hours()))
	default:
		return fmt.Sprintf("%dd ago", int(d.Hours()/24))
	}
}
