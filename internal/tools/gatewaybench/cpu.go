package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// cpuMeter measures the CPU time the server process (-server-pid, from
// /proc) and this load generator use over the measured window: CPU per
// request does not depend on what else the machine runs, unlike requests
// per second.
type cpuMeter struct {
	server, client [2]time.Duration // at the start and at stop
	stopped        bool
}

// clockTick is the kernel's USER_HZ, the unit of /proc/<pid>/stat times.
const clockTick = 100

// startCPU waits until at (the end of the warm-up) in the background and
// takes the first reading then.
func startCPU(at time.Time) *cpuMeter {
	m := &cpuMeter{}
	m.server[0], m.client[0] = procCPU(serverPID), selfCPU()
	go func() {
		time.Sleep(time.Until(at))
		m.server[0], m.client[0] = procCPU(serverPID), selfCPU()
	}()
	return m
}

func (m *cpuMeter) stop() {
	if !m.stopped {
		m.server[1], m.client[1] = procCPU(serverPID), selfCPU()
		m.stopped = true
	}
}

// print reports the CPU per request; client names what the load
// generator's process runs besides the HTTP client.
func (m *cpuMeter) print(n int64, client string) {
	m.stop()
	if n == 0 {
		return
	}
	per := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(n) }
	if serverPID > 0 {
		fmt.Printf("cpu per request: server %.1f µs, load generator (%s) %.1f µs\n",
			per(m.server[1]-m.server[0]), client, per(m.client[1]-m.client[0]))
	} else {
		fmt.Printf("cpu per request: load generator (%s) %.1f µs (pass -server-pid for the server's)\n", client, per(m.client[1]-m.client[0]))
	}
}

// procCPU is the user+system time of process pid, 0 if unknown.
func procCPU(pid int) time.Duration {
	if pid <= 0 {
		return 0
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// The command name (field 2) is in parentheses and may hold spaces.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / clockTick
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
