//go:build race

package abuse_test

// raceEnabled: the race detector multiplies a process's memory (shadow
// memory), so TestAbuse reports the broker's memory without bounding it.
const raceEnabled = true
