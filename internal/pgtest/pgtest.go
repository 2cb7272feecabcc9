// Package pgtest starts a throwaway PostgreSQL server for a test: initdb in a
// temporary directory, postgres listening only on a unix socket in that
// directory, stopped and removed by t.Cleanup. Tests skip with a clear
// message when the server binaries are not installed.
//
// When the test runs as root (PostgreSQL refuses to), the server runs as the
// "postgres" user if one exists.
//
// StartPgBouncer puts PgBouncer in front of such a server, in a pool mode
// of the test's choosing (transaction mode, as production poolers run).
package pgtest

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"

	"github.com/spoolmq/spool/internal/testenv"
)

// binDirs are searched for initdb, postgres and pgbouncer, in order.
var binDirs = []string{"/usr/local/bin", "/usr/sbin", "/usr/lib/postgresql/17/bin", "/usr/lib/postgresql/16/bin",
	"/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/14/bin"}

func find(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, d := range binDirs {
		p := filepath.Join(d, name)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// Start starts a server and returns a database/sql DSN for the pgx driver
// (sql.Open("pgx", dsn)) to its "postgres" database.
func Start(t testing.TB) string {
	t.Helper()
	initdb, postgres := find("initdb"), find("postgres")
	if initdb == "" || postgres == "" {
		testenv.Missing(t, "pgtest: PostgreSQL server binaries (initdb, postgres) not found; install postgresql (.ci/run does) to run this test")
	}
	cred := serverUser(t)
	dir := ownedTempDir(t, cred)
	data := filepath.Join(dir, "data")
	run := func(name string, args ...string) *exec.Cmd {
		c := exec.Command(name, args...)
		c.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Setpgid: true}
		c.Env = append(os.Environ(), "LC_ALL=C")
		return c
	}
	if out, err := run(initdb, "-D", data, "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8").CombinedOutput(); err != nil {
		t.Fatalf("pgtest: initdb: %v\n%s", err, out)
	}
	srv := run(postgres, "-D", data, "-k", dir, "-c", "listen_addresses=", "-c", "fsync=off",
		"-c", "synchronous_commit=off", "-c", "full_page_writes=off", "-p", "5432")
	exited, readLog := startServer(t, srv, filepath.Join(dir, "log"), "postgres", syscall.SIGINT, 20*time.Second) // SIGINT: fast shutdown
	dsn := fmt.Sprintf("host=%s port=5432 user=postgres dbname=postgres sslmode=disable", dir)
	waitReady(t, dsn, exited, "postgres", readLog)
	return dsn
}

// startServer starts cmd (a server) with its output in the file logPath,
// and at t's cleanup stops it with the signal stop, killing it after
// grace, then shows the log if t failed. It returns a channel closed when
// the process exits and a reader of its log.
func startServer(t testing.TB, cmd *exec.Cmd, logPath, what string, stop os.Signal, grace time.Duration) (<-chan struct{}, func() string) {
	t.Helper()
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("pgtest: start %s: %v", what, err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	readLog := func() string { b, _ := os.ReadFile(logPath); return string(b) }
	t.Cleanup(func() {
		cmd.Process.Signal(stop)
		select {
		case <-exited:
		case <-time.After(grace):
			cmd.Process.Kill()
			<-exited
		}
		logf.Close()
		if t.Failed() {
			t.Logf("pgtest: %s log:\n%s", what, readLog())
		}
	})
	return exited, readLog
}

// serverUser returns the credential servers run with: nil (the test's own
// user), or the postgres user's when the test runs as root (PostgreSQL and
// PgBouncer refuse root). It stops t with Missing when there is none.
func serverUser(t testing.TB) *syscall.Credential {
	t.Helper()
	if os.Geteuid() != 0 {
		return nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		testenv.Missing(t, "pgtest: running as root and there is no postgres user to run the server as (the Debian postgresql package creates it)")
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
}
