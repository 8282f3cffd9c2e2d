package activities

import (
	"context"
	"errors"
	"fmt"

	"github.com/baton-db/baton/internal/topology"
)

// RestartReplication starts replication again on every replica of the plan: the failover
// stopped their IO threads and then found the primary alive (a candidate that caught up
// from another replica is pointed at the primary again). START SLAVE on a running
// replica does nothing, so a retry is harmless.
func (a *Activities) RestartReplication(ctx context.Context, plan Plan) (struct{}, error) {
	var errs []error
	for _, n := range append([]topology.Node{plan.Candidate}, plan.Others...) {
		c, err := a.mysql(plan.Cluster, n)
		switch {
		case err != nil:
		case plan.CatchUpFrom != nil && n.Name == plan.Candidate.Name:
			// it may be replicating from the donor it caught up from: back to the primary
			err = c.PointAt(ctx, a.replSource(plan.OldPrimary), false, a.acks(plan.Cluster, plan.OldPrimary, n))
		default:
			err = c.RestartReplica(ctx)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", n.Name, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return struct{}{}, fmt.Errorf("restart replication after the primary answered again: %w; run START SLAVE on those replicas", err)
	}
	return struct{}{}, nil
}
