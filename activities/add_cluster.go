package activities

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/baton-db/baton/internal/catalog"
	"github.com/baton-db/baton/internal/config"
	"github.com/baton-db/baton/internal/flavor"
	"github.com/baton-db/baton/internal/onboard"
	"github.com/baton-db/baton/internal/topology"
)

// The cluster verbs on the worker, so that the CLI needs only Temporal: `baton cluster add`
// (the AddCluster workflow's steps NewClusterSettings, PrepareCluster, DiscoverCluster and
// SeedCluster), `cluster list` (ListClusters, through Inspect) and `cluster remove`
// (RemoveCluster, through Operate). The worker's admin account connects to the servers, its
// replication account is what the attached replicas use, its Consul token writes the
// topology and the catalog. Inputs and results carry names, addresses, zones, settings and
// who: never a secret. `baton cluster add --local` runs the same steps in the CLI.

// ClusterStore is what the cluster verbs need of Consul: the production store
// (*topology.Store) has all of it.
type ClusterStore interface {
	Topology
	CatalogStore
	Clusters(ctx context.Context) ([]string, error)
	ListCatalog(ctx context.Context, index uint64, wait time.Duration) (topology.Catalog, error)
	Seed(ctx context.Context, cluster string, primary topology.Node, replicas []topology.Node) error
	Remove(ctx context.Context, cluster string) error
}

var _ ClusterStore = (*topology.Store)(nil)

func (a *Activities) clusterStore() (ClusterStore, error) {
	s, ok := a.Topo.(ClusterStore)
	if !ok {
		return nil, nonRetryable(ErrBadConfig, "the worker's topology store cannot add, list or remove clusters")
	}
	return s, nil
}

// AddClusterInput is `baton cluster add`: the new cluster's primary, how its nodes are named
// and zoned, the servers to prepare, the settings to change, and who adds it.
type AddClusterInput struct {
	Cluster string
	Primary string // host:port
	// Flavor is --flavor when given: it overrides the file's section, and is the flavor of
	// the defaults ("" there: mariadb).
	Flavor string `json:",omitempty"`
	// Names and Zones map a node's address (host:port or host) to its name and zone;
	// DefaultZone is the zone of the nodes Zones does not name.
	Names, Zones map[string]string
	DefaultZone  string `json:",omitempty"`
	// Init opens the primary (writable, semi-sync, the heartbeat schema); Attach makes these
	// servers (host:port) its read-only replicas first.
	Init   bool     `json:",omitempty"`
	Attach []string `json:",omitempty"`
	// Set are KEY=VALUE settings, as `baton cluster set` takes them.
	Set []string `json:",omitempty"`
	// DryRun: the settings and the discovery only; nothing is prepared or written.
	DryRun bool `json:",omitempty"`
	By     string
}

// Prepares says whether the add readies new servers first (--init, --attach).
func (in AddClusterInput) Prepares() bool { return !in.DryRun && (in.Init || len(in.Attach) > 0) }

// NewSettings is a new cluster's settings for the catalog, validated.
type NewSettings struct {
	Settings  map[string]any
	Flavor    string
	HAProxies []config.HAProxy
	// FromFile: they are the worker's config file's section for the cluster.
	FromFile bool `json:",omitempty"`
}

// NewClusterSettings is the first step of `baton cluster add`: the cluster's settings are
// the worker's config file's section for it, or the defaults with a frontend pair on every
// remote HAProxy registered in Consul at the next free port pair; then the operator's
// --flavor and --set. They and the addresses given are validated before anything is
// changed: every problem at once (ErrBadSettings). A cluster Consul already has is refused
// (ErrClusterExists), unless this is a dry run: it is never overwritten.
func (a *Activities) NewClusterSettings(ctx context.Context, in AddClusterInput) (NewSettings, error) {
	var out NewSettings
	var problems []error
	add := func(format string, args ...any) { problems = append(problems, fmt.Errorf(format, args...)) }
	if !config.ValidName(in.Cluster) {
		return out, nonRetryable(ErrBadSettings, "%q is not a valid cluster name (lower-case letters, digits, - and _); nothing was changed", in.Cluster)
	}
	if strings.TrimSpace(in.By) == "" {
		add("the add must name who makes it (--as)")
	}
	if _, _, err := net.SplitHostPort(in.Primary); err != nil || in.Primary == "" {
		add("--primary %q is not host:port", in.Primary)
	}
	for _, addr := range in.Attach {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			add("--attach %q is not host:port", addr)
		} else if addr == in.Primary {
			add("--attach %s is the primary", addr)
		}
	}
	s, err := a.clusterStore()
	if err != nil {
		return out, err
	}
	if !in.DryRun {
		switch t, err := s.Read(ctx, in.Cluster); {
		case err == nil:
			return out, nonRetryable(ErrClusterExists, "%v: %s is at epoch %d with primary %s; nothing was changed (`baton cluster remove --name %s --yes` first if it is to be replaced)",
				topology.ErrExists, in.Cluster, t.Epoch, t.Primary.Name, in.Cluster)
		case !errors.Is(err, topology.ErrUnknownCluster):
			return out, err
		}
	}
	var raw map[string]any
	if cc, ok := a.fileCluster(in.Cluster); ok {
		raw, out.FromFile = catalog.Entry(cc, "", "", time.Time{}).Settings, true
	} else {
		l, err := s.ListCatalog(ctx, 0, 0)
		if err != nil {
			return out, err
		}
		hosts, err := s.HAProxies(ctx)
		if err != nil {
			return out, err
		}
		fl := in.Flavor
		if fl == "" {
			fl = string(config.FlavorMariaDB)
		}
		raw = map[string]any{"flavor": fl, "haproxies": config.EncodeSettings(config.ClusterConfig{
			HAProxies: catalog.HAProxies(hosts, catalog.FreePort(catalog.UsedPorts(l)))})["haproxies"]}
	}
	if in.Flavor != "" {
		raw["flavor"] = in.Flavor
	}
	for _, kv := range in.Set {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			add("--set %q is not KEY=VALUE", kv)
			continue
		}
		next, err := config.SetSetting(raw, strings.TrimSpace(k), strings.TrimSpace(v))
		if err != nil {
			problems = append(problems, err)
			continue
		}
		raw = next
	}
	cc, err := config.DecodeSettings(in.Cluster, raw)
	if err = errors.Join(append(problems, err)...); err != nil {
		return out, nonRetryable(ErrBadSettings, "cluster %s: nothing was changed; fix these settings and run it again:\n  - %s",
			in.Cluster, strings.ReplaceAll(err.Error(), "\n", "\n  - "))
	}
	out.Settings, out.Flavor, out.HAProxies = raw, string(cc.Flavor), cc.HAProxies
	return out, nil
}

// fileCluster is the worker's config file's section for a cluster.
func (a *Activities) fileCluster(name string) (config.ClusterConfig, bool) {
	if a.Config == nil {
		return config.ClusterConfig{}, false
	}
	cc, ok := a.Config.Clusters[name]
	return cc, ok
}

// decodeNew reads a new cluster's settings (NewClusterSettings validated them).
func decodeNew(cluster string, raw map[string]any) (config.ClusterConfig, flavor.Flavor, error) {
	cc, err := config.DecodeSettings(cluster, raw)
	if err != nil {
		return cc, nil, nonRetryable(ErrBadSettings, "cluster %s: %v", cluster, err)
	}
	f, err := flavor.ByName(string(cc.Flavor))
	if err != nil {
		return cc, nil, nonRetryable(ErrBadSettings, "cluster %s: flavor: %v", cluster, err)
	}
	return cc, f, nil
}

// onboardServer opens a new server with the worker's admin account, unpooled: the cluster
// is not one the worker serves yet. The caller closes it.
func (a *Activities) onboardServer(addr string, f flavor.Flavor) (onboard.Admin, error) {
	if a.adminErr != nil {
		return nil, a.adminErr
	}
	s, err := a.dial(addr, f, a.admin)
	if err != nil {
		return nil, err
	}
	adm, ok := s.(onboard.Admin)
	if !ok {
		_ = s.Close()
		return nil, nonRetryable(ErrBadConfig, "the worker's MySQL client cannot onboard %s", addr)
	}
	return adm, nil
}

// AddClusterResult is what `baton cluster add` did: the settings, what was prepared, the
// nodes discovered, and what was written.
type AddClusterResult struct {
	Cluster   string
	Settings  map[string]any
	Flavor    string
	HAProxies []config.HAProxy
	Prepared  *PrepareResult `json:",omitempty"`
	Primary   topology.Node
	Replicas  []topology.Node
	DryRun    bool        `json:",omitempty"`
	Seed      *SeedResult `json:",omitempty"`
}

// AddClusterSteps runs `baton cluster add`'s steps in order, in this process: the
// AddCluster workflow runs the same steps as activities; `baton cluster add --local` (the
// bootstrap, before any worker runs) calls this with the full config.
func (a Local) AddClusterSteps(ctx context.Context, in AddClusterInput, at time.Time) (AddClusterResult, error) {
	out := AddClusterResult{Cluster: in.Cluster, DryRun: in.DryRun}
	ns, err := a.NewClusterSettings(ctx, in)
	if err != nil {
		return out, err
	}
	out.Settings, out.Flavor, out.HAProxies = ns.Settings, ns.Flavor, ns.HAProxies
	if in.Prepares() {
		p, err := a.PrepareCluster(ctx, in.PrepareInput(ns))
		if err != nil {
			return out, err
		}
		out.Prepared = &p
	}
	d, err := a.DiscoverCluster(ctx, in.DiscoverInput(ns, out.Prepared))
	if err != nil {
		return out, err
	}
	out.Primary, out.Replicas = d.Primary, d.Replicas
	if in.DryRun {
		return out, nil
	}
	sr, err := a.SeedCluster(ctx, in.SeedInput(ns, d, at))
	if err != nil {
		return out, err
	}
	out.Seed = &sr
	return out, nil
}

// PrepareInput is the prepare step's input.
func (in AddClusterInput) PrepareInput(ns NewSettings) PrepareClusterInput {
	return PrepareClusterInput{Cluster: in.Cluster, Primary: in.Primary, Init: in.Init, Attach: in.Attach, Zones: in.Zones, Settings: ns.Settings}
}

// DiscoverInput is the discovery step's input.
func (in AddClusterInput) DiscoverInput(ns NewSettings, prepared *PrepareResult) DiscoverClusterInput {
	return DiscoverClusterInput{Cluster: in.Cluster, Primary: in.Primary, Flavor: ns.Flavor, Names: in.Names, Zones: in.Zones,
		DefaultZone: in.DefaultZone, Prepared: prepared}
}

// SeedInput is the seed step's input.
func (in AddClusterInput) SeedInput(ns NewSettings, d Discovered, at time.Time) SeedClusterInput {
	return SeedClusterInput{Cluster: in.Cluster, Primary: d.Primary, Replicas: d.Replicas, Settings: ns.Settings, By: in.By, At: at}
}
