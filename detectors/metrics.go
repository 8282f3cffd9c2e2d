package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
)

type metrics struct {
	detection     metric.Float64Histogram
	probeFailures metric.Int64Counter
	failovers     metric.Int64Counter
}

// newMetrics returns the detector's instruments; with addr set they are served for
// Prometheus at http://addr/metrics.
func newMetrics(ctx context.Context, addr string, log *slog.Logger) (*metrics, error) {
	var opts []sdkmetric.Option
	if addr != "" {
		exp, err := prometheus.New()
		if err != nil {
			return nil, err
		}
		opts = append(opts, sdkmetric.WithReader(exp))
	}
	meter := sdkmetric.NewMeterProvider(opts...).Meter("baton/detector")
	m := &metrics{}
	var err1, err2, err3 error
	m.detection, err1 = meter.Float64Histogram("baton_detection_latency", metric.WithUnit("s"),
		metric.WithDescription("time from the first sign of a primary's death to the failover's start"),
		metric.WithExplicitBucketBoundaries(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 10))
	m.probeFailures, err2 = meter.Int64Counter("baton_probe_failures", metric.WithDescription("failed probes of primaries"))
	m.failovers, err3 = meter.Int64Counter("baton_failovers_started", metric.WithDescription("unplanned failovers started"))
	if err := errors.Join(err1, err2, err3); err != nil {
		return nil, err
	}
	if addr != "" {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("detector.metrics_addr %s: %w", addr, err)
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.Handler())
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = srv.Serve(ln) }()
		go func() { <-ctx.Done(); _ = srv.Close() }()
		log.Info("metrics served", "addr", "http://"+addr+"/metrics")
	}
	return m, nil
}
