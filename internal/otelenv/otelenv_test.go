package otelenv

import (
	"context"
	"strings"
	"testing"
)

func TestEnabled(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		want bool
	}{
		{nil, false}, // off by default: the spec's default otlp exporter is not started unasked
		{map[string]string{"OTEL_SERVICE_NAME": "spool"}, false},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, true},
		{map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}, true},
		{map[string]string{"OTEL_TRACES_EXPORTER": "otlp"}, true},
		{map[string]string{"OTEL_TRACES_EXPORTER": "console"}, true},
		{map[string]string{"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:4318"}, false},
		{map[string]string{"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"}, false},
		{map[string]string{"OTEL_SDK_DISABLED": "false", "OTEL_TRACES_EXPORTER": "otlp"}, true},
	} {
		lookup := func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok }
		if got := Enabled(lookup); got != tc.want {
			t.Errorf("Enabled(%v) = %v, want %v", tc.env, got, tc.want)
		}
	}
}

func TestSetup(t *testing.T) {
	ctx := context.Background()
	for _, k := range []string{"OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_SDK_DISABLED",
		"OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"} {
		t.Setenv(k, "")
	}
	tr, err := Setup(ctx, "spool", "test", nil)
	if err != nil || tr.Provider != nil || tr.Exporter != "" {
		t.Fatalf("nothing set: %+v %v, want tracing off", tr, err)
	}
	if err := tr.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown when off: %v", err)
	}

	t.Setenv("OTEL_TRACES_EXPORTER", "console")
	tr, err = Setup(ctx, "spool", "test", nil)
	if err != nil || tr.Provider == nil || tr.Exporter != "console" || tr.Service != "spool" {
		t.Fatalf("console: %+v %v", tr, err)
	}
	if err := tr.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}

	t.Setenv("OTEL_TRACES_EXPORTER", "otlp")
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
	t.Setenv("OTEL_SERVICE_NAME", "spool-eu1")
	tr, err = Setup(ctx, "spool", "test", nil)
	if err != nil || tr.Exporter != "otlp (grpc)" || tr.Service != "spool-eu1" {
		t.Fatalf("otlp grpc: %+v %v", tr, err)
	}
	_ = tr.Shutdown(ctx) // nothing listens: nothing to flush either

	// Malformed settings are errors that name the variable.
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")
	if _, err := Setup(ctx, "spool", "test", nil); err == nil || !strings.Contains(err.Error(), "OTEL_EXPORTER_OTLP_PROTOCOL") {
		t.Errorf("protocol http/json: %v, want an error naming OTEL_EXPORTER_OTLP_PROTOCOL", err)
	}
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "")
	t.Setenv("OTEL_TRACES_EXPORTER", "jaeger")
	if _, err := Setup(ctx, "spool", "test", nil); err == nil || !strings.Contains(err.Error(), "OTEL_TRACES_EXPORTER") {
		t.Errorf("exporter jaeger: %v, want an error naming OTEL_TRACES_EXPORTER", err)
	}
}
