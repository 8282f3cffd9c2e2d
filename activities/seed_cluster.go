package activities

import (
	"context"
	"errors"
	"time"

	"github.com/baton-db/baton/internal/topology"
)

// SeedClusterInput writes a discovered cluster to Consul: its topology, then its catalog
// entry (Settings, By, At).
type SeedClusterInput struct {
	Cluster  string
	Primary  topology.Node
	Replicas []topology.Node
	Settings map[string]any
	By       string
	// At is when the add was decided (the workflow's clock): the entry's time, the same in
	// every attempt.
	At time.Time
}

// SeedResult says what SeedCluster wrote.
type SeedResult struct {
	// Entered: the catalog entry is this add's; AlreadyInCatalog: another was there (entered
	// from a config file), and is kept.
	Entered          bool `json:",omitempty"`
	AlreadyInCatalog bool `json:",omitempty"`
	// EnterError: the topology was seeded but the catalog entry could not be written.
	EnterError string `json:",omitempty"`
}

// SeedCluster writes the new cluster's topology at epoch 1 (topology.Store.Seed: create-only,
// in one transaction; a cluster Consul already has is refused, ErrClusterExists), then its
// catalog entry (create-only: an entry already there, entered from a config file, is kept).
// Once the entry is in, the detectors watch the cluster, the workers serve it and the remote
// HAProxies route it. A retried attempt finds its own earlier writes and goes on.
func (a *Activities) SeedCluster(ctx context.Context, in SeedClusterInput) (SeedResult, error) {
	var out SeedResult
	s, err := a.clusterStore()
	if err != nil {
		return out, err
	}
	if err := s.Seed(ctx, in.Cluster, in.Primary, in.Replicas); errors.Is(err, topology.ErrExists) {
		if !a.seededAsPlanned(ctx, s, in) {
			return out, nonRetryable(ErrClusterExists, "%v; nothing was written", err) // never overwritten
		}
	} else if err != nil {
		return out, err
	}
	e := topology.CatalogEntry{Settings: in.Settings, By: in.By, At: in.At.UTC(), Change: "add"}
	switch err := s.PutCatalogEntry(ctx, in.Cluster, e, 0); {
	case errors.Is(err, topology.ErrChanged):
		if old, ok, _ := s.CatalogEntry(ctx, in.Cluster); ok && old.Change == e.Change && old.By == e.By && old.At.Equal(e.At) {
			out.Entered = true // this add's own entry, written by an earlier attempt
		} else {
			out.AlreadyInCatalog = true
		}
	case err != nil:
		out.EnterError = err.Error()
	default:
		out.Entered = true
	}
	return out, nil
}

// seededAsPlanned says whether the cluster in Consul is the one this add seeds, untouched:
// an earlier attempt of the same step wrote it.
func (a *Activities) seededAsPlanned(ctx context.Context, s ClusterStore, in SeedClusterInput) bool {
	t, err := s.Read(ctx, in.Cluster)
	if err != nil || t.Epoch != 1 || t.Primary != in.Primary || len(t.Replicas) != len(in.Replicas) {
		return false
	}
	for _, r := range in.Replicas {
		if n, ok := t.Find(r.Name); !ok || n != r {
			return false
		}
	}
	return true
}
