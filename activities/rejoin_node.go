package activities

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/baton-db/baton/internal/flavor"
	"github.com/baton-db/baton/internal/topology"
)

// RejoinInput names an evicted node to bring back as a replica.
type RejoinInput struct {
	Cluster string
	Host    string // node name or host:port
}

// RejoinNode brings an evicted node back as a replica of the current primary, after
// checking that it holds no transaction the primary lacks. Otherwise it refuses and says
// exactly what is wrong; nothing is changed.
func (a *Activities) RejoinNode(ctx context.Context, in RejoinInput) (struct{}, error) {
	if _, _, err := a.cluster(in.Cluster); err != nil {
		return struct{}{}, err
	}
	t, err := a.Topo.Read(ctx, in.Cluster)
	if err != nil {
		return struct{}{}, err
	}
	var node *topology.Node
	for _, e := range t.Evicted {
		if e.Node.Name == in.Host || e.Node.Addr() == in.Host {
			n := e.Node
			node = &n
		}
	}
	if node == nil {
		if n, ok := t.Find(in.Host); ok {
			return struct{}{}, nonRetryable(ErrNotEvicted, "%s is already a member of %s (primary %s); nothing to rejoin", n.Name, in.Cluster, t.Primary.Name)
		}
		return struct{}{}, nonRetryable(ErrUnknownNode, "%q is not an evicted node of %s; evicted: %s", in.Host, in.Cluster, evictedNames(t))
	}
	// A fresh connection: pooled ones to a node that was cut off or killed are stale.
	_, f, err := a.cluster(in.Cluster)
	if err != nil {
		return struct{}{}, err
	}
	c, err := a.freshClient(f, *node, a.Config.MySQL.ConnectTimeout, a.Config.MySQL.ReadTimeout)
	if err != nil {
		return struct{}{}, err
	}
	defer c.Close()
	if err := ownServerID(ctx, c, *node); err != nil {
		return struct{}{}, err
	}
	a.forget(in.Cluster, *node)
	mine, err := c.Executed(ctx)
	if err != nil {
		return struct{}{}, nonRetryable(ErrUnreachable, "%s does not answer (%v); start it, then run rejoin again", describe(*node), err)
	}
	p, err := a.mysql(in.Cluster, t.Primary)
	if err != nil {
		return struct{}{}, err
	}
	theirs, err := p.Executed(ctx)
	if err != nil {
		return struct{}{}, fmt.Errorf("primary %s: %w", t.Primary.Name, err)
	}
	ms, err1 := c.Dialect().ParseGTIDs(mine)
	ps, err2 := c.Dialect().ParseGTIDs(theirs)
	if err1 != nil || err2 != nil {
		return struct{}{}, nonRetryable(ErrBadGTIDs, "cannot compare GTIDs of %s (%v) and %s (%v)", node.Name, err1, t.Primary.Name, err2)
	}
	if miss := flavor.Lacks(ps, ms); miss != "" {
		return struct{}{}, nonRetryable(ErrErrantGTIDs, "%s holds transactions the primary %s lacks: %s. %s Nothing was changed: inspect them with mysqlbinlog, then rebuild %s from a backup of %s",
			node.Name, t.Primary.Name, miss, whyErrant(t, *node), node.Name, t.Primary.Name)
	}
	own := flavor.MissingOwn(ms, ps, node.ServerID)
	if own != "" && t.HasServerID(borrowedID(node.ServerID)) {
		return struct{}{}, nonRetryable(ErrMissingOwnGTIDs,
			"%s lacks %s, which it logged itself before its crash recovery truncated it, and which %s has; it cannot receive them under server_id %d, which another node of %s has. Nothing was changed: rebuild %s from %s, then rejoin it",
			node.Name, own, t.Primary.Name, borrowedID(node.ServerID), in.Cluster, node.Name, t.Primary.Name)
	}
	if own != "" {
		// A replica skips the transactions that carry its own server_id: it receives these
		// under a borrowed one, then takes its own back.
		if err := c.SetServerID(ctx, borrowedID(node.ServerID)); err != nil {
			return struct{}{}, err
		}
	}
	// Missing own transactions, it asks the primary from its own binlog's position: a node
	// that once skipped its own events has a gtid_slave_pos already past them.
	if err := a.reparent(ctx, ReparentInput{Cluster: in.Cluster, Node: *node, Primary: t.Primary, WasPrimary: true, FromBinlog: own != "", Silent: true}); err != nil {
		return struct{}{}, err // a retry, or the next rejoin, gives the node its server_id back
	}
	if own != "" {
		err := a.receiveOwn(ctx, in.Cluster, c, *node, t.Primary, own, theirs)
		// A session keeps the server_id it started with: the pooled ones opened meanwhile
		// would go on writing (and reading @@server_id) as the borrowed one.
		a.forget(in.Cluster, *node)
		if err != nil {
			return struct{}{}, err
		}
	}
	faultPoint(ctx, "pointed")
	// A primary promoted as the lone survivor runs without semi-sync; with a replica back
	// that may acknowledge (under cross_zone, one in another zone), acknowledged writes must
	// again wait for one, or the next failover can lose them.
	// It acknowledges only once it is a member again, and so a candidate (Silent above).
	if err := a.Topo.Readmit(ctx, in.Cluster, t.EpochIndex, *node); err != nil {
		return struct{}{}, err
	}
	if a.acks(in.Cluster, t.Primary, *node) {
		if err := c.SetAcks(ctx, true); err != nil { // readmitted: the detector's acks pass sets it right later
			logger(ctx).Warn("readmitted, but it does not acknowledge yet", "node", node.Name, "error", err)
		}
	}
	followers := append(slices.Clone(t.Replicas), *node)
	acker := slices.ContainsFunc(followers, func(n topology.Node) bool { return a.acks(in.Cluster, t.Primary, n) })
	if err := a.waitForAcks(ctx, in.Cluster, p, acker); err != nil {
		return struct{}{}, fmt.Errorf("%s is readmitted, but primary %s: %w", node.Name, t.Primary.Name, err)
	}
	return struct{}{}, nil
}

func evictedNames(t topology.Topology) string {
	if len(t.Evicted) == 0 {
		return "none"
	}
	var ns []topology.Node
	for _, e := range t.Evicted {
		ns = append(ns, e.Node)
	}
	return names(ns)
}

// borrowedID is the server_id a node replicates under while it receives transactions that
// carry its own.
func borrowedID(id uint32) uint32 { return id | 1<<31 }

// ownServerID gives a node its server_id back if a rejoin left it with the borrowed one.
func ownServerID(ctx context.Context, c Server, n topology.Node) error {
	sid, err := c.ServerID(ctx)
	if err != nil || sid != borrowedID(n.ServerID) {
		return nil // a node that does not answer is reported by the next step
	}
	if err := c.StopReplica(ctx); err != nil {
		return err
	}
	return c.SetServerID(ctx, n.ServerID)
}

// receiveOwn waits until a node replicating under the borrowed server_id holds everything
// the primary held at the check (own among it), then gives it its own server_id back.
func (a *Activities) receiveOwn(ctx context.Context, cluster string, c Server, n, primary topology.Node, own, theirs string) error {
	cc, _, err := a.cluster(cluster)
	if err != nil {
		return err
	}
	timeout := cc.CatchUpTimeout
	stop := keepAlive(ctx, time.Second, n.Name+" receiving "+own+" back")
	werr := c.WaitExecuted(ctx, theirs, timeout)
	stop()
	// Under its own server_id from here on: stopped first, so that nothing of its own that
	// arrives later is skipped.
	if err := c.StopReplica(ctx); err != nil {
		return err
	}
	if err := c.SetServerID(ctx, n.ServerID); err != nil {
		return err
	}
	if werr != nil {
		return nonRetryable(ErrMissingOwnGTIDs, "%s did not receive %s back from %s within %s (%v); it is left stopped, and evicted: check its replication, then rejoin it again",
			n.Name, own, primary.Name, timeout, werr)
	}
	// The wait follows gtid_slave_pos, not what the node executed: it proves nothing about
	// its own transactions. Read them again.
	if still, err := a.stillMissingOwn(ctx, c, n, theirs); err != nil || still != "" {
		if err != nil {
			return err
		}
		return nonRetryable(ErrMissingOwnGTIDs, "%s still lacks %s after replicating from %s: they cannot arrive by replication (it has skipped its own events before). It is left stopped, and evicted: rebuild %s from %s, then rejoin it",
			n.Name, still, primary.Name, n.Name, primary.Name)
	}
	if err := c.StartReplica(ctx); err != nil {
		return err
	}
	logger(ctx).Info("received back the transactions its crash recovery truncated", "node", n.Name, "gtids", own, "from", primary.Name)
	return nil
}

// whyErrant says what a rejoining node's extra transactions can be, from how it left: an
// old primary's are writes the crash cut off before any replica acknowledged them; a
// replica's were received from the old primary and never reached the new one, and were
// acknowledged if it was an acknowledging replica: they may be the only copy of
// acknowledged writes.
func whyErrant(t topology.Topology, n topology.Node) string {
	for _, e := range t.Evicted {
		if e.Node.Name == n.Name && strings.HasPrefix(e.Reason, "primary died") {
			return "It was the primary: the new primary never received them. They were cut off by its crash before any replica acknowledged them, taken while it was cut off, or acknowledged by a replica the failover could not use (the failover's result says so in LeftOut)."
		}
	}
	return "It was a replica when it left: it received them from the old primary, and the new primary never did. If it acknowledged commits (semi-sync), they may be the only copy of acknowledged writes: recover them before any rebuild."
}

// stillMissingOwn reads the node's executed set again and says which of its own
// transactions in theirs (the primary's set at the check) it still lacks.
func (a *Activities) stillMissingOwn(ctx context.Context, c Server, n topology.Node, theirs string) (string, error) {
	raw, err := c.Executed(ctx)
	if err != nil {
		return "", err
	}
	mine, err1 := c.Dialect().ParseGTIDs(raw)
	ps, err2 := c.Dialect().ParseGTIDs(theirs)
	if err1 != nil || err2 != nil {
		return "", nonRetryable(ErrBadGTIDs, "cannot compare GTIDs of %s (%v, %v)", n.Name, err1, err2)
	}
	return flavor.MissingOwn(mine, ps, n.ServerID), nil
}
