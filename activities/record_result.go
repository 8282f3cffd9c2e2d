package activities

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/baton-db/baton/internal/topology"
)

// RecordResult stores the outcome in Consul (last_planned or last_unplanned); the detector
// counts its anti-flap period from the last unplanned one, and `baton status` shows both.
func (a *Activities) RecordResult(ctx context.Context, cluster string, r topology.Record) (struct{}, error) {
	if err := a.Topo.RecordResult(ctx, cluster, r); err != nil {
		return struct{}{}, err
	}
	if a.Metrics != nil {
		attrs := metric.WithAttributes(attribute.String("cluster", cluster), attribute.String("kind", r.Kind))
		if !r.Started.IsZero() {
			a.Metrics.FailoverDuration.Record(ctx, r.At.Sub(r.Started).Seconds(), attrs)
		}
		for step, d := range r.Steps {
			if dur, err := time.ParseDuration(d); err == nil {
				a.Metrics.StepDuration.Record(ctx, dur.Seconds(), metric.WithAttributes(
					attribute.String("cluster", cluster), attribute.String("kind", r.Kind), attribute.String("step", step)))
			}
		}
	}
	return struct{}{}, nil
}
