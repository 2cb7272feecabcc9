package pgtest

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/spoolmq/spool/internal/freeport"
	"github.com/spoolmq/spool/internal/testenv"
)

// Pool modes of PgBouncer (its pool_mode setting).
const (
	Session     = "session"     // a server connection per client connection
	Transaction = "transaction" // a server connection per transaction (or statement outside one)
	Statement   = "statement"   // a server connection per statement; no multi-statement transactions
)

// StartPgBouncer starts PgBouncer in front of the server whose DSN
// (from Start) is dsn, in pool mode mode, and returns a DSN in the same
// form ("host=127.0.0.1 port=N user=postgres dbname=postgres ...") that
// reaches any database of that server through it. PgBouncer listens on a
// reserved loopback port (internal/freeport), trusts every client named
// in its userlist (postgres), runs in the foreground as a child process
// (as the postgres user when the test runs as root: it refuses root), is
// stopped by t.Cleanup, and its log goes to the test log if t failed.
//
// pgx caches prepared statements per connection by default, which a
// pooler in transaction or statement mode breaks (the next statement may
// run on another server connection); add
// "default_query_exec_mode=simple_protocol" or "=exec" to the returned
// DSN for those modes.
func StartPgBouncer(t testing.TB, dsn, mode string) string {
	t.Helper()
	bin := find("pgbouncer")
	if bin == "" {
		testenv.Missing(t, "pgtest: pgbouncer not found; install it (apt-get install pgbouncer; .ci/run does) to run this test")
	}
	switch mode {
	case Session, Transaction, Statement:
	default:
		t.Fatalf("pgtest: pool mode %q; want session, transaction or statement", mode)
	}
	up, err := pgconn.ParseConfig(dsn)
	if err != nil {
		t.Fatalf("pgtest: parse %q: %v", dsn, err)
	}
	cred := serverUser(t)
	dir := ownedTempDir(t, cred)
	port := freeport.Port(t)
	ini := fmt.Sprintf(`[databases]
* = host=%s port=%d user=%s

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = %d
unix_socket_dir =
auth_type = trust
auth_file = %s
pool_mode = %s
max_client_conn = 500
default_pool_size = 40
admin_users = postgres
pidfile = %s
`, up.Host, up.Port, up.User, port, filepath.Join(dir, "userlist.txt"), mode, filepath.Join(dir, "pgbouncer.pid"))
	write := func(name, text string) {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		if cred != nil {
			os.Chown(p, int(cred.Uid), int(cred.Gid))
		}
	}
	write("pgbouncer.ini", ini)
	write("userlist.txt", fmt.Sprintf("%q \"\"\n", up.User))

	cmd := exec.Command(bin, filepath.Join(dir, "pgbouncer.ini"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Setpgid: true}
	exited, readLog := startServer(t, cmd, filepath.Join(dir, "log"), "pgbouncer", syscall.SIGTERM, 10*time.Second) // SIGTERM: immediate shutdown

	out := fmt.Sprintf("host=127.0.0.1 port=%d user=%s dbname=%s sslmode=disable", port, up.User, up.Database)
	waitReady(t, out+" default_query_exec_mode=simple_protocol", exited, "pgbouncer", readLog)
	return out
}

// waitReady pings dsn until it answers, the process behind it exits
// (exited closed) or 30s pass.
func waitReady(t testing.TB, dsn string, exited <-chan struct{}, what string, readLog func() string) {
	t.Helper()
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err = db.PingContext(ctx)
		cancel()
		if err == nil {
			return
		}
		select {
		case <-exited:
			t.Fatalf("pgtest: %s exited: %s", what, readLog())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("pgtest: %s not ready after 30s: %v\n%s", what, err, readLog())
		}
		time.Sleep(20 * time.Millisecond) // polling the server's readiness, not synchronising
	}
}

// ownedTempDir returns a new temporary directory owned by cred's user
// (nil: the current one), removed at cleanup. t.TempDir's directories are
// private to the test's user.
func ownedTempDir(t testing.TB, cred *syscall.Credential) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "pgtest")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}
