package activities

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"

	"github.com/baton-db/baton/internal/catalog"
	"github.com/baton-db/baton/internal/config"
	"github.com/baton-db/baton/internal/flavor"
	"github.com/baton-db/baton/internal/mysqladmin"
	"github.com/baton-db/baton/internal/telemetry"
	"github.com/baton-db/baton/internal/topology"
)

// Topology is what the steps need from Consul.
type Topology interface {
	Read(ctx context.Context, cluster string) (topology.Topology, error)
	Publish(ctx context.Context, cluster string, epoch, epochIndex uint64, c topology.Change) (uint64, error)
	HAProxies(ctx context.Context) ([]topology.HAProxyHost, error)
	RecordResult(ctx context.Context, cluster string, r topology.Record) error
	RecordEviction(ctx context.Context, cluster string, e topology.Eviction) error
	Readmit(ctx context.Context, cluster string, epochIndex uint64, n topology.Node) error
	Detach(ctx context.Context, cluster string, epochIndex uint64, e topology.Eviction) error
	Recoveries(ctx context.Context) (topology.Recoveries, error)
	ReadLease(ctx context.Context, cluster string) (topology.Lease, uint64, error)
	WriteLease(ctx context.Context, cluster string, l topology.Lease, index uint64) (uint64, error)
}

// Activities carries the worker's clients. Workflows reference its methods through a nil
// pointer; the worker registers a real one.
type Activities struct {
	Config *config.Config
	Topo   Topology
	// Metrics, when set, records failover and step durations.
	Metrics *telemetry.Metrics

	admin    mysqladmin.Options
	adminErr error // a TLS file that could not be read: every MySQL step fails with it
	mu       sync.Mutex
	clients  map[string]Server
	// Dial opens servers; nil opens real MySQL connections (mysqladmin.Open).
	Dial Dialer
	// Watchers names the detector watching each cluster, for Status; nil asks the fleet's
	// locks in Consul (internal/fleet).
	Watchers func(ctx context.Context, clusters []string) (map[string]string, error)
	// Clusters is the live catalog of clusters and their settings (internal/catalog); nil
	// uses the config file's clusters (unit tests).
	Clusters Catalog
}

// Catalog is the live list of clusters and their settings.
type Catalog interface {
	Cluster(ctx context.Context, name string) (catalog.Cluster, error)
	Names() []string
}

// clusterConfig is a cluster's settings: the catalog's, or the config file's without one.
func (a *Activities) clusterConfig(name string) (config.ClusterConfig, error) {
	if a.Clusters == nil {
		return a.Config.Cluster(name)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cl, err := a.Clusters.Cluster(ctx, name)
	return cl.Config, err
}

// clusterNames is every cluster the fleet runs.
func (a *Activities) clusterNames() []string {
	if a.Clusters == nil {
		return slices.Sorted(maps.Keys(a.Config.Clusters))
	}
	return a.Clusters.Names()
}

// New returns the activities for cfg, talking to Consul through topo.
func New(cfg *config.Config, topo Topology) *Activities {
	a := &Activities{Config: cfg, Topo: topo, clients: map[string]Server{}}
	a.admin, a.adminErr = cfg.MySQLOptions(cfg.Secrets.AdminUser, cfg.Secrets.AdminPassword)
	return a
}

// cluster returns the cluster's config, or a non-retryable error naming the fix.
func (a *Activities) cluster(name string) (config.ClusterConfig, flavor.Flavor, error) {
	cc, err := a.clusterConfig(name)
	if err != nil {
		return cc, nil, nonRetryable(ErrUnknownCluster, "%v", err)
	}
	f, err := flavor.ByName(string(cc.Flavor))
	if err != nil {
		return cc, nil, nonRetryable(ErrBadConfig, "clusters.%s.flavor: %v", name, err)
	}
	return cc, f, nil
}

// mysql returns a pooled admin client for one node of a cluster.
func (a *Activities) mysql(cluster string, n topology.Node) (Server, error) {
	_, f, err := a.cluster(cluster)
	if err != nil {
		return nil, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	key := cluster + "/" + n.Addr()
	if c, ok := a.clients[key]; ok {
		return c, nil
	}
	if a.adminErr != nil {
		return nil, a.adminErr
	}
	c, err := a.dial(n.Addr(), f, a.admin)
	if err != nil {
		return nil, err
	}
	if a.clients == nil {
		a.clients = map[string]Server{}
	}
	a.clients[key] = c
	return c, nil
}

// forget drops the pooled client of a node (its connections may be stale after the node
// was away), so the next step opens new ones.
func (a *Activities) forget(cluster string, n topology.Node) {
	a.mu.Lock()
	defer a.mu.Unlock()
	key := cluster + "/" + n.Addr()
	if c, ok := a.clients[key]; ok {
		_ = c.Close()
		delete(a.clients, key)
	}
}

// freshClient opens an unpooled admin connection to n with short timeouts, for the
// question "does this server answer now?". The caller closes it.
func (a *Activities) freshClient(f flavor.Flavor, n topology.Node, connect, read time.Duration) (Server, error) {
	if a.adminErr != nil {
		return nil, a.adminErr
	}
	o := a.admin
	o.ConnectTimeout, o.ReadTimeout = connect, read
	return a.dial(n.Addr(), f, o)
}

func (a *Activities) dial(addr string, f flavor.Flavor, o mysqladmin.Options) (Server, error) {
	if a.Dial != nil {
		return a.Dial(addr, f, o)
	}
	return dialMySQL(addr, f, o)
}

// acks says whether node acknowledges primary's commits under the cluster's durability
// policy (cross_zone: only replicas in another zone do).
func (a *Activities) acks(cluster string, primary, node topology.Node) bool {
	cc, err := a.clusterConfig(cluster)
	return err != nil || cc.Acks(primary.Zone, node.Zone)
}

// replSource is where a replica of n replicates from, with Baton's replication credentials.
func (a *Activities) replSource(n topology.Node) flavor.Source {
	return a.Config.ReplicationSource(n.IPv4, n.Port)
}

// excludedUsers are the sessions DemotePrimary leaves alone.
func (a *Activities) excludedUsers() map[string]bool {
	return map[string]bool{a.Config.Secrets.AdminUser: true, a.Config.Secrets.ReplUser: true}
}

func nonRetryable(errType, format string, args ...any) error {
	return temporal.NewNonRetryableApplicationError(fmt.Sprintf(format, args...), errType, nil)
}

// keepAlive heartbeats every interval until the returned stop is called. Steps that wait
// inside one blocking statement use it so the server knows they are alive.
func keepAlive(ctx context.Context, every time.Duration, details ...any) (stop func()) {
	if !activity.IsActivity(ctx) {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				activity.RecordHeartbeat(ctx, details...)
			}
		}
	}()
	return func() { close(done) }
}

func heartbeat(ctx context.Context, details ...any) {
	if activity.IsActivity(ctx) {
		activity.RecordHeartbeat(ctx, details...)
	}
}

// poll calls f every interval, heartbeating, until it reports done, fails, or the deadline passes.
func poll(ctx context.Context, interval, timeout time.Duration, f func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	for {
		done, err := f()
		if err != nil || done {
			return err
		}
		if time.Now().After(deadline) {
			return context.DeadlineExceeded
		}
		heartbeat(ctx)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(interval):
		}
	}
}

// epochGuard refuses to act when Consul's epoch is no longer the one the plan was made at.
func (a *Activities) epochGuard(ctx context.Context, plan Plan) (published bool, err error) {
	t, err := a.Topo.Read(ctx, plan.Cluster)
	if err != nil {
		return false, err
	}
	// This plan's own publish already happened: a worker that crashed before its workflow
	// task completed re-runs the local steps that came before it, which have nothing to do.
	if t.Epoch == plan.Epoch+1 && t.Primary.Name == plan.Candidate.Name {
		return true, nil
	}
	if t.Epoch != plan.Epoch {
		return false, nonRetryable(ErrEpochChanged,
			"cluster %s is at epoch %d in Consul, not %d as planned: another failover changed the topology; run `baton status --cluster %s` and plan again",
			plan.Cluster, t.Epoch, plan.Epoch, plan.Cluster)
	}
	return false, nil
}

// recoveries reads the global switch of automatic failover; a forced failover ignores it.
func (a *Activities) recoveries(ctx context.Context, force bool) (topology.Recoveries, error) {
	if force {
		return topology.Recoveries{}, nil
	}
	return a.Topo.Recoveries(ctx)
}

// logger is the activity's logger, or the process's outside an activity (a dry run, a test).
func logger(ctx context.Context) log.Logger {
	if activity.IsActivity(ctx) {
		return activity.GetLogger(ctx)
	}
	return log.NewStructuredLogger(slog.Default())
}
