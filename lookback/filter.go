package lookback

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// PathEq is a payload filter: the JSON value at Path (object keys from the
// top, e.g. ["data", "customer", "id"]) equals Value, a string or a number
// written as text ("42" matches both 42 and "42").
type PathEq struct {
	Path  []string
	Value string
}

var pathRE = regexp.MustCompile(`^[A-Za-z_$][A-Za-z0-9_$-]*(\.[A-Za-z_$0-9][A-Za-z0-9_$-]*)*$`)

// ParseWhere parses "PATH=VALUE", e.g. "data.customer.id=c-42". The path is
// dot-separated object keys of the JSON payload; a leading "$." is allowed.
func ParseWhere(s string) (*PathEq, error) {
	path, value, ok := strings.Cut(s, "=")
	path = strings.TrimPrefix(strings.TrimSpace(path), "$.")
	if !ok || !pathRE.MatchString(path) {
		return nil, fmt.Errorf("%w: where %q: want PATH=VALUE with PATH like data.customer.id", ErrBadQuery, s)
	}
	return &PathEq{Path: strings.Split(path, "."), Value: value}, nil
}

func (p *PathEq) String() string { return strings.Join(p.Path, ".") + "=" + p.Value }

// Match reports whether the JSON document doc has Value at Path.
func (p *PathEq) Match(doc []byte) bool {
	var v any
	dec := json.NewDecoder(strings.NewReader(string(doc)))
	dec.UseNumber()
	if dec.Decode(&v) != nil {
		return false
	}
	for _, k := range p.Path {
		m, ok := v.(map[string]any)
		if !ok {
			return false
		}
		if v, ok = m[k]; !ok {
			return false
		}
	}
	switch x := v.(type) {
	case string:
		return x == p.Value
	case json.Number:
		if x.String() == p.Value {
			return true
		}
		a, err1 := strconv.ParseFloat(x.String(), 64)
		b, err2 := strconv.ParseFloat(p.Value, 64)
		return err1 == nil && err2 == nil && a == b
	case bool:
		return strconv.FormatBool(x) == p.Value
	}
	return false
}
