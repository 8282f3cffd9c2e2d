package activities

import (
	"context"
	"errors"

	"github.com/baton-db/baton/internal/topology"
)

// PublishInput is the new topology and the epoch it was planned at.
type PublishInput struct {
	Cluster    string
	Epoch      uint64
	EpochIndex uint64
	Primary    topology.Node
	Replicas   []topology.Node
	Evict      []topology.Eviction
	// Record, if set, is written as last_<kind> in the same transaction: a failover that
	// fails after publishing still starts its anti-flap period.
	Record *topology.Record `json:",omitempty"`
}

// PublishResult is the new epoch.
type PublishResult struct {
	Epoch uint64
}

// PublishTopology writes the new primary and replica set to Consul in one transaction,
// with check-and-set on the epoch it read, and bumps the epoch (the fencing token).
func (a *Activities) PublishTopology(ctx context.Context, in PublishInput) (PublishResult, error) {
	t, err := a.Topo.Read(ctx, in.Cluster)
	if err != nil {
		return PublishResult{}, err
	}
	if t.Epoch > in.Epoch && t.Primary.Name == in.Primary.Name {
		return PublishResult{Epoch: t.Epoch}, nil // published by an earlier attempt
	}
	if t.Epoch != in.Epoch {
		return PublishResult{}, nonRetryable(ErrEpochChanged,
			"Consul epoch of %s is %d, planned at %d, and names %s: someone else changed the topology; nothing was published",
			in.Cluster, t.Epoch, in.Epoch, t.Primary.Name)
	}
	epoch, err := a.Topo.Publish(ctx, in.Cluster, t.Epoch, t.EpochIndex, topology.Change{
		Primary: in.Primary, Replicas: in.Replicas, Evict: in.Evict, Record: in.Record})
	if errors.Is(err, topology.ErrConflict) {
		return PublishResult{}, err // retried: the next attempt re-reads
	}
	return PublishResult{Epoch: epoch}, err
}
