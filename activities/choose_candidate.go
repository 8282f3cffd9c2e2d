package activities

import (
	"context"
	"strings"
	"time"

	"github.com/baton-db/baton/internal/topology"
)

// ChooseCandidate picks the replica to promote after the primary died: every reachable
// replica first applies what it already received, then ChooseCandidate ranks them and
// excludes any that is not a GTID superset of the others. It changes nothing.
func (a *Activities) ChooseCandidate(ctx context.Context, c ConfirmResult) (Plan, error) {
	cluster := c.Cluster
	cc, _, err := a.cluster(cluster)
	if err != nil {
		return Plan{}, err
	}
	obs := make([]Observed, len(c.Replicas))
	for i, r := range c.Replicas {
		a.applyRelayLog(ctx, cluster, r, 2*time.Second)
		obs[i] = a.observe(ctx, cluster, r)
		heartbeat(ctx, "observed "+r.Name)
	}
	best, reports := ChooseCandidate(obs, Policy{Prefer: cc.Prefer, MustNot: cc.MustNot, Zone: c.Primary.Zone, RequireSuperset: true})
	plan := Plan{Cluster: cluster, OldPrimary: c.Primary, Epoch: c.Epoch, EpochIndex: c.EpochIndex, Replicas: reports}
	if best < 0 {
		var why []string
		for _, r := range reports {
			why = append(why, r.Node.Name+": "+r.Why)
		}
		return plan, nonRetryable("NoCandidate",
			"primary %s of %s is dead and no replica qualifies, so nothing was changed: %s. A human must pick a replica, check its data, and run `baton failover --cluster %s --force` once it qualifies (or fix the excluded replicas)",
			c.Primary.Name, cluster, strings.Join(why, "; "), cluster)
	}
	plan.Candidate = obs[best].Node
	plan.Reason = reports[best].Why
	for i, r := range c.Replicas {
		if i != best {
			plan.Others = append(plan.Others, r)
		}
	}
	return plan, nil
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
