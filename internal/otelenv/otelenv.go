// Package otelenv builds the OpenTelemetry tracer provider of a spool
// command (serve, gateway, lookback serve, outbox relay) from the standard
// OTEL_* environment variables, so the binary is configured the way every
// OpenTelemetry SDK is.
//
// Tracing is off unless the environment asks for it: with neither
// OTEL_TRACES_EXPORTER nor an OTLP endpoint (OTEL_EXPORTER_OTLP_ENDPOINT,
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) set, or with OTEL_TRACES_EXPORTER=none
// or OTEL_SDK_DISABLED=true, Setup returns a Tracing whose Provider is nil
// and nothing is exported or even created. (The specification's default
// exporter is otlp; a broker that starts sending spans to localhost:4318
// because nothing was configured would surprise its users.)
//
// Otherwise the exporter comes from go.opentelemetry.io/contrib/exporters/autoexport
// (OTEL_TRACES_EXPORTER=otlp|console|none; OTEL_EXPORTER_OTLP_PROTOCOL or
// OTEL_EXPORTER_OTLP_TRACES_PROTOCOL = http/protobuf (default) or grpc), the
// OTLP exporters read their endpoint, headers, timeout, compression and
// certificates from OTEL_EXPORTER_OTLP_*, the SDK reads the sampler
// (OTEL_TRACES_SAMPLER, OTEL_TRACES_SAMPLER_ARG), the batch processor
// (OTEL_BSP_*) and span limits, and the resource takes OTEL_SERVICE_NAME
// and OTEL_RESOURCE_ATTRIBUTES over the command's defaults.
package otelenv

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"go.opentelemetry.io/contrib/exporters/autoexport"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"
)

// Tracing is a command's tracer provider and what it takes to flush it.
type Tracing struct {
	// Provider is nil when tracing is off: pass it to the configs and
	// options that take a TracerProvider (nil there means no spans).
	Provider trace.TracerProvider
	// Exporter names the exporter in use ("otlp (http/protobuf)",
	// "console"), "" when off.
	Exporter string
	// Service is the service.name spans are exported under (the
	// command's default, or OTEL_SERVICE_NAME's), "" when off.
	Service string

	sdk *sdktrace.TracerProvider
}

// Enabled reports whether the environment (lookup, as os.LookupEnv) asks for
// spans to be exported.
func Enabled(lookup func(string) (string, bool)) bool {
	get := func(k string) string { v, _ := lookup(k); return strings.TrimSpace(v) }
	if strings.EqualFold(get("OTEL_SDK_DISABLED"), "true") {
		return false
	}
	switch exp := get("OTEL_TRACES_EXPORTER"); exp {
	case "":
		return get("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
	default:
		return exp != "none"
	}
}

// Setup builds the tracer provider the environment describes for the
// command service (the default service.name, such as "spool" or
// "spool-gateway") at version. A malformed setting (an unknown exporter or
// protocol) is an error naming the variable. The SDK's own errors (an
// export that failed) go to logger, if not nil.
func Setup(ctx context.Context, service, version string, logger *slog.Logger) (*Tracing, error) {
	if !Enabled(os.LookupEnv) {
		return &Tracing{}, nil
	}
	exp, err := autoexport.NewSpanExporter(ctx)
	if err != nil {
		return nil, fmt.Errorf("otelenv: OTEL_TRACES_EXPORTER=%q, OTEL_EXPORTER_OTLP_PROTOCOL=%q: %w",
			os.Getenv("OTEL_TRACES_EXPORTER"), protocol(), err)
	}
	if autoexport.IsNoneSpanExporter(exp) {
		return &Tracing{}, nil
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(semconv.ServiceName(service), semconv.ServiceVersion(version)),
		resource.WithTelemetrySDK(),
		resource.WithHost(),
		resource.WithFromEnv(), // OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES: last, so they win
	)
	if err != nil && !errors.Is(err, resource.ErrPartialResource) && !errors.Is(err, resource.ErrSchemaURLConflict) {
		_ = exp.Shutdown(ctx)
		return nil, fmt.Errorf("otelenv: resource (OTEL_RESOURCE_ATTRIBUTES=%q): %w", os.Getenv("OTEL_RESOURCE_ATTRIBUTES"), err)
	}
	if logger != nil {
		otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
			logger.Warn("otel: tracing", "err", err)
		}))
	}
	sdk := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	name := os.Getenv("OTEL_TRACES_EXPORTER")
	if name == "" || name == "otlp" {
		name = "otlp (" + protocol() + ")"
	}
	svc, _ := res.Set().Value(semconv.ServiceNameKey)
	return &Tracing{Provider: sdk, Exporter: name, Service: svc.AsString(), sdk: sdk}, nil
}

// protocol is the OTLP protocol the exporter uses, as autoexport picks it.
func protocol() string {
	for _, k := range []string{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"} {
		if v := os.Getenv(k); v != "" {
			return v
		}
	}
	return "http/protobuf"
}

// Shutdown flushes the spans not yet exported and stops the exporter; call
// it after the components that make spans have closed. A nil or off
// Tracing does nothing.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if t == nil || t.sdk == nil {
		return nil
	}
	if err := t.sdk.Shutdown(ctx); err != nil {
		return fmt.Errorf("otelenv: flushing spans: %w", err)
	}
	return nil
}
