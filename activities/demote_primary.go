package activities

import (
	"context"
	"errors"
	"time"

	"github.com/baton-db/baton/internal/mysqladmin"
)

// DemoteResult is the old primary's final position and the sessions that were ended.
type DemoteResult struct {
	GTIDs         string
	KilledClients int
}

// DemotePrimary stops writes on the old primary, ends the client sessions still open on
// it, and waits until the candidate has applied every GTID the old primary executed.
// If the candidate does not catch up in time it fails non-retryably and the workflow
// undoes the demotion.
func (a *Activities) DemotePrimary(ctx context.Context, plan Plan) (DemoteResult, error) {
	cc, _, err := a.cluster(plan.Cluster)
	if err != nil {
		return DemoteResult{}, err
	}
	if published, err := a.epochGuard(ctx, plan); err != nil || published {
		return DemoteResult{}, err
	}
	old, err := a.mysql(plan.Cluster, plan.OldPrimary)
	if err != nil {
		return DemoteResult{}, err
	}
	if err := old.SetReadOnly(ctx, true); err != nil {
		return DemoteResult{}, err
	}
	killed, err := a.endClientSessions(ctx, old)
	if err != nil {
		return DemoteResult{}, err
	}
	gtids, err := old.Executed(ctx)
	if err != nil {
		return DemoteResult{}, err
	}
	cand, err := a.mysql(plan.Cluster, plan.Candidate)
	if err != nil {
		return DemoteResult{}, err
	}
	stop := keepAlive(ctx, time.Second, "waiting for "+plan.Candidate.Name)
	err = cand.WaitExecuted(ctx, gtids, cc.CatchUpTimeout)
	stop()
	if errors.Is(err, mysqladmin.ErrWaitTimeout) {
		return DemoteResult{GTIDs: gtids}, nonRetryable(ErrCandidateBehind,
			"%s did not apply %s within %s; the demotion of %s will be undone", plan.Candidate.Name, gtids, cc.CatchUpTimeout, plan.OldPrimary.Name)
	}
	if err != nil {
		return DemoteResult{GTIDs: gtids}, err
	}
	return DemoteResult{GTIDs: gtids, KilledClients: killed}, nil
}

// endClientSessions kills every session but replication's and Baton's, so pooled
// application connections reconnect through HAProxy instead of staying on a read-only server.
func (a *Activities) endClientSessions(ctx context.Context, c Server) (int, error) {
	return c.EndClientSessions(ctx, a.excludedUsers())
}
