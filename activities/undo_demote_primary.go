package activities

import (
	"context"
	"fmt"

	"github.com/baton-db/baton/internal/mysqladmin"
	"github.com/baton-db/baton/internal/topology"
)

// UndoResult says what the undo restored.
type UndoResult struct {
	Reopened     string
	Redemoted    string
	CandidateFix string
}

// UndoDemotePrimary reopens the old primary after a failed switchover. It acts only while
// Consul still names the old primary, so the node it reopens is the one every HAProxy routes
// to; the epoch may have moved (another writer bumped it, which is why the switchover
// stopped). Otherwise it refuses and says what a human must do. A candidate that was
// already promoted is made a replica again.
func (a *Activities) UndoDemotePrimary(ctx context.Context, plan Plan) (UndoResult, error) {
	t, err := a.Topo.Read(ctx, plan.Cluster)
	if err != nil {
		return UndoResult{}, err
	}
	if t.Primary.Name != plan.OldPrimary.Name {
		return UndoResult{}, nonRetryable(ErrUndoUnsafe,
			"cannot undo the demotion of %s: Consul now names %s at epoch %d (planned epoch %d); check both servers with `baton status --cluster %s` and open the one Consul names",
			plan.OldPrimary.Name, t.Primary.Name, t.Epoch, plan.Epoch, plan.Cluster)
	}
	var res UndoResult
	_, f, err := a.cluster(plan.Cluster)
	if err != nil {
		return res, err
	}
	cand, err := a.mysql(plan.Cluster, plan.Candidate)
	if err != nil {
		return res, err
	}
	var st *mysqladmin.ReplicaStatus
	if aerr := a.answers(ctx, f, plan.Candidate); aerr != nil {
		// The candidate died after the demotion: Consul never named it, so nothing routes
		// to it. The old primary is reopened all the same; the candidate is checked later.
		res.CandidateFix = fmt.Sprintf("%s did not answer (%v): before it serves again, check that it is read-only and replicates from %s",
			plan.Candidate.Name, aerr, plan.OldPrimary.Name)
	} else if st, err = cand.ReplicaStatus(ctx); err != nil {
		return res, err
	}
	if res.CandidateFix == "" && (st == nil || !replicatesFrom(st.SourceHost, st.SourcePort, plan.OldPrimary)) {
		// Promoted already: fence it and put it back under the old primary.
		if err := cand.SetReadOnly(ctx, true); err != nil {
			return res, err
		}
		if err := cand.SetSemiSyncPrimary(ctx, false); err != nil {
			return res, err
		}
		if err := cand.PointAt(ctx, a.replSource(plan.OldPrimary), true, a.acks(plan.Cluster, plan.OldPrimary, plan.Candidate)); err != nil {
			return res, err
		}
		res.Redemoted = plan.Candidate.Name
	}
	old, err := a.mysql(plan.Cluster, plan.OldPrimary)
	if err != nil {
		return res, err
	}
	if err := a.waitForAcks(ctx, plan.Cluster, old, true); err != nil {
		return res, err
	}
	if err := a.fallbackBack(ctx, plan.Cluster, old); err != nil {
		return res, err
	}
	// Checked again at the moment it reopens: a failover that preempted the switchover may
	// have revoked the old primary's lease (it does so before it promotes) or published.
	faultPoint(ctx, "reopen")
	if err := a.mayReopen(ctx, plan); err != nil {
		return res, err
	}
	if err := old.SetReadOnly(ctx, false); err != nil {
		return res, err
	}
	res.Reopened = plan.OldPrimary.Name
	// CatchUpReplicas moved the others under the candidate: they follow the old primary again.
	for _, n := range plan.Others {
		if err := a.repointAt(ctx, plan, n); err != nil {
			res.CandidateFix = joinNote(res.CandidateFix, fmt.Sprintf("%s could not be pointed back at %s (%v): do it by hand", n.Name, plan.OldPrimary.Name, err))
		}
	}
	return res, nil
}

// mayReopen refuses to reopen the old primary once Consul names another one, or a failover
// has revoked its lease.
func (a *Activities) mayReopen(ctx context.Context, plan Plan) error {
	t, err := a.Topo.Read(ctx, plan.Cluster)
	if err != nil {
		return err
	}
	if t.Primary.Name != plan.OldPrimary.Name {
		return nonRetryable(ErrUndoUnsafe, "cannot reopen %s: Consul now names %s at epoch %d; check both servers with `baton status --cluster %s`",
			plan.OldPrimary.Name, t.Primary.Name, t.Epoch, plan.Cluster)
	}
	l, _, err := a.Topo.ReadLease(ctx, plan.Cluster)
	if err == nil && l.Node == plan.OldPrimary.Name && l.Revoked != nil {
		return nonRetryable(ErrUndoUnsafe, "cannot reopen %s: %s revoked its lease at %s (a failover replaces it); it stays read-only",
			plan.OldPrimary.Name, l.Revoked.By, l.Revoked.At.Format("15:04:05.000"))
	}
	return nil
}

// repointAt makes a replica that follows the candidate follow the old primary again.
func (a *Activities) repointAt(ctx context.Context, plan Plan, n topology.Node) error {
	c, err := a.mysql(plan.Cluster, n)
	if err != nil {
		return err
	}
	st, err := c.ReplicaStatus(ctx)
	if err != nil || st == nil || !replicatesFrom(st.SourceHost, st.SourcePort, plan.Candidate) {
		return err
	}
	return c.PointAt(ctx, a.replSource(plan.OldPrimary), false, a.acks(plan.Cluster, plan.OldPrimary, n))
}

func joinNote(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}
