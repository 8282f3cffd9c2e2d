package activities

import (
	"context"
	"fmt"
	"time"

	"github.com/baton-db/baton/internal/topology"
)

// ReparentInput points Node at Primary.
type ReparentInput struct {
	Cluster    string
	Node       topology.Node
	Primary    topology.Node
	WasPrimary bool
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
	if st == nil || !replicatesFrom(st.SourceHost, st.SourcePort, in.Primary) || !st.SQLRunning {
		if err := c.SetReadOnly(ctx, true); err != nil {
			return err
		}
		if err := c.SetSemiSyncPrimary(ctx, false); err != nil {
			return err
		}
		// The replication credentials come from Baton's config: MariaDB cannot read them back.
		if err := c.PointAt(ctx, a.replSource(in.Primary), in.WasPrimary && (st == nil || st.SourceHost == ""), a.acks(in.Cluster, in.Primary, in.Node)); err != nil {
			return err
		}
	} else if err := c.SetAcks(ctx, a.acks(in.Cluster, in.Primary, in.Node)); err != nil {
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
		return st.IOConnected() && st.SQLRunning, nil
	})
	if err != nil {
		return fmt.Errorf("%s did not start replicating from %s: %w", in.Node.Name, in.Primary.Name, err)
	}
	return nil
}
