package detect

import (
	"context"
	"time"

	"github.com/baton-db/baton/internal/mysqladmin"
	"github.com/baton-db/baton/internal/topology"
)

// busy is what a Starter also answers when it can: whether a switchover, failover or
// rejoin of the cluster is open (it owns the acknowledgement settings until it ends).
type busy interface {
	Busy(ctx context.Context, cluster string) (bool, error)
}

// ackView is what the fence pass read of a replica's acknowledgement path: whether it
// follows the primary, and whether it acknowledges.
type ackView struct {
	node      topology.Node
	following bool
	acks      bool
}

func ackViewOf(ctx context.Context, c *mysqladmin.Client, n, primary topology.Node) ackView {
	st, err1 := c.ReplicaStatus(ctx)
	s, err2 := c.SemiSync(ctx)
	following := err1 == nil && err2 == nil && st != nil && st.SourceHost == primary.IPv4 && st.SourcePort == primary.Port
	return ackView{node: n, following: following, acks: s.ReplicaEnabled}
}

// repairAcks keeps the acknowledgement paths what the durability policy says while no
// operation runs: a replica that follows the primary acknowledges exactly when the policy
// says so (and then the primary waits for an ack). A replica restarted or rebuilt comes
// back with its option file's setting, which may be wrong for its zone: a same-zone replica
// that acknowledges under cross_zone lets a write be acknowledged with no copy in another
// zone, and a replica in another zone that does not leaves the primary to fall back to
// asynchronous commits. It works from what the fence pass read over the replicas, and asks
// Temporal only when something differs.
func (w *Watcher) repairAcks(ctx context.Context, t topology.Topology, views []ackView) {
	var fixes []ackView
	for _, v := range views {
		if !v.following { // not following the primary: a failover or switchover moves it
			continue
		}
		if want := w.cc.Acks(t.Primary.Zone, v.node.Zone); v.acks != want {
			fixes = append(fixes, ackView{node: v.node, following: true, acks: want})
		}
	}
	if len(fixes) == 0 {
		return
	}
	if !w.idle(ctx, t.Cluster, false) {
		return // without Temporal the watcher cannot tell a switchover's own setting from a wrong one
	}
	now, err := w.consul.Read(ctx, t.Cluster)
	if err != nil || now.Epoch != t.Epoch || now.Primary.Addr() != t.Primary.Addr() {
		return
	}
	for _, f := range fixes {
		w.setAcks(ctx, t.Cluster, f.node, f.acks)
		if f.acks {
			w.setPrimaryAcks(ctx, t)
		}
	}
}

// idle reports whether no switchover, failover or rejoin of the cluster is open (each owns
// the semi-sync settings until it ends); unknown (no Temporal to ask) is unknownIdle.
func (w *Watcher) idle(ctx context.Context, cluster string, unknownIdle bool) bool {
	b, ok := w.starter.(busy)
	if !ok {
		return unknownIdle
	}
	running, err := b.Busy(ctx, cluster)
	return err == nil && !running
}

// onNode runs set on a fresh admin connection to n, bounded to 5 s.
func (w *Watcher) onNode(ctx context.Context, n topology.Node, set func(context.Context, *mysqladmin.Client) error) error {
	c, err := mysqladmin.Open(n.Addr(), w.flavor, w.opts)
	if err != nil {
		return err
	}
	defer c.Close()
	actx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return set(actx, c)
}

func (w *Watcher) setAcks(ctx context.Context, cluster string, n topology.Node, acks bool) {
	err := w.onNode(ctx, n, func(ctx context.Context, c *mysqladmin.Client) error { return c.SetAcks(ctx, acks) })
	if err != nil {
		w.log.Error("an acknowledgement path differs from the durability policy, and repairing it failed", "cluster", cluster, "node", n.Name, "acks", acks, "error", err)
		return
	}
	w.log.Warn("repaired an acknowledgement path: the replica's semi-sync setting differed from the durability policy", "cluster", cluster, "node", n.Name, "acks", acks, "durability", string(w.cc.Durability))
}

func (w *Watcher) setPrimaryAcks(ctx context.Context, t topology.Topology) {
	err := w.onNode(ctx, t.Primary, func(ctx context.Context, c *mysqladmin.Client) error { return c.SetSemiSyncPrimary(ctx, true) })
	if err != nil {
		w.log.Error("the primary does not wait for acknowledgements although a replica may give one, and repairing it failed", "cluster", t.Cluster, "primary", t.Primary.Name, "error", err)
		return
	}
	w.log.Warn("repaired an acknowledgement path: the primary waits for acknowledgements again (a replica that may acknowledge follows it)", "cluster", t.Cluster, "primary", t.Primary.Name)
}
