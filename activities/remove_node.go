package activities

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/baton-db/baton/internal/topology"
)

// RemoveInput takes a replica out of a running cluster (`baton node remove`).
type RemoveInput struct {
	Cluster string
	Host    string // node name or host:port
	By      string
	Reason  string
	// Force removes the last replica that may acknowledge commits under the durability
	// policy (the primary then acknowledges alone: degraded, and recorded).
	Force bool
}

// RemoveNode drains a replica from the reader pool and detaches it: Consul drops it from
// the replicas (with CAS on the epoch; it is recorded as evicted, with who and why, so no
// choice considers it and `baton rejoin` takes it back), then its replication is stopped
// and reset, and it stays read-only. The primary is refused (switch over first), and so is
// the last replica that may acknowledge, unless forced.
func (a *Activities) RemoveNode(ctx context.Context, in RemoveInput) (string, error) {
	if _, _, err := a.cluster(in.Cluster); err != nil {
		return "", err
	}
	t, err := a.Topo.Read(ctx, in.Cluster)
	if err != nil {
		return "", err
	}
	n, ok := t.Find(in.Host)
	switch {
	case !ok:
		return "", nonRetryable(ErrUnknownNode, "%q is not a member of %s (primary %s, replicas %s); nothing was changed", in.Host, in.Cluster, t.Primary.Name, names(t.Replicas))
	case n.Name == t.Primary.Name:
		return "", nonRetryable(ErrNodeIsPrimary, "%s is the primary of %s: switch over first (`baton switchover --cluster %s`), then remove it; nothing was changed", n.Name, in.Cluster, in.Cluster)
	}
	if a.acks(in.Cluster, t.Primary, n) && !in.Force {
		others := slices.DeleteFunc(slices.Clone(t.Replicas), func(r topology.Node) bool { return r.Name == n.Name })
		if !slices.ContainsFunc(others, func(r topology.Node) bool { return a.acks(in.Cluster, t.Primary, r) }) {
			return "", nonRetryable(ErrLastAcker, "%s is the only replica of %s that may acknowledge commits under its durability policy: without it the primary acknowledges alone. Add or rejoin another first, or pass --force; nothing was changed", n.Name, in.Cluster)
		}
	}
	e := topology.Eviction{Node: n, Reason: fmt.Sprintf("removed by %s: %s; `baton rejoin` takes it back", in.By, in.Reason), Epoch: t.Epoch, At: time.Now().UTC()}
	if err := a.Topo.Detach(ctx, in.Cluster, t.EpochIndex, e); err != nil {
		return "", err
	}
	c, err := a.mysql(in.Cluster, n)
	if err != nil {
		return "", err
	}
	for _, step := range []func(context.Context) error{
		func(ctx context.Context) error { return c.SetAcks(ctx, false) },
		c.StopAndResetReplication,
		func(ctx context.Context) error { return c.SetReadOnly(ctx, true) },
	} {
		if err := step(ctx); err != nil {
			return "", fmt.Errorf("%s is out of the pool in Consul, but detaching it failed (%w): stop its replication by hand", n.Name, err)
		}
	}
	return fmt.Sprintf("%s is out of %s's reader pool and detached (replication stopped, read-only); `baton rejoin --cluster %s --host %s` takes it back", n.Name, in.Cluster, in.Cluster, n.Name), nil
}
