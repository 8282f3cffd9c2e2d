package activities

import (
	"context"
	"time"

	"github.com/baton-db/baton/internal/flavor"
	"github.com/baton-db/baton/internal/topology"
)

// EvictInput records a crashed primary as evicted.
type EvictInput struct {
	Cluster    string
	Node       topology.Node
	NewPrimary topology.Node
	Reason     string
	Epoch      uint64
	// GTIDs is what the old primary held, when the fence could read it.
	GTIDs string
}

// EvictResult lists the transactions only the evicted node may hold.
type EvictResult struct {
	Unique string
}

// EvictNode records the crashed node as "evicted, needs manual verification", with the
// GTIDs it holds that the new primary lacks where they could be read. It is never re-added
// automatically: `baton rejoin` does that after checking it.
func (a *Activities) EvictNode(ctx context.Context, in EvictInput) (EvictResult, error) {
	unique := "unknown: the node was unreachable; compare its binlog with the new primary before rejoining"
	if in.GTIDs != "" {
		if c, err := a.mysql(in.Cluster, in.NewPrimary); err == nil {
			if have, err := c.Executed(ctx); err == nil {
				hs, err1 := c.Dialect().ParseGTIDs(have)
				old, err2 := c.Dialect().ParseGTIDs(in.GTIDs)
				if err1 == nil && err2 == nil {
					unique = flavor.Lacks(hs, old)
				}
			}
		}
	}
	e := topology.Eviction{Node: in.Node, Reason: in.Reason, Epoch: in.Epoch, At: time.Now().UTC(), Unique: unique}
	if err := a.Topo.RecordEviction(ctx, in.Cluster, e); err != nil {
		return EvictResult{}, err
	}
	return EvictResult{Unique: unique}, nil
}
