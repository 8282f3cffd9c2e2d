package activities

import (
	"context"
	"errors"
	"strings"

	"go.temporal.io/sdk/temporal"
)

// AttachNode points a checked new node at the primary on the path every failover and
// switchover uses to point a replica (reparent: read-only, CHANGE MASTER with Baton's
// replication account and TLS, MASTER_USE_GTID=slave_pos on MariaDB through the flavor
// layer, replication started, both threads seen running). It acknowledges nothing yet
// (Silent, as a rejoining node): until RegisterNode makes it a member it cannot be a
// candidate, so a write only it acknowledged would be lost with the primary. Its semi-sync
// flag is set by the durability policy once it is registered.
func (a *Activities) AttachNode(ctx context.Context, p NewNodePlan) (struct{}, error) {
	if err := a.samePrimary(ctx, p); err != nil {
		return struct{}{}, err
	}
	err := a.reparent(ctx, ReparentInput{Cluster: p.Cluster, Node: p.Node, Primary: p.Primary, Silent: true})
	var app *temporal.ApplicationError
	if errors.As(err, &app) && app.Type() == ErrReplicationBroken {
		// reparent's fix is a rebuild's; a node that never was a member restores a backup.
		msg := strings.TrimSuffix(strings.TrimSuffix(app.Message(), "; fix replication by hand"), ": rebuild "+p.Node.Name+" from "+p.Primary.Name)
		return struct{}{}, nonRetryable(ErrReplicationBroken, "%s. %s", msg, restoreFix(p.Node, p.Primary))
	}
	return struct{}{}, err
}

// samePrimary refuses to go on when Consul's primary or epoch moved since the check: the
// node would follow a primary that is one no more.
func (a *Activities) samePrimary(ctx context.Context, p NewNodePlan) error {
	t, err := a.Topo.Read(ctx, p.Cluster)
	if err != nil {
		return err
	}
	if t.EpochIndex != p.EpochIndex || t.Primary.Name != p.Primary.Name {
		return nonRetryable(ErrEpochChanged, "the topology of %s changed since %s was checked (primary %s at epoch %d, now %s at epoch %d): run `baton node add` again",
			p.Cluster, p.Node.Name, p.Primary.Name, p.Epoch, t.Primary.Name, t.Epoch)
	}
	return nil
}
