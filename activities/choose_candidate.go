package activities

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/baton-db/baton/internal/flavor"
	"github.com/baton-db/baton/internal/topology"
)

// ChooseCandidate picks the replica to promote after the primary died. Every reachable
// replica first applies what it already received (a SQL thread an operator stopped without
// an error is started for that), then rankCandidates ranks them and excludes any that is
// not a GTID superset of the others. Replicas it cannot reach are left out of the plan
// (Plan.Lost): the failover evicts them rather than wait for them. It changes nothing else.
func (a *Activities) ChooseCandidate(ctx context.Context, c ConfirmResult) (Plan, error) {
	return a.choose(ctx, c, true)
}

// previewCandidate is ChooseCandidate for a dry run (PreviewFailoverCandidate): it starts no
// stopped SQL thread.
func (a *Activities) previewCandidate(ctx context.Context, c ConfirmResult) (Plan, error) {
	return a.choose(ctx, c, false)
}

func (a *Activities) choose(ctx context.Context, c ConfirmResult, resume bool) (Plan, error) {
	cluster := c.Cluster
	cc, f, err := a.cluster(cluster)
	if err != nil {
		return Plan{}, err
	}
	var obs []Observed
	policy := Policy{Prefer: cc.Prefer, MustNot: cc.MustNot, Zone: c.Primary.Zone, RequireSuperset: true, Downtimed: c.Downtimed}
	if c.Promotion != nil {
		policy = policy.withRules(c.Promotion)
	}
	if !c.Forced {
		policy.SameZone, policy.MaxLag = cc.PreventCrossZoneFailover, cc.MaxLagUnplanned
	}
	if c.PrimaryGTIDs != "" {
		if policy.MustHold, err = f.ParseGTIDs(c.PrimaryGTIDs); err != nil {
			return Plan{}, nonRetryable(ErrBadGTIDs, "the fenced primary's GTIDs %q: %v", c.PrimaryGTIDs, err)
		}
	}
	observe := func(limit time.Duration) bool {
		var behind bool
		obs, behind = a.observeAll(ctx, f, cluster, c.Replicas, limit, resume)
		policy.SinceFailure = time.Since(c.FailedAt)
		return behind
	}
	behind := observe(2 * time.Second)
	a.askUnreachableAckers(ctx, f, c, obs, cc.UnreachableAckerWait, resume)
	best, reports := rankCandidates(obs, policy)
	if best < 0 && behind {
		// Replicas that have not applied what they received cannot be compared yet: give
		// them catchup_timeout, then rank again.
		observe(cc.CatchUpTimeout)
		best, reports = rankCandidates(obs, policy)
	}
	var donor *topology.Node
	if best < 0 {
		if ci, di, rs := catchUpSource(obs, policy); ci >= 0 {
			best, reports, donor = ci, rs, &obs[di].Node
			logger(ctx).Warn("the replica that holds the most may not be promoted: the candidate catches up from it first",
				"cluster", cluster, "candidate", obs[ci].Node.Name, "from", donor.Name)
		}
	}
	plan := Plan{Cluster: cluster, OldPrimary: c.Primary, Epoch: c.Epoch, EpochIndex: c.EpochIndex, Replicas: reports, Lost: c.Lost, CatchUpFrom: donor}
	if best < 0 {
		var why []string
		for _, r := range reports {
			why = append(why, r.Node.Name+": "+r.Why)
		}
		for _, n := range c.Lost {
			why = append(why, n.Name+": stopped answering earlier in this failover")
		}
		return plan, nonRetryable(ErrNoCandidate,
			"primary %s of %s is dead and no replica qualifies, so nothing was changed: %s. A human must pick a replica, check its data, and run `baton failover --cluster %s --force` once it qualifies (or fix the excluded replicas)",
			c.Primary.Name, cluster, strings.Join(why, "; "), cluster)
	}
	plan.Candidate = obs[best].Node
	plan.Reason = reports[best].Why
	plan.LeftBehind = append(leftBehind(ctx, f, c, obs[best]), a.unreachableAckers(ctx, c, obs, best, cc.UnreachableAckerWait)...)
	plan.LeftBehind = append(plan.LeftBehind, degradedWindow(c.Degraded)...)
	if len(plan.LeftBehind) > 0 && a.Metrics != nil && resume {
		a.Metrics.PossibleLoss.Add(ctx, 1, metric.WithAttributes(attribute.String("cluster", cluster)))
	}
	for i, o := range obs {
		switch {
		case i == best:
		case o.Reachable:
			plan.Others = append(plan.Others, o.Node)
		default:
			plan.Lost = append(plan.Lost, o.Node)
		}
	}
	return plan, nil
}

// observeAll observes every replica in parallel, after letting each apply its relay log for
// up to limit; behind reports that one did not finish. A replica that does not answer a
// fresh connection within the probe timeout is reported unreachable at once: a silent
// host must not hold the failover for the pool's read timeout.
func (a *Activities) observeAll(ctx context.Context, f flavor.Flavor, cluster string, nodes []topology.Node, limit time.Duration, resume bool) ([]Observed, bool) {
	obs := make([]Observed, len(nodes))
	var behind atomic.Bool
	var wg sync.WaitGroup
	for i, r := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := a.answers(ctx, f, r); err != nil {
				obs[i] = Observed{Node: r, LagMS: -1, Error: err.Error()}
				return
			}
			if resume {
				a.resumeApplying(ctx, cluster, r)
			}
			if err := a.applyRelayLog(ctx, cluster, r, limit); err != nil {
				behind.Store(true) // best effort: the ranking reads what was applied
			}
			obs[i] = a.observe(ctx, cluster, r)
			heartbeat(ctx, "observed "+r.Name)
		}()
	}
	wg.Wait()
	return obs, behind.Load()
}

// resumeApplying starts the SQL thread of a replica that an operator stopped without an
// error: its relay log may hold acknowledged writes, and it must stay a candidate. A SQL
// thread stopped on an error is left alone; the ranking excludes it with that error.
func (a *Activities) resumeApplying(ctx context.Context, cluster string, n topology.Node) {
	c, err := a.mysql(cluster, n)
	if err != nil {
		return
	}
	st, err := c.ReplicaStatus(ctx)
	if err != nil || st == nil || st.SQLRunning || st.SQLError != "" {
		return
	}
	if err := c.StartReplica(ctx); err != nil {
		logger(ctx).Warn("could not start a stopped SQL thread", "node", n.Name, "error", err)
		return
	}
	logger(ctx).Info("started a SQL thread that was stopped without an error", "node", n.Name)
}

// applyRelayLog waits (bounded) until a replica has applied every GTID it received.
func (a *Activities) applyRelayLog(ctx context.Context, cluster string, n topology.Node, limit time.Duration) error {
	c, err := a.mysql(cluster, n)
	if err != nil {
		return err
	}
	st, err := c.ReplicaStatus(ctx)
	if err != nil || st == nil || st.Received == "" {
		return err
	}
	return c.WaitExecuted(ctx, st.Received, limit)
}

// leftBehind compares the candidate with what each candidate lost earlier in this failover
// was last seen to hold. Whatever it lacks goes with the lost node, acknowledged writes
// perhaps among it: the result says so, and the node's data is to be inspected before it
// rejoins (the rejoin refuses it for those GTIDs anyway).
// degradedWindow names a durability degradation of the dead primary that was still open:
// what it acknowledged since then may never have reached a replica.
func degradedWindow(d *topology.Degradation) []string {
	if d == nil || !d.Open() {
		return nil
	}
	return []string{fmt.Sprintf("%s: durability degraded since %s (it acknowledged writes %s): writes acknowledged since then may exist on it only",
		d.Primary, d.Since.Format(time.RFC3339), d.Reason)}
}

func leftBehind(ctx context.Context, f flavor.Flavor, c ConfirmResult, cand Observed) []string {
	var out []string
	for _, n := range c.Lost {
		raw, ok := c.LostGTIDs[n.Name]
		if !ok || cand.Holds() == nil {
			continue
		}
		theirs, err := f.ParseGTIDs(raw)
		if err != nil {
			continue
		}
		if miss := flavor.Lacks(cand.Holds(), theirs); miss != "" {
			msg := fmt.Sprintf("%s, the candidate lost earlier, held %s, which %s lacks: acknowledged writes may be among them; inspect them on %s before it rejoins",
				n.Name, miss, cand.Node.Name, n.Name)
			logger(ctx).Warn("promoting a replica that lacks transactions a lost candidate held", "lost", n.Name, "gtids", miss, "candidate", cand.Node.Name)
			out = append(out, msg)
		}
	}
	return out
}

// askUnreachableAckers asks again, for up to wait, every replica that did not answer but
// may have acknowledged the primary's last commits under the durability policy: it may be
// the only holder of acknowledged writes (one lost SYN is enough to miss it once). One that
// answers is observed like the others.
func (a *Activities) askUnreachableAckers(ctx context.Context, f flavor.Flavor, c ConfirmResult, obs []Observed, wait time.Duration, resume bool) {
	deadline := time.Now().Add(wait)
	for {
		pending := 0
		for i, o := range obs {
			if o.Reachable || !a.acks(c.Cluster, c.Primary, o.Node) {
				continue
			}
			if err := a.answers(ctx, f, o.Node); err != nil {
				obs[i].Error = err.Error()
				pending++
				continue
			}
			if resume {
				a.resumeApplying(ctx, c.Cluster, o.Node)
			}
			_ = a.applyRelayLog(ctx, c.Cluster, o.Node, 2*time.Second)
			obs[i] = a.observe(ctx, c.Cluster, o.Node)
			logger(ctx).Info("an acknowledging replica answered on a later try", "node", o.Node.Name)
		}
		if pending == 0 || !time.Now().Before(deadline) || ctx.Err() != nil {
			return
		}
		heartbeat(ctx, fmt.Sprintf("asking %d unreachable acknowledging replica(s) again", pending))
		time.Sleep(min(500*time.Millisecond, time.Until(deadline)))
	}
}

// unreachableAckers says, for each replica still unreachable that may have acknowledged the
// last commits (and so may hold acknowledged writes the candidate lacks), that the failover
// promoted without it: in the result, the history, the post hooks' event and a warning.
func (a *Activities) unreachableAckers(ctx context.Context, c ConfirmResult, obs []Observed, best int, wait time.Duration) []string {
	var out []string
	for i, o := range obs {
		if i == best || o.Reachable || !a.acks(c.Cluster, c.Primary, o.Node) {
			continue
		}
		msg := fmt.Sprintf("%s, an acknowledging replica under the durability policy, did not answer for %s (%s): it may hold acknowledged writes that %s lacks; do not rebuild it before comparing its GTIDs with the new primary's",
			o.Node.Name, wait, o.Error, obs[best].Node.Name)
		logger(ctx).Warn("promoting while an acknowledging replica is unreachable: acknowledged writes may be missing", "unreachable", o.Node.Name, "candidate", obs[best].Node.Name)
		out = append(out, msg)
	}
	return out
}
