package activities

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/baton-db/baton/internal/config"
	"github.com/baton-db/baton/internal/topology"
)

// CatalogStore is what the cluster-settings verbs need of Consul's catalog.
type CatalogStore interface {
	CatalogEntry(ctx context.Context, cluster string) (topology.CatalogEntry, bool, error)
	PutCatalogEntry(ctx context.Context, cluster string, e topology.CatalogEntry, index uint64) error
}

// ClusterSettingsInput is `baton cluster set`: KEY=VALUE changes of one cluster's settings.
type ClusterSettingsInput struct {
	Cluster string
	Set     []string
	By      string
}

// ClusterSettingsResult is the entry as written: every setting, what changed, and when.
type ClusterSettingsResult struct {
	Cluster  string
	Settings map[string]any
	Changed  []string
	By       string
	At       time.Time
}

// SetClusterSettings changes a cluster's settings in the catalog, validated as the config
// file's are (every problem at once; nothing is written then), recorded with who and when;
// every detector and worker follows within seconds. A change that leaves the settings as
// they are writes nothing. A concurrent change makes the attempt fail and be retried on
// what it wrote.
func (a *Activities) SetClusterSettings(ctx context.Context, in ClusterSettingsInput) (ClusterSettingsResult, error) {
	out := ClusterSettingsResult{Cluster: in.Cluster}
	if strings.TrimSpace(in.By) == "" {
		return out, nonRetryable(ErrBadConfig, "a settings change must name who makes it (--as)")
	}
	s, ok := a.Topo.(CatalogStore)
	if !ok {
		return out, nonRetryable(ErrBadConfig, "the worker's topology store has no catalog")
	}
	e, ok, err := s.CatalogEntry(ctx, in.Cluster)
	if err != nil && !ok {
		return out, err
	}
	if !ok {
		return out, nonRetryable(ErrUnknownCluster, "cluster %q is not in the catalog: `baton cluster list` shows the clusters, `baton cluster add` adds one", in.Cluster)
	}
	raw := e.Settings // a malformed entry (err) is replaced by a valid one, or refused
	var problems []error
	for _, kv := range in.Set {
		k, v, found := strings.Cut(kv, "=")
		if !found {
			problems = append(problems, fmt.Errorf("%q is not KEY=VALUE", kv))
			continue
		}
		k = strings.TrimSpace(k)
		next, err := config.SetSetting(raw, k, strings.TrimSpace(v))
		if err != nil {
			problems = append(problems, err)
			continue
		}
		if !reflect.DeepEqual(next[k], raw[k]) {
			out.Changed = append(out.Changed, kv)
		}
		raw = next
	}
	if len(problems) == 0 {
		_, err := config.DecodeSettings(in.Cluster, raw)
		if err != nil {
			problems = append(problems, err)
		}
	}
	if len(problems) > 0 {
		return out, nonRetryable(ErrBadConfig, "cluster %s: nothing was changed; fix these and run it again:\n  - %s", in.Cluster,
			strings.ReplaceAll(errors.Join(problems...).Error(), "\n", "\n  - "))
	}
	out.Settings, out.By, out.At = raw, e.By, e.At
	if len(out.Changed) == 0 && err == nil {
		return out, nil
	}
	slices.Sort(out.Changed)
	ne := topology.CatalogEntry{Settings: raw, By: in.By, At: time.Now().UTC(), Change: "set " + strings.Join(out.Changed, ", ")}
	if err := s.PutCatalogEntry(ctx, in.Cluster, ne, e.Index); err != nil {
		return out, err
	}
	out.By, out.At = ne.By, ne.At
	return out, nil
}

// ClusterView is `baton cluster show`: a cluster's catalog entry and the settings in use.
type ClusterView struct {
	Cluster string
	// Settings are the entry's own keys; Effective adds every default.
	Settings  map[string]any
	Effective map[string]any
	By        string
	At        time.Time
	Change    string
	Problem   string `json:",omitempty"`
}

// ShowCluster reads a cluster's catalog entry. It changes nothing.
func (a *Activities) ShowCluster(ctx context.Context, cluster string) (ClusterView, error) {
	v := ClusterView{Cluster: cluster}
	s, ok := a.Topo.(CatalogStore)
	if !ok {
		return v, nonRetryable(ErrBadConfig, "the worker's topology store has no catalog")
	}
	e, ok, err := s.CatalogEntry(ctx, cluster)
	if err != nil && !ok {
		return v, err
	}
	if !ok {
		return v, nonRetryable(ErrUnknownCluster, "cluster %q is not in the catalog: `baton cluster add` adds one", cluster)
	}
	v.Settings, v.By, v.At, v.Change = e.Settings, e.By, e.At, e.Change
	if err != nil {
		v.Problem = err.Error()
		return v, nil
	}
	cc, derr := config.DecodeSettings(cluster, e.Settings)
	if derr != nil {
		v.Problem = derr.Error()
		return v, nil
	}
	v.Effective = config.EncodeSettings(cc)
	return v, nil
}
