// Package telemetry sets up OpenTelemetry for Baton's processes: traces (a span per
// workflow and activity, through Temporal's tracing interceptor) exported over OTLP, and
// metrics served for Prometheus. Both are off by default.
package telemetry

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
	"go.temporal.io/sdk/contrib/opentelemetry"
	"go.temporal.io/sdk/interceptor"
	"google.golang.org/grpc/credentials"

	"github.com/baton-db/baton/internal/version"
)

// Config chooses the exporters.
type Config struct {
	// Traces is "none" (default) or "otlp".
	Traces       string
	OTLPEndpoint string
	// OTLPTLS, when set, encrypts the export; nil sends it in clear text.
	OTLPTLS *tls.Config
	// PrometheusAddr, if set, serves /metrics there.
	PrometheusAddr string
}

// Telemetry holds the providers and what to shut down.
type Telemetry struct {
	Tracer   trace.TracerProvider
	Meter    metric.MeterProvider
	shutdown []func(context.Context) error
	ready    atomic.Pointer[func(context.Context) error]
}

// SetReady sets what /readyz checks: nil error means ready. Until it is set, /readyz
// answers 503 ("starting").
func (t *Telemetry) SetReady(check func(context.Context) error) { t.ready.Store(&check) }

// serveReady answers /readyz: 200 when the process's check passes within 2 s, 503 with the
// reason otherwise. /healthz answers 200 while the process serves at all.
func (t *Telemetry) serveReady(w http.ResponseWriter, r *http.Request) {
	check := t.ready.Load()
	if check == nil {
		http.Error(w, "starting", http.StatusServiceUnavailable)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := (*check)(ctx); err != nil {
		http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	_, _ = io.WriteString(w, "ready\n")
}

// Setup builds the providers for service (worker, detector, baton).
func Setup(ctx context.Context, c Config, service string, log *slog.Logger) (*Telemetry, error) {
	t := &Telemetry{Tracer: tracenoop.NewTracerProvider(), Meter: noop.NewMeterProvider()}
	res := resource.NewSchemaless(semconv.ServiceName("baton-" + service))
	switch c.Traces {
	case "", "none":
	case "otlp":
		sec := otlptracegrpc.WithInsecure()
		if c.OTLPTLS != nil {
			sec = otlptracegrpc.WithTLSCredentials(credentials.NewTLS(c.OTLPTLS))
		}
		exp, err := otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(c.OTLPEndpoint), sec)
		if err != nil {
			return nil, fmt.Errorf("telemetry.otlp_endpoint %s: %w", c.OTLPEndpoint, err)
		}
		tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
		t.Tracer, t.shutdown = tp, append(t.shutdown, tp.Shutdown)
	default:
		return nil, fmt.Errorf("telemetry.traces: %q is not none or otlp", c.Traces)
	}
	if c.PrometheusAddr != "" {
		exp, err := prometheus.New()
		if err != nil {
			return nil, err
		}
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp), sdkmetric.WithResource(res))
		t.Meter, t.shutdown = mp, append(t.shutdown, mp.Shutdown)
		ln, err := net.Listen("tcp", c.PrometheusAddr)
		if err != nil {
			return nil, fmt.Errorf("metrics address %s: %w", c.PrometheusAddr, err)
		}
		if err := buildInfo(mp); err != nil {
			return nil, err
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.Handler())
		mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
		mux.HandleFunc("/readyz", t.serveReady)
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = srv.Serve(ln) }()
		t.shutdown = append(t.shutdown, srv.Shutdown)
		log.Info("metrics served", "url", "http://"+c.PrometheusAddr+"/metrics", "health", "/healthz", "ready", "/readyz")
	}
	return t, nil
}

// buildInfo is the gauge baton_build_info{version,revision,go_version} = 1.
func buildInfo(mp metric.MeterProvider) error {
	v := version.Get()
	attrs := metric.WithAttributes(attribute.String("version", v.Version), attribute.String("revision", v.Revision), attribute.String("go_version", v.Go))
	_, err := mp.Meter("baton").Int64ObservableGauge("baton_build_info", metric.WithDescription("the running build (always 1)"),
		metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error { o.Observe(1, attrs); return nil }))
	return err
}

// Interceptor is Temporal's tracing interceptor on t's tracer: a span per workflow and
// activity, propagated from the client that started it.
func (t *Telemetry) Interceptor() (interceptor.Interceptor, error) {
	return opentelemetry.NewTracingInterceptor(opentelemetry.TracerOptions{Tracer: t.Tracer.Tracer("baton")})
}

// Shutdown flushes and stops the exporters.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	var errs []error
	for _, f := range t.shutdown {
		errs = append(errs, f(ctx))
	}
	return errors.Join(errs...)
}

// Metrics are Baton's own instruments.
type Metrics struct {
	FailoverDuration metric.Float64Histogram
	StepDuration     metric.Float64Histogram
	DetectionLatency metric.Float64Histogram
	ProbeFailures    metric.Int64Counter
	FailoversStarted metric.Int64Counter
	// PossibleLoss counts failovers that promoted a candidate which may lack acknowledged
	// writes (held only by a lost candidate or an unreachable acknowledging replica).
	PossibleLoss metric.Int64Counter
	// Degradations counts the times a primary was found acknowledging writes without the
	// acknowledgement its durability policy promises.
	Degradations metric.Int64Counter
	// RoutingUnverified counts writer endpoints a routing check could not reach at all
	// (the result's RoutingUnverified).
	RoutingUnverified metric.Int64Counter
}

// NewMetrics creates the instruments on mp.
func NewMetrics(mp metric.MeterProvider) (*Metrics, error) {
	m := mp.Meter("baton")
	secs := metric.WithExplicitBucketBoundaries(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 30, 60)
	var out Metrics
	var errs [8]error
	out.FailoverDuration, errs[0] = m.Float64Histogram("baton_failover_duration", metric.WithUnit("s"), secs,
		metric.WithDescription("time from the start of a switchover or failover to its recorded result"))
	out.StepDuration, errs[1] = m.Float64Histogram("baton_step_duration", metric.WithUnit("s"), secs,
		metric.WithDescription("time of each runbook step"))
	out.DetectionLatency, errs[2] = m.Float64Histogram("baton_detection_latency", metric.WithUnit("s"), secs,
		metric.WithDescription("time from the first sign of a primary's death to the failover's start"))
	out.ProbeFailures, errs[3] = m.Int64Counter("baton_probe_failures", metric.WithDescription("failed probes of primaries"))
	out.FailoversStarted, errs[4] = m.Int64Counter("baton_failovers_started", metric.WithDescription("unplanned failovers started by the detector"))
	out.PossibleLoss, errs[5] = m.Int64Counter("baton_failovers_possible_loss",
		metric.WithDescription("failovers that promoted a candidate which may lack acknowledged writes (see the result's LeftOut)"))
	out.Degradations, errs[6] = m.Int64Counter("baton_durability_degradations",
		metric.WithDescription("times a primary acknowledged writes without the acknowledgement its durability policy promises (see the cluster's degraded key)"))
	out.RoutingUnverified, errs[7] = m.Int64Counter("baton_routing_unverified",
		metric.WithDescription("writer endpoints a failover's or switchover's routing check could not reach at all (see the result's RoutingUnverified)"))
	return &out, errors.Join(errs[:]...)
}
