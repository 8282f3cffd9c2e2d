package detect

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/baton-db/baton/internal/config"
	"github.com/baton-db/baton/internal/flavor"
	"github.com/baton-db/baton/internal/mysqladmin"
	"github.com/baton-db/baton/internal/topology"
	"github.com/baton-db/baton/workflows/start"
)

// Durability never degrades in silence (docs/runbook.md §5). In the same pass as the
// acknowledgement repair, the detector reads the primary's semi-sync state: under
// ack_fallback none it takes the asynchronous fallback away (the timeout at its maximum),
// and under either setting a primary that acknowledges writes without waiting for a
// replica is recorded in degraded (start and end), counted and logged.

// degradationRecorder writes the degraded key (topology.Store).
type degradationRecorder interface {
	RecordDegradation(ctx context.Context, cluster string, d topology.Degradation) error
}

// durabilityOf is the pure decision: whether the timeout must be set to NoFallback, and
// why the primary acknowledges without the promised copy ("" when it does not).
func durabilityOf(fallback config.AckFallback, p mysqladmin.PrimaryAcks) (setTimeout bool, degraded string) {
	setTimeout = fallback == config.AckFallbackNone && p.Enabled && p.TimeoutMS != flavor.NoFallback
	switch {
	case !p.Enabled:
		degraded = "without waiting for a replica (semi-sync off: no replica may acknowledge)"
	case !p.Active:
		degraded = "asynchronously (semi-sync fell back after its timeout: no replica acknowledged)"
	}
	return setTimeout, degraded
}

// checkDurability runs the decision on t's primary and records a change.
func (w *Watcher) checkDurability(ctx context.Context, t topology.Topology) {
	var acks mysqladmin.PrimaryAcks
	err := w.onNode(ctx, t.Primary, func(ctx context.Context, c *mysqladmin.Client) (err error) {
		acks, err = c.PrimaryAcks(ctx)
		return err
	})
	if err != nil {
		return // the probes judge a primary that does not answer
	}
	setTimeout, why := durabilityOf(w.cc.AckFallback, acks)
	if !w.idle(ctx, t.Cluster, true) {
		return
	}
	if setTimeout {
		err := w.onNode(ctx, t.Primary, func(ctx context.Context, c *mysqladmin.Client) error {
			return c.SetSemiSyncTimeout(ctx, flavor.NoFallback)
		})
		if err != nil {
			w.log.Error("the primary may fall back to asynchronous commits (ack_fallback none), and repairing it failed", "cluster", t.Cluster, "primary", t.Primary.Name, "error", err)
		} else {
			w.log.Warn("repaired: the primary no longer falls back to asynchronous commits (ack_fallback none)", "cluster", t.Cluster, "primary", t.Primary.Name, "timeout_ms_was", acks.TimeoutMS)
		}
	}
	rec, _ := w.fencer.(degradationRecorder)
	if rec == nil {
		return
	}
	open := t.Degraded != nil && t.Degraded.Open() && t.Degraded.Primary == t.Primary.Name
	now := time.Now().UTC()
	switch {
	case why != "" && !open:
		d := topology.Degradation{Primary: t.Primary.Name, Reason: why, Since: now}
		if err := rec.RecordDegradation(ctx, t.Cluster, d); err != nil {
			w.log.Error("durability is degraded, and recording it failed", "cluster", t.Cluster, "primary", t.Primary.Name, "error", err)
			return
		}
		w.log.Warn("durability degraded: the primary acknowledges writes "+why+"; writes acknowledged from now on may exist on it only", "cluster", t.Cluster, "primary", t.Primary.Name, "durability", string(w.cc.Durability), "ack_fallback", string(w.cc.AckFallback))
		if w.metrics != nil {
			w.metrics.Degradations.Add(ctx, 1, metric.WithAttributes(attribute.String("cluster", t.Cluster)))
		}
		w.durabilityHooks(ctx, t.Cluster, d)
	case why == "" && t.Degraded != nil && t.Degraded.Open():
		d := *t.Degraded
		d.Until = now
		if err := rec.RecordDegradation(ctx, t.Cluster, d); err == nil {
			w.log.Info("durability restored: the primary waits for an acknowledgement again", "cluster", t.Cluster, "primary", t.Primary.Name, "degraded_since", d.Since, "lasted", now.Sub(d.Since).Round(time.Millisecond).String())
			w.durabilityHooks(ctx, t.Cluster, d)
		}
	}
}

// durabilityStarter starts the hooks of a durability change (start.Starter).
type durabilityStarter interface {
	StartDurabilityHooks(ctx context.Context, in start.DurabilityInput) error
}

// durabilityHooks starts the workflow that runs the cluster's durability-degraded or
// durability-restored hooks for d; a failure to start it is logged, the record stands.
func (w *Watcher) durabilityHooks(ctx context.Context, cluster string, d topology.Degradation) {
	s, ok := w.starter.(durabilityStarter)
	if !ok {
		return
	}
	in := start.DurabilityInput{Cluster: cluster, Primary: d.Primary, Reason: d.Reason, Since: d.Since, Until: d.Until}
	if err := s.StartDurabilityHooks(ctx, in); err != nil {
		w.log.Error("durability changed, and starting its hooks failed", "cluster", cluster, "primary", d.Primary, "error", err)
	}
}
