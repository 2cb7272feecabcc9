// Command kfakebroker runs franz-go's kfake, an independent in-process Kafka
// implementation, as a stand-alone single broker. It is the baseline that
// `spool bench` compares Spool against (scripts/bench-compare.sh); it is not
// part of the spool binary.
//
//	go run ./internal/tools/kfakebroker --listen 127.0.0.1:9192 --data /tmp/kf --sync-writes
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/twmb/franz-go/pkg/kfake"
)

func main() {
	var (
		listen     = flag.String("listen", "127.0.0.1:9192", "host:port to listen on (port 0 picks a free one)")
		partitions = flag.Int("partitions", 1, "partitions of auto-created topics")
		dataDir    = flag.String("data", "", "persist to this directory (default: in memory only)")
		syncWrites = flag.Bool("sync-writes", false, "fsync every produced batch (needs --data)")
		autoCreate = flag.Bool("auto-create-topics", true, "create topics on first use")
	)
	flag.Parse()
	if err := run(*listen, *partitions, *dataDir, *syncWrites, *autoCreate); err != nil {
		fmt.Fprintln(os.Stderr, "kfakebroker:", err)
		os.Exit(1)
	}
}

func run(listen string, partitions int, dataDir string, syncWrites, autoCreate bool) error {
	if syncWrites && dataDir == "" {
		return fmt.Errorf("--sync-writes needs --data")
	}
	host, portStr, err := net.SplitHostPort(listen)
	if err != nil {
		return fmt.Errorf("bad --listen %q: %w", listen, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return fmt.Errorf("bad --listen port %q", portStr)
	}
	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.Ports(port),
		kfake.DefaultNumPartitions(partitions),
		kfake.ListenFn(func(network, addr string) (net.Listener, error) {
			_, p, _ := net.SplitHostPort(addr)
			return net.Listen(network, net.JoinHostPort(host, p))
		}),
	}
	if autoCreate {
		opts = append(opts, kfake.AllowAutoTopicCreation())
	}
	if dataDir != "" {
		opts = append(opts, kfake.DataDir(dataDir))
	}
	if syncWrites {
		opts = append(opts, kfake.SyncWrites())
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return err
	}
	fmt.Printf("kfake listening on %s (data %q, sync writes %v)\n", c.ListenAddrs()[0], dataDir, syncWrites)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	<-sig
	c.Close()
	return nil
}
