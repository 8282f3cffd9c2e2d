package activities

import (
	"context"
	"fmt"
)

// UndoAttach takes back the attach of a new node whose add failed (or was cancelled, by a
// failover that preempts it): its replication is stopped and reset and it stays read-only,
// as before the add, with nothing of it in Consul. A node that Consul names a member (its
// registration went through, and a later part failed) is left as it is: it is a replica of
// the cluster, and `baton node remove` takes it out.
func (a *Activities) UndoAttach(ctx context.Context, p NewNodePlan) (UndoAttachResult, error) {
	t, err := a.Topo.Read(ctx, p.Cluster)
	if err != nil {
		return UndoAttachResult{}, err
	}
	if m, ok := t.Find(p.Node.Name); ok && m.Addr() == p.Node.Addr() {
		return UndoAttachResult{Note: fmt.Sprintf("%s is a member of %s already (registered): left as it is; `baton node remove --cluster %s --host %s` takes it out",
			p.Node.Name, p.Cluster, p.Cluster, p.Node.Name)}, nil
	}
	c, err := a.mysql(p.Cluster, p.Node)
	if err != nil {
		return UndoAttachResult{}, err
	}
	if err := c.SetReadOnly(ctx, true); err != nil {
		return UndoAttachResult{}, err
	}
	st, err := c.ReplicaStatus(ctx)
	if err != nil {
		return UndoAttachResult{}, err
	}
	if st != nil {
		if err := c.StopAndResetReplication(ctx); err != nil {
			return UndoAttachResult{}, err
		}
	}
	return UndoAttachResult{Detached: true, Note: fmt.Sprintf("%s was detached (replication stopped and reset) and left read-only; nothing of it is in Consul", p.Node.Name)}, nil
}
