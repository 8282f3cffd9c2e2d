package activities

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/baton-db/baton/internal/mysqladmin"
	"github.com/baton-db/baton/internal/topology"
)

// catchUpPoll is how long one look at a catching-up node waits for its target: the step
// reads the replication threads and heartbeats between looks.
const catchUpPoll = time.Second

// minLook is the least time between two looks.
const minLook = 200 * time.Millisecond

// primarySilence is how long the primary may go unanswered while a new node catches up:
// a dead primary's failover cannot start while the node add runs, so it ends then.
const primarySilence = 2 * time.Second

// WaitCaughtUp waits until the attached node runs both replication threads and holds the
// primary's transactions. It waits in rounds: each round's target is what the primary had
// executed when the round began, and a round reached within the cluster's catchup_timeout
// ends the wait (the node is then at most that far behind). A node restored from an older
// backup may need longer rounds to work off its backlog: it may, as long as it makes
// progress (no progress for catchup_timeout fails the step) and the whole wait stays within
// MaxCatchUp. A replication error that no wait fixes (a purged binlog, 1236; a SQL thread
// stopped on an error) fails at once, with the server's error and the fix; so does a primary
// that stops answering. The workflow then undoes the attach.
func (a *Activities) WaitCaughtUp(ctx context.Context, p NewNodePlan) (NodeCatchUp, error) {
	node, err := a.mysql(p.Cluster, p.Node)
	if err != nil {
		return NodeCatchUp{}, err
	}
	primary, err := a.mysql(p.Cluster, p.Primary)
	if err != nil {
		return NodeCatchUp{}, err
	}
	target, err := primary.Executed(ctx)
	if err != nil {
		return NodeCatchUp{}, fmt.Errorf("primary %s: %w", p.Primary.Name, err)
	}
	start := time.Now()
	cu := catchUp{limit: p.CatchUpTimeout, max: p.MaxCatchUp, start: start, round: start, progressAt: start}
	res := NodeCatchUp{Rounds: 1}
	var lastIO, lastWait string
	var silentSince time.Time
	var look time.Time
	for {
		if d := time.Since(look); d < minLook { // a wait that returns at once is not repeated at once
			select {
			case <-ctx.Done():
			case <-time.After(minLook - d):
			}
		}
		look = time.Now()
		if err := ctx.Err(); err != nil {
			return res, err
		}
		st, err := node.ReplicaStatus(ctx)
		if err != nil {
			return res, fmt.Errorf("%s: %w", p.Node.Name, err) // retried: the attach stands
		}
		if err := attachVerdict(p.Node, p.Primary, st); err != nil {
			return res, err
		}
		if st.IOError != "" {
			lastIO = st.IOError
		}
		// Asked every look: a replica's IO thread may take slave_net_timeout to notice.
		if perr := primary.Ping(ctx); perr != nil {
			if silentSince.IsZero() {
				silentSince = time.Now()
			}
			if time.Since(silentSince) >= primarySilence {
				return res, nonRetryable(ErrUnreachable, "the primary %s stopped answering (%v) while %s caught up: the node add stops here, so that a failover may run", p.Primary.Name, perr, p.Node.Name)
			}
		} else {
			silentSince = time.Time{}
		}
		werr := node.WaitExecuted(ctx, target, catchUpPoll)
		if werr != nil && !errors.Is(werr, mysqladmin.ErrWaitTimeout) {
			lastWait = werr.Error()
		}
		executed, _ := node.Executed(ctx)
		now := time.Now()
		heartbeat(ctx, fmt.Sprintf("%s catching up with %s: round %d, %s", p.Node.Name, p.Primary.Name, res.Rounds, now.Sub(start).Round(time.Second)))
		switch cu.next(now, executed, werr == nil && st.IOConnected() && st.SQLRunning) {
		case caughtUp:
			res.Took = now.Sub(start)
			logger(ctx).Info("new node caught up", "node", p.Node.Name, "primary", p.Primary.Name, "took", res.Took, "rounds", res.Rounds)
			return res, nil
		case nextRound:
			if target, err = primary.Executed(ctx); err != nil {
				return res, fmt.Errorf("primary %s: %w", p.Primary.Name, err)
			}
			res.Rounds++
		case stalled:
			return res, nonRetryable(ErrNotCaughtUp, "%s made no progress catching up with %s for %s (catchup_timeout; replication IO %s%s%s): check its replication, or %s",
				p.Node.Name, p.Primary.Name, p.CatchUpTimeout, st.IORunning, prefixed(": ", lastIO), prefixed("; wait: ", lastWait), restoreFix(p.Node, p.Primary))
		case tooLong:
			return res, nonRetryable(ErrNotCaughtUp, "%s did not catch up with %s within %s (--max-catchup; %d round(s) of catchup_timeout %s): it applies slower than the primary writes, or its backup is too old: %s",
				p.Node.Name, p.Primary.Name, p.MaxCatchUp, res.Rounds, p.CatchUpTimeout, restoreFix(p.Node, p.Primary))
		}
	}
}

func prefixed(prefix, s string) string {
	if s == "" {
		return ""
	}
	return prefix + s
}

// attachVerdict reads a new node's replication while it catches up: nil while a wait may
// still get it there, or the error no wait fixes (non-retryable, with the server's error
// and the fix). A connecting IO thread is waited for (the stall rule bounds it).
func attachVerdict(n, primary topology.Node, st *mysqladmin.ReplicaStatus) error {
	switch {
	case st == nil || st.SourceHost == "":
		return nonRetryable(ErrReplicationBroken, "%s does not replicate any more: its replication was reset meanwhile (by hand?); run `baton node add` again", n.Name)
	case !replicatesFrom(st.SourceHost, st.SourcePort, primary):
		return nonRetryable(ErrReplicationBroken, "%s replicates from %s:%d now, not from the primary %s: it was re-pointed meanwhile (by hand?)", n.Name, st.SourceHost, st.SourcePort, describe(primary))
	case st.SQLError != "":
		return nonRetryable(ErrReplicationBroken, "%s cannot apply what %s sends: %s. Its data is not a copy of the primary's: %s", n.Name, primary.Name, st.SQLError, restoreFix(n, primary))
	case strings.Contains(st.IOError, "1236"):
		return nonRetryable(ErrReplicationBroken, "%s cannot replicate from %s: %s. What it lacks is no longer in %s's binlogs (purged): %s", n.Name, primary.Name, st.IOError, primary.Name, restoreFix(n, primary))
	case st.IORunning == "No" || st.IORunning == "":
		return nonRetryable(ErrReplicationBroken, "%s's replication IO thread stopped%s: check its replication, then run `baton node add` again", n.Name, prefixed(": ", st.IOError))
	case !st.SQLRunning:
		return nonRetryable(ErrReplicationBroken, "%s's replication SQL thread stopped (by hand?): run `baton node add` again", n.Name)
	}
	return nil
}

// catchUp follows a new node's catch-up, round by round (pure: WaitCaughtUp feeds it each
// look). Progress is any change of the node's executed set.
type catchUp struct {
	limit, max               time.Duration // catchup_timeout; MaxCatchUp
	start, round, progressAt time.Time
	seen                     string
}

type catchUpStep int

const (
	keepWaiting catchUpStep = iota
	caughtUp                // this round's target reached within catchup_timeout
	nextRound               // reached, but later: a new round with the primary's set now
	stalled                 // no progress for catchup_timeout
	tooLong                 // not caught up within MaxCatchUp
)

// next judges one look at the node at now: what it has executed, and whether it holds this
// round's target with both threads running.
func (c *catchUp) next(now time.Time, executed string, reached bool) catchUpStep {
	if executed != c.seen {
		c.seen, c.progressAt = executed, now
	}
	switch {
	case reached && now.Sub(c.round) <= c.limit:
		return caughtUp
	case now.Sub(c.start) > c.max:
		return tooLong
	case reached:
		c.round, c.progressAt = now, now
		return nextRound
	case now.Sub(c.progressAt) > c.limit:
		return stalled
	}
	return keepWaiting
}
