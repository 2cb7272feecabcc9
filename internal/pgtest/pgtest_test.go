package pgtest_test

import (
	"context"
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

// TestPgBouncer: queries go through PgBouncer, and its pool mode holds:
// in transaction mode a second client connection is given the server
// connection the first one used (released after its statement); in session
// mode the first keeps it, so the second gets another.
func TestPgBouncer(t *testing.T) {
	srv := pgtest.Start(t)
	for _, mode := range []string{pgtest.Transaction, pgtest.Session} {
		t.Run(mode, func(t *testing.T) {
			db, err := sql.Open("pgx", pgtest.StartPgBouncer(t, srv, mode)+" default_query_exec_mode=simple_protocol")
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			ctx := context.Background()
			pid := func(c *sql.Conn) int {
				var p int
				if err := c.QueryRowContext(ctx, "SELECT pg_backend_pid()").Scan(&p); err != nil {
					t.Fatal(err)
				}
				return p
			}
			c1, err := db.Conn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer c1.Close()
			c2, err := db.Conn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer c2.Close()
			p1, p2 := pid(c1), pid(c2)
			if shared := p1 == p2; shared != (mode == pgtest.Transaction) {
				t.Fatalf("%s mode: client connections ran on server backends %d and %d", mode, p1, p2)
			}
		})
	}
}
