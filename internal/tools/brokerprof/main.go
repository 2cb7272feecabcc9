// Command brokerprof runs the Spool broker with net/http/pprof enabled, to
// profile it under `spool bench` load:
//
//	go run ./internal/tools/brokerprof --data /var/tmp/prof --listen 127.0.0.1:19092 --pprof 127.0.0.1:6060
//	go tool pprof -seconds 20 http://127.0.0.1:6060/debug/pprof/profile
//
// Mutex and block profiling are on (--profile-rate), so
// /debug/pprof/mutex and /debug/pprof/block show where requests wait.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	_ "net/http/pprof" // the profiling endpoints are the point of this tool
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"

	"github.com/spoolmq/spool/broker"
	"github.com/spoolmq/spool/storage"
)

func main() {
	var (
		data   = flag.String("data", "./spool-prof-data", "data directory")
		listen = flag.String("listen", "127.0.0.1:19092", "Kafka listener")
		pprof  = flag.String("pprof", "127.0.0.1:6060", "pprof HTTP listener")
		fsync  = flag.String("fsync", "always", "always, interval or never")
		parts  = flag.Int("default-partitions", 1, "partitions of auto-created topics")
		rate   = flag.Int("profile-rate", 1000, "block profile rate (ns) and mutex profile fraction")
	)
	flag.Parse()
	if err := run(*data, *listen, *pprof, *fsync, int32(*parts), *rate); err != nil {
		fmt.Fprintln(os.Stderr, "brokerprof:", err)
		os.Exit(1)
	}
}

func run(data, listen, pprofAddr, fsync string, parts int32, rate int) error {
	mode, err := storage.ParseFsyncMode(fsync)
	if err != nil {
		return err
	}
	runtime.SetBlockProfileRate(rate)
	runtime.SetMutexProfileFraction(rate)
	cfg := broker.Config{
		DataDir: data, Listen: listen, Fsync: mode, DefaultPartitions: parts,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}.WithDefaults()
	b, err := broker.New(cfg)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := b.Start(ctx); err != nil {
		return err
	}
	srv := &http.Server{Addr: pprofAddr, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.ListenAndServe() }()
	fmt.Printf("spool broker on %s, pprof on http://%s/debug/pprof/\n", b.Addr(), pprofAddr)
	<-ctx.Done()
	_ = srv.Close()
	return b.Close()
}
