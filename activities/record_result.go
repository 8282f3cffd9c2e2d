package activities

import (
	"context"

	"github.com/baton-db/baton/internal/topology"
)

// RecordResult stores the outcome in Consul (last_failover), where the detector reads it
// for its anti-flap period and operators read it with `baton status`.
func (a *Activities) RecordResult(ctx context.Context, cluster string, r topology.Record) (struct{}, error) {
	return struct{}{}, a.Topo.RecordResult(ctx, cluster, r)
}
