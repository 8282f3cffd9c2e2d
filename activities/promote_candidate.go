package activities

import (
	"context"
)

// PromoteInput is the plan and the old primary's final GTIDs.
type PromoteInput struct {
	Plan  Plan
	GTIDs string // everything the old primary executed; empty when it is dead
}

// PromoteCandidate stops and resets replication on the candidate and makes it writable,
// with semi-sync on its primary side.
func (a *Activities) PromoteCandidate(ctx context.Context, in PromoteInput) (struct{}, error) {
	plan := in.Plan
	if published, err := a.epochGuard(ctx, plan); err != nil || published {
		return struct{}{}, err
	}
	c, err := a.mysql(plan.Cluster, plan.Candidate)
	if err != nil {
		return struct{}{}, err
	}
	st, err := c.ReplicaStatus(ctx)
	if err != nil {
		return struct{}{}, err
	}
	ro, _, err := c.ReadOnly(ctx)
	if err != nil {
		return struct{}{}, err
	}
	if st == nil && !ro {
		return struct{}{}, nil // already promoted
	}
	if in.GTIDs != "" {
		have, err := c.Executed(ctx)
		if err != nil {
			return struct{}{}, err
		}
		hs, err1 := c.Flavor.ParseGTIDs(have)
		ws, err2 := c.Flavor.ParseGTIDs(in.GTIDs)
		if err1 == nil && err2 == nil {
			if miss := hs.Missing(ws); miss != "" {
				return struct{}{}, nonRetryable("CandidateBehind", "%s lacks %s of the old primary; not promoting", plan.Candidate.Name, miss)
			}
		}
	}
	if st != nil {
		if err := c.StopAndResetReplication(ctx); err != nil {
			return struct{}{}, err
		}
	}
	// Semi-sync only when a replica will be there to acknowledge: a lone survivor would
	// otherwise stall every write for the semi-sync timeout.
	if err := c.SetSemiSyncPrimary(ctx, len(plan.Others) > 0 || plan.OldPrimary.Name != "" && in.GTIDs != ""); err != nil {
		return struct{}{}, err
	}
	return struct{}{}, c.SetReadOnly(ctx, false)
}
