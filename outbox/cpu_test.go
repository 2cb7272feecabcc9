package outbox_test

import (
	"database/sql"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// cpuMeter measures CPU time, which depends on the machine's load far less
// than wall time does: this process's (relay, broker, and SQLite, which
// runs in-process), and the PostgreSQL server's (its postmaster and every
// backend, reaped ones included).
type cpuMeter struct {
	postmaster int // 0: no server to measure
	self, db   time.Duration
}

// newCPUMeter returns a meter for this process and, when db is a
// PostgreSQL connection to a local server, for that server.
func newCPUMeter(b testing.TB, db *sql.DB, postgres bool) *cpuMeter {
	m := &cpuMeter{}
	if postgres {
		var backend int
		if err := db.QueryRow("SELECT pg_backend_pid()").Scan(&backend); err != nil {
			b.Fatal(err)
		}
		m.postmaster = procStat(backend).ppid
	}
	return m
}

func (m *cpuMeter) start() { m.self, m.db = selfCPU(), m.serverCPU() }

// report adds cpu-ns/op (this process) and, with a server, db-cpu-ns/op
// per event.
func (m *cpuMeter) report(b *testing.B, events int) {
	b.ReportMetric(float64(selfCPU()-m.self)/float64(events), "cpu-ns/op")
	if m.postmaster != 0 {
		b.ReportMetric(float64(m.serverCPU()-m.db)/float64(events), "db-cpu-ns/op")
	}
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// serverCPU is the postmaster's CPU time with its reaped children's, plus
// the live children's.
func (m *cpuMeter) serverCPU() time.Duration {
	if m.postmaster == 0 {
		return 0
	}
	pm := procStat(m.postmaster)
	total := pm.self + pm.children
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		pid, err := strconv.Atoi(filepath.Base(d))
		if err != nil {
			continue
		}
		if s := procStat(pid); s.ppid == m.postmaster {
			total += s.self
		}
	}
	return total
}

type stat struct {
	ppid           int
	self, children time.Duration
}

// procStat reads /proc/pid/stat: ppid (field 4), utime, stime, cutime and
// cstime (fields 14-17, in clock ticks of 1/100 s on Linux).
func procStat(pid int) stat {
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return stat{}
	}
	s := string(raw)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:]) // f[0] is field 3
	if len(f) < 15 {
		return stat{}
	}
	n := func(i int) int64 { v, _ := strconv.ParseInt(f[i-3], 10, 64); return v }
	const tick = 10 * time.Millisecond
	return stat{ppid: int(n(4)), self: time.Duration(n(14)+n(15)) * tick, children: time.Duration(n(16)+n(17)) * tick}
}
