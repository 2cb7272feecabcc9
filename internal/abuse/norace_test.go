//go:build !race

package abuse_test

const raceEnabled = false
