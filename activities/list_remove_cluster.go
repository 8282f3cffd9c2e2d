package activities

import (
	"context"
	"slices"
	"sync"
)

// ClusterListEntry is one cluster of `baton cluster list` (and its -o json).
type ClusterListEntry struct {
	Cluster   string   `json:"cluster"`
	Epoch     uint64   `json:"epoch,omitempty"`
	Primary   string   `json:"primary,omitempty"`
	PrimaryAt string   `json:"primary_addr,omitempty"`
	Replicas  []string `json:"replicas"`
	// InCatalog: the fleet runs it (watched, served, routed); a topology without an entry
	// is not run.
	InCatalog bool   `json:"in_catalog"`
	Error     string `json:"error,omitempty"`
}

// ListClusters lists every cluster Consul has a topology or a catalog entry of, sorted:
// epoch, primary and replicas, and whether the catalog has it. It changes nothing.
func (a *Activities) ListClusters(ctx context.Context) ([]ClusterListEntry, error) {
	s, err := a.clusterStore()
	if err != nil {
		return nil, err
	}
	names, err := s.Clusters(ctx)
	if err != nil {
		return nil, err
	}
	cat, err := s.ListCatalog(ctx, 0, 0)
	if err != nil {
		return nil, err
	}
	for _, n := range cat.Names() {
		if !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	list := make([]ClusterListEntry, len(names))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for i, n := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			_, entry := cat.Entries[n]
			_, bad := cat.Problems[n]
			e := ClusterListEntry{Cluster: n, InCatalog: entry || bad, Replicas: []string{}}
			if t, err := s.Read(ctx, n); err != nil {
				e.Error = err.Error()
			} else {
				e.Epoch, e.Primary, e.PrimaryAt = t.Epoch, t.Primary.Name, t.Primary.Addr()
				for _, r := range t.Replicas {
					e.Replicas = append(e.Replicas, r.Name)
				}
			}
			list[i] = e
		}()
	}
	wg.Wait()
	return list, nil
}

// RemoveClusterInput is `baton cluster remove`.
type RemoveClusterInput struct {
	Cluster string
	By      string
}

// RemoveClusterResult says what RemoveCluster did.
type RemoveClusterResult struct {
	Cluster string
	// InFile: the worker's config file still has a section for the cluster.
	InFile bool `json:",omitempty"`
}

// RemoveCluster deletes a cluster from Consul: its catalog entry first (nothing watches,
// serves or routes it any more), then its topology and its agents' reports. The servers are
// untouched. A cluster Consul has no topology of is refused (ErrUnknownCluster).
func (a *Activities) RemoveCluster(ctx context.Context, in RemoveClusterInput) (RemoveClusterResult, error) {
	out := RemoveClusterResult{Cluster: in.Cluster}
	s, err := a.clusterStore()
	if err != nil {
		return out, err
	}
	if _, err := s.Read(ctx, in.Cluster); err != nil {
		return out, unknownIsRefused(err)
	}
	if err := s.Remove(ctx, in.Cluster); err != nil {
		return out, err
	}
	_, out.InFile = a.fileCluster(in.Cluster)
	return out, nil
}
