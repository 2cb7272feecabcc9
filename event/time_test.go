package event

import (
	"math/rand/v2"
	"testing"
	"time"
)

// checkParseUTC fails unless parseUTC(s) either declines s or yields
// exactly what time.Parse(time.RFC3339Nano, s) yields, and declines
// whatever time.Parse rejects.
func checkParseUTC(t *testing.T, s string) (fast bool) {
	t.Helper()
	got, ok := parseUTC(s)
	want, err := time.Parse(time.RFC3339Nano, s)
	switch {
	case ok && err != nil:
		t.Fatalf("parseUTC(%q) = %v, but time.Parse fails: %v", s, got, err)
	case ok && (got != want || got.Location() != want.Location()):
		t.Fatalf("parseUTC(%q) = %#v, time.Parse = %#v", s, got, want)
	}
	return ok
}

func TestParseUTCMatchesTimeParse(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		tm := time.Unix(r.Int64N(400*365*86400)-100*365*86400, r.Int64N(1e9)).UTC()
		switch r.IntN(3) {
		case 0:
			tm = tm.Truncate(time.Second) // no fraction
		case 1:
			tm = tm.Truncate(time.Millisecond) // trailing zeros trimmed
		}
		s := tm.Format(time.RFC3339Nano)
		if !checkParseUTC(t, s) {
			t.Fatalf("parseUTC declined %q, which Record writes", s)
		}
	}
	for _, s := range []string{
		"2024-02-29T00:00:00Z", "2023-02-29T00:00:00Z", "2100-02-29T00:00:00Z", "2000-02-29T23:59:59.999999999Z",
		"2024-04-31T00:00:00Z", "2024-13-01T00:00:00Z", "2024-00-01T00:00:00Z", "2024-01-00T00:00:00Z",
		"2024-01-01T24:00:00Z", "2024-01-01T23:60:00Z", "2024-01-01T23:59:60Z", "2024-01-01T23:59:59.Z",
		"2024-01-01T23:59:59.1234567890Z", "2024-01-01T23:59:59,5Z", "2024-01-01t23:59:59Z", "2024-01-01T23:59:59z",
		"2024-01-01T23:59:59+00:00", "2024-01-01T23:59:59.5+02:00", "2024-1-01T23:59:59Z", "+024-01-01T23:59:59Z",
		"2024-01-01T23:59:5xZ", "0000-01-01T00:00:00Z", "9999-12-31T23:59:59.999999999Z", "", "Z",
	} {
		checkParseUTC(t, s)
	}
}

func FuzzParseUTC(f *testing.F) {
	f.Add("2024-02-29T12:34:56.789Z")
	f.Add("2024-01-01T23:59:60Z")
	f.Fuzz(func(t *testing.T, s string) { checkParseUTC(t, s) })
}
