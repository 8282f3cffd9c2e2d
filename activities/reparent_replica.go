package activities

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/baton-db/baton/internal/flavor"
	"github.com/baton-db/baton/internal/mysqladmin"
	"github.com/baton-db/baton/internal/topology"
)

// ReparentInput points Node at Primary.
type ReparentInput struct {
	Cluster    string
	Node       topology.Node
	Primary    topology.Node
	WasPrimary bool
	// FromBinlog re-points the node even if it follows Primary already, asking from its own
	// binlog's position (a rejoining node missing its own transactions).
	FromBinlog bool
	// Silent: it acknowledges nothing (semi-sync off) whatever the durability policy says:
	// a rejoining node, until it is readmitted (an acker that is not a member cannot be a
	// candidate, so a write only it acknowledged would be lost with the primary).
	Silent bool `json:",omitempty"`
}

// ReparentOldPrimary makes the demoted primary replicate from the new one.
func (a *Activities) ReparentOldPrimary(ctx context.Context, in ReparentInput) (struct{}, error) {
	in.WasPrimary = true
	return struct{}{}, a.reparent(ctx, in)
}

// ReparentReplica makes a replica replicate from the new primary.
func (a *Activities) ReparentReplica(ctx context.Context, in ReparentInput) (struct{}, error) {
	return struct{}{}, a.reparent(ctx, in)
}

func (a *Activities) reparent(ctx context.Context, in ReparentInput) error {
	c, err := a.mysql(in.Cluster, in.Node)
	if err != nil {
		return err
	}
	st, err := c.ReplicaStatus(ctx)
	if err != nil {
		return err
	}
	acks := a.acks(in.Cluster, in.Primary, in.Node) && !in.Silent
	if in.FromBinlog || st == nil || !replicatesFrom(st.SourceHost, st.SourcePort, in.Primary) || !st.SQLRunning {
		if err := a.wouldDiscard(ctx, in, c, st); err != nil {
			return err
		}
		if err := c.SetReadOnly(ctx, true); err != nil {
			return err
		}
		if err := c.SetSemiSyncPrimary(ctx, false); err != nil {
			return err
		}
		// The replication credentials come from Baton's config: MariaDB cannot read them back.
		fromBinlog := in.FromBinlog || in.WasPrimary && (st == nil || st.SourceHost == "")
		if err := c.PointAt(ctx, a.replSource(in.Primary), fromBinlog, acks); err != nil {
			return err
		}
	} else if err := c.SetAcks(ctx, acks); err != nil {
		return err // it follows already; only whether it acknowledges may be off (a restart resets it)
	}
	err = poll(ctx, 100*time.Millisecond, 15*time.Second, func() (bool, error) {
		st, err := c.ReplicaStatus(ctx)
		if err != nil || st == nil {
			return false, nil
		}
		if st.SQLError != "" {
			return false, nonRetryable(ErrReplicationBroken, "%s cannot apply from %s: %s; fix replication by hand", in.Node.Name, in.Primary.Name, st.SQLError)
		}
		if strings.Contains(st.IOError, "1236") { // the source refuses its position for good: no retry helps
			return false, nonRetryable(ErrReplicationBroken, "%s cannot replicate from %s: %s; the position it asks for is not in %s's binlogs: rebuild %s from %s",
				in.Node.Name, in.Primary.Name, st.IOError, in.Primary.Name, in.Node.Name, in.Primary.Name)
		}
		return st.IOConnected() && st.SQLRunning, nil
	})
	if err != nil {
		return fmt.Errorf("%s did not start replicating from %s: %w", in.Node.Name, in.Primary.Name, err)
	}
	return nil
}

// wouldDiscard refuses to re-point a replica that holds transactions the new primary lacks:
// the re-point throws its relay log away, and they may be acknowledged writes (it may have
// been their only acker). It is left as it is, for a human, and the failover reports it.
func (a *Activities) wouldDiscard(ctx context.Context, in ReparentInput, c Server, st *mysqladmin.ReplicaStatus) error {
	if st == nil || in.WasPrimary {
		return nil
	}
	p, err := a.mysql(in.Cluster, in.Primary)
	if err != nil {
		return err
	}
	raw, err := p.Executed(ctx)
	if err != nil {
		return err
	}
	f := c.Dialect()
	theirs, err := f.ParseGTIDs(raw)
	if err != nil {
		return err
	}
	var holds flavor.GTIDSet
	if raw, err := c.Executed(ctx); err == nil {
		holds, _ = f.ParseGTIDs(raw)
	}
	if st.Received != "" {
		if rec, err := f.ParseGTIDs(st.Received); err == nil {
			holds = flavor.Union(holds, rec)
		}
	}
	if miss := flavor.Lacks(theirs, holds); miss != "" {
		return nonRetryable(ErrWouldDiscard, "%s holds %s, which the new primary %s lacks: re-pointing it would discard them (acknowledged writes may be among them), so it was left as it is; inspect it, then `baton rejoin --cluster %s --host %s` or rebuild it",
			in.Node.Name, miss, in.Primary.Name, in.Cluster, in.Node.Name)
	}
	return nil
}
