package activities

import (
	"context"
	"slices"

	"github.com/baton-db/baton/internal/config"
	"github.com/baton-db/baton/internal/flavor"
	"github.com/baton-db/baton/internal/topology"
)

// PromoteInput is the plan and the old primary's final GTIDs.
type PromoteInput struct {
	Plan  Plan
	GTIDs string // everything the old primary executed; empty when it is dead
}

// PromoteCandidate stops and resets replication on the candidate and makes it writable,
// with semi-sync on its primary side.
func (a *Activities) PromoteCandidate(ctx context.Context, in PromoteInput) (struct{}, error) {
	err := a.promote(ctx, in)
	return struct{}{}, a.lostOr(ctx, in.Plan, err)
}

// ackerLeft reports whether a replica that may acknowledge the candidate's commits remains:
// one of the others, or the old primary after a switchover (it becomes a replica).
func (a *Activities) ackerLeft(plan Plan, oldPrimaryStays bool) bool {
	followers := slices.Clone(plan.Others)
	if oldPrimaryStays && plan.OldPrimary.Name != "" {
		followers = append(followers, plan.OldPrimary)
	}
	return slices.ContainsFunc(followers, func(n topology.Node) bool { return a.acks(plan.Cluster, plan.Candidate, n) })
}

// waitForAcks switches the primary side of semi-sync; on, under ack_fallback none, it also
// takes away the asynchronous fallback (the timeout at its maximum), so that no commit is
// acknowledged without the copy the durability policy promises.
func (a *Activities) waitForAcks(ctx context.Context, cluster string, c Server, on bool) error {
	if err := c.SetSemiSyncPrimary(ctx, on); err != nil {
		return err
	}
	if cc, _, err := a.cluster(cluster); on && err == nil && cc.AckFallback == config.AckFallbackNone {
		return c.SetSemiSyncTimeout(ctx, flavor.NoFallback)
	}
	return nil
}

// fallbackBack gives a node about to take writes the asynchronous fallback back under
// ack_fallback async: a fence, in this life or an earlier one as primary, left its timeout
// at the maximum, and a primary that waits for ever for an acknowledgement holds its
// commits until the detector notices.
func (a *Activities) fallbackBack(ctx context.Context, cluster string, c Server) error {
	if cc, _, err := a.cluster(cluster); err == nil && cc.AckFallback == config.AckFallbackAsync && cc.AckTimeout > 0 {
		return c.SetSemiSyncTimeout(ctx, uint64(cc.AckTimeout.Milliseconds()))
	}
	return nil
}

func (a *Activities) promote(ctx context.Context, in PromoteInput) error {
	plan := in.Plan
	if published, err := a.epochGuard(ctx, plan); err != nil || published {
		return err
	}
	c, err := a.mysql(plan.Cluster, plan.Candidate)
	if err != nil {
		return err
	}
	st, err := c.ReplicaStatus(ctx)
	if err != nil {
		return err
	}
	ro, _, err := c.ReadOnly(ctx)
	if err != nil {
		return err
	}
	if st == nil && !ro {
		return nil // already promoted
	}
	if in.GTIDs != "" {
		have, err := c.Executed(ctx)
		if err != nil {
			return err
		}
		hs, err1 := c.Dialect().ParseGTIDs(have)
		ws, err2 := c.Dialect().ParseGTIDs(in.GTIDs)
		if err1 == nil && err2 == nil {
			if miss := flavor.Lacks(hs, ws); miss != "" {
				return nonRetryable(ErrCandidateBehind, "%s lacks %s of the old primary; not promoting", plan.Candidate.Name, miss)
			}
		}
	}
	if st != nil {
		if err := c.StopAndResetReplication(ctx); err != nil {
			return err
		}
	}
	// Semi-sync only when a live replica will be there to acknowledge (under cross_zone, one
	// in another zone): a lone survivor would otherwise stall every write for the semi-sync
	// timeout before falling back to async.
	if err := a.waitForAcks(ctx, plan.Cluster, c, a.ackerLeft(plan, in.GTIDs != "")); err != nil {
		return err
	}
	if err := a.fallbackBack(ctx, plan.Cluster, c); err != nil {
		return err
	}
	return c.SetReadOnly(ctx, false)
}
