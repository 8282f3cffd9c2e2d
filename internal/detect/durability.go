package detect

import (
	"context"
	"fmt"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/baton-db/baton/internal/config"
	"github.com/baton-db/baton/internal/flavor"
	"github.com/baton-db/baton/internal/mysqladmin"
	"github.com/baton-db/baton/internal/start"
	"github.com/baton-db/baton/internal/topology"
)

// Durability never degrades in silence (docs/runbook.md §5). In the same pass as the
// acknowledgement repair, the detector reads the primary's semi-sync state: under
// ack_fallback none it takes the asynchronous fallback away (the timeout at its maximum),
// and under either setting a primary that acknowledges writes without waiting for a
// replica is recorded in degraded (start and end), counted and logged.

// degradationRecorder writes the degraded and held keys (topology.Store).
type degradationRecorder interface {
	RecordDegradation(ctx context.Context, cluster string, d topology.Degradation) error
	RecordHeld(ctx context.Context, cluster string, d topology.Degradation) error
}

// durabilityOf is the pure decision: the semi-sync timeout to set (0: leave it), and why
// the primary acknowledges without the promised copy ("" when it does not). Under none the
// timeout must be NoFallback; under async a primary left waiting for ever (NoFallback, as
// none, a fence or a lapse leaves it) gets ackTimeout back, and any other value is the
// operator's and stays.
func durabilityOf(fallback config.AckFallback, ackTimeout time.Duration, p mysqladmin.PrimaryAcks) (setTimeout uint64, degraded string) {
	switch {
	case !p.Enabled:
	case fallback == config.AckFallbackNone && p.TimeoutMS != flavor.NoFallback:
		setTimeout = flavor.NoFallback
	case fallback == config.AckFallbackAsync && p.TimeoutMS == flavor.NoFallback && ackTimeout > 0:
		setTimeout = uint64(ackTimeout.Milliseconds())
	}
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
	setTimeout, why := durabilityOf(w.cc.AckFallback, w.cc.AckTimeout, acks)
	if !w.idle(ctx, t.Cluster, true) {
		return
	}
	if setTimeout != 0 {
		err := w.onNode(ctx, t.Primary, func(ctx context.Context, c *mysqladmin.Client) error {
			return c.SetSemiSyncTimeout(ctx, setTimeout)
		})
		switch {
		case err != nil:
			w.log.Error("the primary's semi-sync timeout differs from ack_fallback, and repairing it failed", "cluster", t.Cluster, "primary", t.Primary.Name, "ack_fallback", string(w.cc.AckFallback), "error", err)
		case setTimeout == flavor.NoFallback:
			w.log.Warn("repaired: the primary no longer falls back to asynchronous commits (ack_fallback none)", "cluster", t.Cluster, "primary", t.Primary.Name, "timeout_ms_was", acks.TimeoutMS)
		default:
			w.log.Warn("repaired: the primary waited for ever for an acknowledgement although ack_fallback is async; its timeout is ack_timeout again", "cluster", t.Cluster, "primary", t.Primary.Name, "timeout_ms", setTimeout)
		}
	}
	rec, _ := w.fencer.(degradationRecorder)
	if rec == nil {
		return
	}
	switch d, opened := w.period(ctx, t.Cluster, t.Primary.Name, t.Degraded, why, rec.RecordDegradation); {
	case d == nil:
	case opened:
		w.log.Warn("durability degraded: the primary acknowledges writes "+why+"; writes acknowledged from now on may exist on it only", "cluster", t.Cluster, "primary", t.Primary.Name, "durability", string(w.cc.Durability), "ack_fallback", string(w.cc.AckFallback))
		if w.metrics != nil {
			w.metrics.Degradations.Add(ctx, 1, metric.WithAttributes(attribute.String("cluster", t.Cluster)))
		}
		w.durabilityHooks(ctx, t.Cluster, *d)
	default:
		w.log.Info("durability restored: the primary waits for an acknowledgement again", "cluster", t.Cluster, "primary", t.Primary.Name, "degraded_since", d.Since, "lasted", d.Until.Sub(d.Since).Round(time.Millisecond).String())
		w.durabilityHooks(ctx, t.Cluster, *d)
	}
	var held string
	if acks.Waiting > 0 {
		_ = w.onNode(ctx, t.Primary, func(ctx context.Context, c *mysqladmin.Client) error {
			procs, err := c.Processlist(ctx)
			held = heldOf(procs)
			return err
		})
	}
	switch d, opened := w.period(ctx, t.Cluster, t.Primary.Name, t.Held, held, rec.RecordHeld); {
	case d == nil:
	case opened:
		w.log.Error("commits held: the primary "+held+"; writes wait until a replica acknowledges", "cluster", t.Cluster, "primary", t.Primary.Name, "ack_fallback", string(w.cc.AckFallback))
	default:
		w.log.Info("commits released: no commit waits for an acknowledgement any more", "cluster", t.Cluster, "primary", t.Primary.Name, "held_since", d.Since, "lasted", d.Until.Sub(d.Since).Round(time.Millisecond).String())
	}
}

// period opens (why != "") or closes (why == "") the record cur of primary with record,
// and returns what it wrote: nil when nothing changed or the write failed (logged).
func (w *Watcher) period(ctx context.Context, cluster, primary string, cur *topology.Degradation, why string,
	record func(context.Context, string, topology.Degradation) error) (d *topology.Degradation, opened bool) {
	open := cur != nil && cur.Open() && cur.Primary == primary
	now := time.Now().UTC()
	switch {
	case why != "" && !open:
		d = &topology.Degradation{Primary: primary, Reason: why, Since: now}
		opened = true
	case why == "" && cur != nil && cur.Open():
		c := *cur
		c.Until = now
		d = &c
	default:
		return nil, false
	}
	if err := record(ctx, cluster, *d); err != nil {
		w.log.Error("recording a change of the primary's acknowledgements failed", "cluster", cluster, "primary", primary, "reason", d.Reason, "error", err)
		return nil, false
	}
	return d, opened
}

// HeldAfter is how long a client's commit may wait for a semi-sync acknowledgement before
// the detector records that the primary holds commits.
const HeldAfter = 5 * time.Second

// heldOf is the pure decision on the primary's sessions: why its commits are held, or ""
// when no commit has waited HeldAfter for an acknowledgement. A replication connection
// that has waited HeldAfter to end is named: on MariaDB 10.11 such a connection, killed
// while commits were held, can wait for ever (its acknowledgement receiver is stuck), and
// its replica cannot connect again until it ends (docs/runbook.md §5, "held commits").
func heldOf(procs []mysqladmin.Process) string {
	waiting, oldest := 0, time.Duration(0)
	var stuck []string
	for _, p := range procs {
		switch {
		case p.State == "Waiting to finalize termination" && p.Time >= HeldAfter:
			stuck = append(stuck, fmt.Sprintf("%s (%s)", p.Host, p.Time))
		case p.IsClient(nil) && p.Committing():
			waiting++
			if strings.Contains(strings.ToLower(p.State), "semi-sync") {
				oldest = max(oldest, p.Time)
			}
		}
	}
	if oldest < HeldAfter {
		return ""
	}
	why := fmt.Sprintf("holds %d commits, the oldest for %s, waiting for a semi-sync acknowledgement", waiting, oldest)
	if len(stuck) > 0 {
		why += fmt.Sprintf("; the replication connection from %s waits to end, and its replica cannot connect again until it does: "+
			"MariaDB's acknowledgement receiver is stuck; stopping mysqld (the held commits stay unacknowledged, a failover follows) "+
			"or switching rpl_semi_sync_master_enabled off and on (the held commits are acknowledged without a copy) releases it",
			strings.Join(stuck, ", "))
	}
	return why
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
