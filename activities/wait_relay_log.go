package activities

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/baton-db/baton/internal/topology"
)

// WaitRelayLog cuts replication everywhere (the IO threads of the candidate and of the
// other replicas, all at once: what they received from the dead primary is final), then
// waits, heartbeating, until the candidate has applied every GTID it received. Promoting
// earlier would drop acknowledged writes. The IO threads are killed, not stopped
// (mysqladmin.CutReceiving): a STOP on a semi-sync replica of a silent host waits about a
// second for the IO thread to reach that host over a new connection; a KILL shuts its
// connection at once, and the promotion's STOP waits only for what is left of that second.
func (a *Activities) WaitRelayLog(ctx context.Context, plan Plan) (struct{}, error) {
	cc, _, err := a.cluster(plan.Cluster)
	if err != nil {
		return struct{}{}, err
	}
	stop := keepAlive(ctx, time.Second, "applying relay log on "+plan.Candidate.Name)
	defer stop()
	if err := a.stopReceiving(ctx, plan); err != nil {
		return struct{}{}, a.lostOr(ctx, plan, err)
	}
	if err := a.applyRelayLog(ctx, plan.Cluster, plan.Candidate, cc.CatchUpTimeout); err != nil {
		if lost := a.lostOr(ctx, plan, err); lost != err {
			return struct{}{}, lost
		}
		return struct{}{}, nonRetryable(ErrRelayLogNotApplied,
			"%s did not apply its relay log within %s (%v); check its SQL thread, then run `baton failover --cluster %s --force`",
			plan.Candidate.Name, cc.CatchUpTimeout, err, plan.Cluster)
	}
	if plan.CatchUpFrom != nil {
		if err := a.catchUpFrom(ctx, plan, *plan.CatchUpFrom, cc.CatchUpTimeout); err != nil {
			return struct{}{}, a.lostOr(ctx, plan, err)
		}
	}
	return struct{}{}, nil
}

// catchUpFrom makes the candidate hold everything donor executed: once donor has applied
// what it received (its IO thread is cut like every other's, so that is final), the
// candidate replicates from it until it has executed the same, then stops. The candidate
// does not acknowledge the donor's events: nothing commits on a replica.
func (a *Activities) catchUpFrom(ctx context.Context, plan Plan, donor topology.Node, limit time.Duration) error {
	if err := a.applyRelayLog(ctx, plan.Cluster, donor, limit); err != nil {
		return nonRetryable(ErrRelayLogNotApplied, "%s, which holds transactions %s lacks, did not apply its relay log within %s (%v); check its SQL thread, then run `baton failover --cluster %s --force`",
			donor.Name, plan.Candidate.Name, limit, err, plan.Cluster)
	}
	d, err := a.mysql(plan.Cluster, donor)
	if err != nil {
		return err
	}
	want, err := d.Executed(ctx)
	if err != nil {
		return fmt.Errorf("read what %s executed: %w", donor.Name, err)
	}
	c, err := a.mysql(plan.Cluster, plan.Candidate)
	if err != nil {
		return err
	}
	if err := c.PointAt(ctx, a.replSource(donor), false, false); err != nil {
		return fmt.Errorf("point %s at %s to catch up: %w", plan.Candidate.Name, donor.Name, err)
	}
	if err := c.WaitExecuted(ctx, want, limit); err != nil {
		return nonRetryable(ErrRelayLogNotApplied, "%s did not catch up from %s (%s) within %s (%v); check its replication, then run `baton failover --cluster %s --force`",
			plan.Candidate.Name, donor.Name, want, limit, err, plan.Cluster)
	}
	logger(ctx).Info("the candidate caught up from a replica that may not be promoted", "cluster", plan.Cluster,
		"candidate", plan.Candidate.Name, "from", donor.Name, "gtids", want)
	return c.StopReplica(ctx)
}

// stopReceiving cuts the IO threads of every replica in the plan in parallel. Only the
// candidate's must stop; another replica that fails is reparented later all the same.
func (a *Activities) stopReceiving(ctx context.Context, plan Plan) error {
	nodes := append([]topology.Node{plan.Candidate}, plan.Others...)
	errs := make([]error, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := a.mysql(plan.Cluster, n)
			if err == nil {
				err = c.CutReceiving(ctx)
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for i, err := range errs[1:] {
		if err != nil {
			logger(ctx).Warn("could not stop receiving on a replica; it is reparented later", "node", nodes[i+1].Name, "error", err)
		}
	}
	return errs[0]
}
