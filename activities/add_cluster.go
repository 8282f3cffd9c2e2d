package activities

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
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

// PrepareClusterInput readies new servers for the cluster: Init opens the primary, Attach
// makes servers its replicas (acknowledging its commits as the settings' durability says).
type PrepareClusterInput struct {
	Cluster  string
	Primary  string
	Init     bool     `json:",omitempty"`
	Attach   []string `json:",omitempty"`
	Zones    map[string]string
	Settings map[string]any
}

// PrepareResult says what PrepareCluster did.
type PrepareResult struct {
	Primary  string
	Opened   bool
	Attached int
}

// String is the line `baton cluster add` prints.
func (p PrepareResult) String() string {
	opened := ""
	if p.Opened {
		opened = " opened"
	}
	return fmt.Sprintf("prepared: primary %s%s, %d server(s) attached", p.Primary, opened, p.Attached)
}

// PrepareCluster readies new servers before discovery (`cluster add --init --attach`):
// onboard.Prepare with the worker's admin and replication accounts. A server already
// replicating from the primary is left as it is, so it can run again.
func (a *Activities) PrepareCluster(ctx context.Context, in PrepareClusterInput) (PrepareResult, error) {
	out := PrepareResult{Primary: in.Primary, Opened: in.Init, Attached: len(in.Attach)}
	cc, f, err := decodeNew(in.Cluster, in.Settings)
	if err != nil {
		return out, err
	}
	p, err := a.onboardServer(in.Primary, f)
	if err != nil {
		return out, fmt.Errorf("cluster %s: %w", in.Cluster, err)
	}
	defer p.Close()
	servers := map[string]onboard.Admin{}
	for _, addr := range in.Attach {
		c, err := a.onboardServer(addr, f)
		if err != nil {
			return out, fmt.Errorf("cluster %s: %w", in.Cluster, err)
		}
		defer c.Close()
		servers[addr] = c
	}
	zone := func(addr string) string {
		if z, ok := in.Zones[addr]; ok {
			return z
		}
		host, _, _ := strings.Cut(addr, ":")
		return in.Zones[host]
	}
	acks := func(addr string) bool { return cc.Acks(zone(in.Primary), zone(addr)) }
	stop := keepAlive(ctx, 5*time.Second)
	defer stop()
	if err := onboard.Prepare(ctx, p, in.Primary, in.Init, servers, a.Config.ReplicationSource, acks); err != nil {
		return out, fmt.Errorf("cluster %s: %w", in.Cluster, err)
	}
	return out, nil
}

// DiscoverClusterInput asks for a cluster's discovery from its primary.
type DiscoverClusterInput struct {
	Cluster      string
	Primary      string
	Flavor       string
	Names, Zones map[string]string
	DefaultZone  string `json:",omitempty"`
	// Prepared is what PrepareCluster did before, for the refusal's message.
	Prepared *PrepareResult `json:",omitempty"`
}

// Discovered is a cluster as discovery found it: what SeedCluster writes.
type Discovered struct {
	Flavor   string
	Primary  topology.Node
	Replicas []topology.Node
}

// DiscoverCluster reads the primary, finds its replicas and checks every node with the
// worker's accounts (onboard.Discover: each node's settings, Baton's replication and
// heartbeat accounts, replication). Any problem refuses the add (ErrCannotOnboard), every
// one named at once. It changes nothing.
func (a *Activities) DiscoverCluster(ctx context.Context, in DiscoverClusterInput) (Discovered, error) {
	out := Discovered{Flavor: in.Flavor}
	f, err := flavor.ByName(in.Flavor)
	if err != nil {
		return out, nonRetryable(ErrBadSettings, "cluster %s: flavor: %v", in.Cluster, err)
	}
	var users []string
	if a.Config != nil {
		for _, u := range []string{a.Config.Secrets.ReplUser, a.Config.Secrets.HeartbeatUser} {
			if u != "" {
				users = append(users, u)
			}
		}
	}
	req := onboard.Request{Cluster: in.Cluster, Primary: in.Primary, Names: in.Names, Zones: in.Zones, DefaultZone: in.DefaultZone, Users: users}
	stop := keepAlive(ctx, 5*time.Second)
	defer stop()
	out.Primary, out.Replicas, err = onboard.Discover(ctx, req, func(addr string) (onboard.Server, error) {
		return a.onboardServer(addr, f)
	})
	if err != nil {
		written := "nothing was written"
		if in.Prepared != nil {
			written = "nothing was written to Consul (the servers were " + in.Prepared.String() + ")"
		}
		return out, nonRetryable(ErrCannotOnboard, "cluster %s cannot be added; %s. Fix each of these and run the command again:\n  - %s",
			in.Cluster, written, strings.ReplaceAll(err.Error(), "\n", "\n  - "))
	}
	return out, nil
}

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
func AddClusterSteps(ctx context.Context, a *Activities, in AddClusterInput, at time.Time) (AddClusterResult, error) {
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
