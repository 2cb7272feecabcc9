package pgtest_test

import (
	"database/sql"
	"testing"

	"github.com/spoolmq/spool/internal/pgtest"
)

func TestStart(t *testing.T) {
	db, err := sql.Open("pgx", pgtest.Start(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow("SELECT 40 + 2").Scan(&n); err != nil || n != 42 {
		t.Fatalf("query: %d, %v", n, err)
	}
}
