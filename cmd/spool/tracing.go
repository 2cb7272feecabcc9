package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/spoolmq/spool/internal/otelenv"
)

// startTracing sets up the command's OpenTelemetry tracer provider from the
// OTEL_* environment (docs/tracing.md); off unless the environment asks
// for it. stop flushes the spans not yet exported: call it after every
// component that makes spans has closed.
func startTracing(ctx context.Context, service string, logger *slog.Logger, out, errOut io.Writer) (tr *otelenv.Tracing, stop func(), err error) {
	tr, err = otelenv.Setup(ctx, service, buildVersion(), logger)
	if err != nil {
		return nil, nil, err
	}
	if tr.Provider != nil {
		fmt.Fprintf(out, "spool: tracing: exporting spans as service %s with %s\n", tr.Service, tr.Exporter)
	}
	return tr, func() {
		fctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := tr.Shutdown(fctx); err != nil {
			fmt.Fprintln(errOut, "spool:", err)
		}
	}, nil
}
