package activities

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/activity"

	"github.com/baton-db/baton/internal/topology"
)

// StopInput asks how the old primary of plan is kept from taking writes; Fence is what
// FenceOldPrimary found.
type StopInput struct {
	Plan  Plan
	Fence FenceResult
}

// StopResult says how the failover knows the old primary takes no writes.
type StopResult struct {
	How string
	// Waited is how long the lease was waited on.
	Waited time.Duration `json:",omitempty"`
}

// leasePoll is how often the failover reads the lease while it waits.
const leasePoll = 50 * time.Millisecond

// StopOldPrimary is the failover rule (docs/runbook.md §3, "the failover rule"): a failover
// promotes only when the old primary cannot take writes. Its host refused the connection
// (mysqld is gone), or Baton fenced it (FenceOldPrimary), or its agent fenced it: the
// failover revokes the old primary's lease and waits until the agent answers, or until
// the lease has gone unwritten for its TTL, by which time the agent fenced it on its own.
// The lease's expiry counts only from the end of the candidate's IO thread (receivingEnded),
// so the agent's failsafe (every replica follows the node) cannot keep the node writable.
func (a *Activities) StopOldPrimary(ctx context.Context, in StopInput) (StopResult, error) {
	return a.stopOldPrimary(ctx, in, "failover "+activity.GetInfo(ctx).WorkflowExecution.ID)
}

func (a *Activities) stopOldPrimary(ctx context.Context, in StopInput, by string) (StopResult, error) {
	plan := in.Plan
	if how := StoppedWithoutLease(in.Fence); how != "" {
		return StopResult{How: how}, nil
	}
	lt := a.Topo
	start := time.Now()
	l, idx, err := revoke(ctx, lt, plan, by)
	switch {
	case errors.Is(err, errNoLease):
		return StopResult{How: err.Error()}, nil
	case err != nil && idx == 0:
		return StopResult{}, err
	}
	ttl := l.TTL()
	if err != nil || ttl <= 0 || ttl > topology.MaxLeaseTTL { // a lease that cannot be read: waited out at the longest
		ttl = topology.MaxLeaseTTL
	}
	changed := time.Now()
	ended := a.receivingEnded(ctx, plan)
	var endedAt time.Time
	t := time.NewTicker(leasePoll)
	defer t.Stop()
	for {
		if endedAt.IsZero() {
			select {
			case <-ended:
				endedAt = time.Now()
			default:
			}
		}
		var since time.Duration // the expiry's clock: from the later of the last change and endedAt
		if !endedAt.IsZero() {
			since = time.Since(changed)
			if endedAt.After(changed) {
				since = time.Since(endedAt)
			}
		}
		if how, done := leaseVerdict(l, since, ttl); done {
			return StopResult{How: how, Waited: time.Since(start).Round(time.Millisecond)}, nil
		}
		select {
		case <-ctx.Done():
			return StopResult{}, ctx.Err()
		case <-t.C:
		}
		if activity.IsActivity(ctx) {
			activity.RecordHeartbeat(ctx)
		}
		cur, i, err := lt.ReadLease(ctx, plan.Cluster)
		if err != nil && i == 0 {
			continue // Consul did not answer: the lease's clock goes on
		}
		if i != idx {
			l, idx, changed = cur, i, time.Now()
		}
	}
}

var errNoLease = errors.New("no lease")

// receivingEnded closes once the candidate's IO thread has ended. WaitRelayLog killed it,
// and until it ends (a semi-sync replica first reaches for its silent source, up to
// rpl_semi_sync_slave_kill_conn_timeout) it still reports itself connected to the old
// primary: the agent's failsafe, which keeps its node writable while every replica follows
// it and Consul is out of reach, would believe it. So the lease's expiry is counted from
// then; an answer of the agent counts at once. A candidate that cannot be asked ends the
// wait: it cannot be promoted either.
func (a *Activities) receivingEnded(ctx context.Context, plan Plan) <-chan struct{} {
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		if c, err := a.mysql(plan.Cluster, plan.Candidate); err == nil {
			_ = c.StopReceiving(ctx) // a STOP returns once the thread has ended
		}
	}()
	return ended
}

// StoppedWithoutLease is the old primary known to take no writes without its lease: Baton
// fenced it, or its host refused the connection.
func StoppedWithoutLease(f FenceResult) string {
	switch {
	case f.Answered:
		return "fenced by Baton: read-only, client sessions ended"
	case strings.Contains(f.Error, "connection refused"):
		return "mysqld is not running: its host refused the connection"
	}
	return ""
}

// leaseVerdict says whether the wait on a revoked lease, unchanged for since, is over.
func leaseVerdict(l topology.Lease, since, ttl time.Duration) (string, bool) {
	switch {
	case l.Fenced != "":
		return "fenced by its agent: " + l.Fenced, true
	case since >= ttl:
		return fmt.Sprintf("its lease expired: not renewed for %s (its TTL) after the revocation; its agent fences its node before that, or is dead", ttl), true
	}
	return "", false
}

// revoke marks plan's old primary's lease revoked by by, unless it is not that node's at
// that epoch (errNoLease, with the reason). A lease that cannot be parsed comes back with
// its index and the parse error: it is revoked by being replaced.
func revoke(ctx context.Context, lt Topology, plan Plan, by string) (topology.Lease, uint64, error) {
	for {
		l, idx, err := lt.ReadLease(ctx, plan.Cluster)
		if err != nil && idx == 0 {
			return l, 0, err
		}
		bad := err
		if bad == nil {
			if why := notHeldBy(l, idx, plan.OldPrimary.Name, plan.Epoch); why != "" {
				return l, 0, fmt.Errorf("%w: %s; the old primary is not known to be fenced", errNoLease, why)
			}
			if l.Revoked != nil || l.Fenced != "" {
				return l, idx, nil // revoked already (an earlier attempt of this step)
			}
		} else {
			l = topology.Lease{Node: plan.OldPrimary.Name, Epoch: plan.Epoch}
		}
		l.Revoked = &topology.Revocation{By: by, At: time.Now().UTC()}
		n, err := lt.WriteLease(ctx, plan.Cluster, l, idx)
		if errors.Is(err, topology.ErrLeaseChanged) {
			continue // its agent renewed it meanwhile
		}
		if err != nil {
			return l, 0, err
		}
		return l, n, bad
	}
}

// notHeldBy says why the lease (at index idx, 0: absent) is not node's at epoch, or "".
func notHeldBy(l topology.Lease, idx uint64, node string, epoch uint64) string {
	switch {
	case idx == 0:
		return "no lease in Consul (its agent runs without --lease-ttl)"
	case l.Node != node:
		return fmt.Sprintf("the lease is %s's, not %s's", l.Node, node)
	case l.Epoch != epoch:
		return fmt.Sprintf("the lease of %s is from epoch %d, not %d", node, l.Epoch, epoch)
	}
	return ""
}
