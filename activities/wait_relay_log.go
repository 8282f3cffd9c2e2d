package activities

import (
	"context"
	"time"
)

// WaitRelayLog waits, heartbeating, until the candidate has applied every GTID it received
// from the dead primary. Promoting earlier would drop acknowledged writes.
func (a *Activities) WaitRelayLog(ctx context.Context, plan Plan) (struct{}, error) {
	cc, _, err := a.cluster(plan.Cluster)
	if err != nil {
		return struct{}{}, err
	}
	stop := keepAlive(ctx, time.Second, "applying relay log on "+plan.Candidate.Name)
	defer stop()
	if err := a.applyRelayLog(ctx, plan.Cluster, plan.Candidate, cc.CatchUpTimeout); err != nil {
		return struct{}{}, nonRetryable("RelayLogNotApplied",
			"%s did not apply its relay log within %s (%v); check its SQL thread, then run `baton failover --cluster %s --force`",
			plan.Candidate.Name, cc.CatchUpTimeout, err, plan.Cluster)
	}
	return struct{}{}, nil
}
