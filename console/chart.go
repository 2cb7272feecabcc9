package console

import (
	"fmt"
	"html/template"
	"math"
	"strings"
	"time"
)

// chart geometry, in SVG user units; the SVG scales to its container.
const (
	chartW, chartH = 600.0, 140.0
	chartPad       = 4.0
)

// lineChart draws series as an inline SVG line chart with a title, the
// y-axis maximum, and the time span, or a "no data yet" note. It is
// server-rendered: no chart library runs in the browser, and the chart
// reads as text to a screen reader (role="img" with a label giving the
// last value of each series).
func lineChart(title string, series ...Series) template.HTML {
	var t0, t1 time.Time
	ymax := 0.0
	n := 0
	for _, s := range series {
		for _, p := range s.Points {
			if t0.IsZero() || p.T.Before(t0) {
				t0 = p.T
			}
			if p.T.After(t1) {
				t1 = p.T
			}
			ymax = math.Max(ymax, p.V)
			n++
		}
	}
	var b strings.Builder
	label := title
	for _, s := range series {
		if len(s.Points) > 0 {
			label += fmt.Sprintf("; %s now %s", s.Name, fmtValue(s.Points[len(s.Points)-1].V))
		}
	}
	fmt.Fprintf(&b, `<figure class="chart"><figcaption>%s</figcaption>`, template.HTMLEscapeString(title))
	if n < 2 {
		b.WriteString(`<p class="muted">No data yet: the console samples the cluster every few seconds.</p></figure>`)
		return template.HTML(b.String())
	}
	if ymax == 0 {
		ymax = 1
	}
	span := t1.Sub(t0).Seconds()
	if span <= 0 {
		span = 1
	}
	fmt.Fprintf(&b, `<svg viewBox="0 0 %g %g" role="img" aria-label="%s" preserveAspectRatio="none">`,
		chartW, chartH, template.HTMLEscapeString(label))
	for i, s := range series {
		var pts strings.Builder
		for _, p := range s.Points {
			x := chartPad + (chartW-2*chartPad)*p.T.Sub(t0).Seconds()/span
			y := chartH - chartPad - (chartH-2*chartPad)*p.V/ymax
			fmt.Fprintf(&pts, "%.1f,%.1f ", x, y)
		}
		fmt.Fprintf(&b, `<polyline class="s%d" fill="none" points="%s"><title>%s</title></polyline>`,
			i%4, strings.TrimSpace(pts.String()), template.HTMLEscapeString(s.Name))
	}
	b.WriteString(`</svg><div class="axis">`)
	fmt.Fprintf(&b, `<span>max %s</span><span>last %s</span>`, fmtValue(ymax), humanSpan(t1.Sub(t0)))
	for i, s := range series {
		fmt.Fprintf(&b, `<span class="key s%d">%s</span>`, i%4, template.HTMLEscapeString(s.Name))
	}
	b.WriteString(`</div></figure>`)
	return template.HTML(b.String())
}

func fmtValue(v float64) string {
	switch {
	case v >= 100 || v == math.Trunc(v):
		return humanCount(int64(math.Round(v)))
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

func humanSpan(d time.Duration) string {
	if d < time.Minute {
		return fmt.Sprintf("%ds", int(d.Seconds()))
	}
	return fmt.Sprintf("%dm", int(d.Minutes()))
}
