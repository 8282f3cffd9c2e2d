package topology

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"time"

	"github.com/hashicorp/consul/api"
)

// Lease is the primary's write lease (docs/runbook.md §5, "the lease"). The primary's agent
// renews it every tick with a CAS write; a failover revokes it, and the agent answers a
// revocation by fencing its node and writing Fenced. An agent that cannot renew for
// FenceAfter fences its node on its own, unless every replica still follows it (the
// failsafe: Consul alone is down). So a failover that has seen no write to the key for TTL,
// measured on its own clock, knows the old primary fenced itself.
type Lease struct {
	Node  string `json:"node"`
	Epoch uint64 `json:"epoch"`
	// TTLMillis is how long after its last renewal the holder is surely fenced.
	TTLMillis int64 `json:"ttl_ms"`
	// Renewed is the agent's wall clock at the renewal: for people only; no decision
	// compares clocks of two hosts.
	Renewed time.Time   `json:"renewed"`
	Revoked *Revocation `json:"revoked,omitempty"`
	// Fenced is the agent's answer to a revocation (or a lapse): how its node stopped taking writes.
	Fenced string `json:"fenced,omitempty"`
}

// Revocation is a failover's claim on the lease.
type Revocation struct {
	By string    `json:"by"`
	At time.Time `json:"at"`
}

// TTL is the lease's time to live.
func (l Lease) TTL() time.Duration { return time.Duration(l.TTLMillis) * time.Millisecond }

// MaxLeaseTTL is the longest lease an agent may hold (its --lease-ttl is checked against
// it); a failover waits out a lease in Consul that cannot be read for this long.
const MaxLeaseTTL = 10 * time.Second

// ErrLeaseChanged means the lease key changed since it was read.
var ErrLeaseChanged = errors.New("lease changed since it was read (CAS conflict)")

// LeaseKey is where cluster's lease lives: beside the clusters' prefix, like the reach
// reports, so that its renewals never wake the blocking queries on the topology.
func (s *Store) LeaseKey(cluster string) string {
	return path.Join(path.Dir(s.prefix), "lease", cluster)
}

// ReadLease returns the lease and its ModifyIndex (0 and no error: there is none). A lease
// that cannot be parsed is returned as an error that names the key; its index still comes
// back, so a writer can replace it.
func (s *Store) ReadLease(ctx context.Context, cluster string) (Lease, uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, consulTimeout)
	defer cancel()
	k := s.LeaseKey(cluster)
	p, _, err := s.c.KV().Get(k, (&api.QueryOptions{RequireConsistent: true}).WithContext(ctx))
	if err != nil {
		return Lease{}, 0, fmt.Errorf("read %s (cluster %s) from Consul: %w", k, cluster, s.explain(err))
	}
	if p == nil {
		return Lease{}, 0, nil
	}
	var l Lease
	if err := json.Unmarshal(p.Value, &l); err != nil {
		return Lease{}, p.ModifyIndex, fmt.Errorf("%s (cluster %s) is not a lease (%v); the primary's agent replaces it at its next renewal", k, cluster, err)
	}
	return l, p.ModifyIndex, nil
}

// WriteLease writes l if the key's ModifyIndex is still index (0: the key must not exist)
// and returns the new index; ErrLeaseChanged if it moved.
func (s *Store) WriteLease(ctx context.Context, cluster string, l Lease, index uint64) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, consulTimeout)
	defer cancel()
	k := s.LeaseKey(cluster)
	b, _ := json.Marshal(l)
	ok, resp, _, err := s.c.Txn().Txn(api.TxnOps{{KV: &api.KVTxnOp{Verb: api.KVCAS, Key: k, Value: b, Index: index}}},
		(&api.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return 0, fmt.Errorf("write %s (cluster %s) to Consul: %w", k, cluster, s.explain(err))
	}
	if !ok || resp == nil || len(resp.Results) == 0 || resp.Results[0].KV == nil {
		return 0, ErrLeaseChanged
	}
	return resp.Results[0].KV.ModifyIndex, nil
}
