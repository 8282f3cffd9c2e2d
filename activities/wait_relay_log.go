package activities

import (
	"context"
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
	return struct{}{}, nil
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
