package activities

import (
	"context"

	"github.com/baton-db/baton/internal/topology"
)

// RecordResult stores the outcome in Consul (last_planned or last_unplanned); the detector
// counts its anti-flap period from the last unplanned one, and `baton status` shows both.
func (a *Activities) RecordResult(ctx context.Context, cluster string, r topology.Record) (struct{}, error) {
	return struct{}{}, a.Topo.RecordResult(ctx, cluster, r)
}
