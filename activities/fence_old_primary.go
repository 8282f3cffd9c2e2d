package activities

import (
	"context"
	"time"
)

// FenceResult says whether the old primary answered and what it held.
type FenceResult struct {
	Answered bool
	GTIDs    string
	Error    string
}

// FenceOldPrimary sets the old primary read-only if it answers. Best effort: it never
// fails, because Consul (epoch + CAS) is the real fence.
func (a *Activities) FenceOldPrimary(ctx context.Context, plan Plan) (FenceResult, error) {
	_, f, err := a.cluster(plan.Cluster)
	if err != nil {
		return FenceResult{}, err
	}
	c, err := a.freshClient(f, plan.OldPrimary, 300*time.Millisecond, 500*time.Millisecond)
	if err != nil {
		return FenceResult{Error: err.Error()}, nil
	}
	defer c.Close()
	fctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if _, err := c.Fence(fctx, a.excludedUsers()); err != nil {
		return FenceResult{Error: err.Error()}, nil
	}
	g, _ := c.Executed(fctx)
	return FenceResult{Answered: true, GTIDs: g}, nil
}
