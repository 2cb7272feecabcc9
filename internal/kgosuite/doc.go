// Package kgosuite runs franz-go's own pkg/kgo integration tests against a
// `spool serve` process: the client library's authors' idea of what a
// Kafka broker must do, run unchanged (from the module cache, at the
// franz-go version in go.mod) with KGO_SEEDS pointing at Spool and
// KGO_TEST_RF=1. Tests that need what Spool does not have yet are skipped
// by name, each with its reason (skipped); every other test must pass.
//
// The run takes about a minute and a half on two cores, so it runs only
// when SPOOL_KGO_SUITE=1 (.ci/run sets it):
//
//	SPOOL_KGO_SUITE=1 go test ./internal/kgosuite -v
//
// KGO_TEST_RECORDS (default here 20000; franz-go's own default is 500000)
// bounds the records its produce/consume tests move.
package kgosuite
