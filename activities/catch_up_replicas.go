package activities

import (
	"context"
	"fmt"
	"time"
)

// CatchUpResult says which replicas were moved under the candidate.
type CatchUpResult struct {
	Moved []string
}

// CatchUpReplicas moves every other replica behind the candidate and waits until each
// replicates from it, so that after the promotion only the old primary needs reparenting.
func (a *Activities) CatchUpReplicas(ctx context.Context, plan Plan) (CatchUpResult, error) {
	cc, _, err := a.cluster(plan.Cluster)
	if err != nil {
		return CatchUpResult{}, err
	}
	if published, err := a.epochGuard(ctx, plan); err != nil || published {
		return CatchUpResult{}, err
	}
	cand, err := a.mysql(plan.Cluster, plan.Candidate)
	if err != nil {
		return CatchUpResult{}, err
	}
	// Once the others follow the candidate, the candidate is the old primary's only replica.
	// Under cross_zone a same-zone candidate does not acknowledge, and every commit would wait
	// out the semi-sync timeout: it acknowledges until its promotion (a planned switchover
	// with a live primary; the undo resets it).
	if len(plan.Others) > 0 && !a.acks(plan.Cluster, plan.OldPrimary, plan.Candidate) {
		if err := cand.SetAcks(ctx, true); err != nil {
			return CatchUpResult{}, err
		}
	}
	var res CatchUpResult
	for _, r := range plan.Others {
		rc, err := a.mysql(plan.Cluster, r)
		if err != nil {
			return res, err
		}
		st, err := rc.ReplicaStatus(ctx)
		if err != nil {
			return res, err
		}
		if st != nil && replicatesFrom(st.SourceHost, st.SourcePort, plan.Candidate) && st.IOConnected() {
			continue // already there
		}
		// The candidate must hold everything r has before r can follow it. r stops first: a
		// replica that runs on can get ahead again, and a source lacking the GTID it asks for
		// refuses it for good (1236), which no retry of the IO thread fixes.
		if err := rc.StopReplica(ctx); err != nil {
			return res, err
		}
		gtids, err := rc.Executed(ctx)
		if err != nil {
			return res, restart(ctx, rc, r.Name, err)
		}
		stop := keepAlive(ctx, time.Second, "candidate catching up with "+r.Name)
		err = cand.WaitExecuted(ctx, gtids, cc.CatchUpTimeout)
		stop()
		if err != nil {
			return res, restart(ctx, rc, r.Name, nonRetryable(ErrCandidateBehind, "%s did not catch up with %s within %s (%v); nothing was changed: retry when lag is low",
				plan.Candidate.Name, r.Name, cc.CatchUpTimeout, err))
		}
		if err := rc.PointAt(ctx, a.replSource(plan.Candidate), false, cc.Acks(plan.Candidate.Zone, r.Zone)); err != nil {
			return res, err
		}
		err = poll(ctx, 100*time.Millisecond, 10*time.Second, func() (bool, error) {
			st, err := rc.ReplicaStatus(ctx)
			return err == nil && st != nil && st.IOConnected() && st.SQLRunning, nil
		})
		if err != nil {
			return res, fmt.Errorf("%s did not connect to %s after repointing: %w", r.Name, plan.Candidate.Name, err)
		}
		res.Moved = append(res.Moved, r.Name)
	}
	return res, nil
}

// restart starts the replication that was stopped on a replica that stays where it was,
// and returns err as it is (a failed restart is logged: the next attempt starts it again).
func restart(ctx context.Context, rc Server, name string, err error) error {
	if serr := rc.StartReplica(context.WithoutCancel(ctx)); serr != nil {
		logger(ctx).Warn("could not restart replication on a replica left where it was", "node", name, "error", serr)
	}
	return err
}
