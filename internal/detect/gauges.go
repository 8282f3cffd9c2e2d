package detect

import (
	"context"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/consul/api"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/baton-db/baton/internal/topology"
)

// Gauges are the detector's view of its clusters as Prometheus gauges, for alerts and the
// dashboard (deploy/prometheus, deploy/grafana). A refresh every Every reads the topology
// cache (memory), the global recoveries switch (one Consul read) and the clusters' fenced/
// keys (one blocking query on the prefix's key names); the replicas' lag is read by a
// loop of its own, with a budget of new connections (LagEvery, LagPerSecond). Scrapes only
// read the last refresh.
type Gauges struct {
	Detector string
	// Configured is how many clusters the catalog lists (every detector reads the same list).
	Configured func() int
	Topologies Topologies
	// Recoveries reads the global switch (topology.Store.Recoveries).
	Recoveries func(context.Context) (topology.Recoveries, error)
	// Consul and Prefix (baton/clusters) are where the fenced/ keys are listed; nil Consul:
	// no baton_fenced_nodes.
	Consul *api.Client
	Prefix string
	// Lag reads a replica's heartbeat lag (ok false: no heartbeat row); nil: no
	// baton_replica_lag_seconds.
	Lag func(ctx context.Context, cluster string, n topology.Node) (lag time.Duration, ok bool, err error)
	// LagEvery is how often each replica's lag is read at most; LagPerSecond bounds the
	// connections the reads open each second, whatever the number of replicas.
	LagEvery     time.Duration
	LagPerSecond int
	Every        time.Duration
	Log          *slog.Logger

	mu      sync.Mutex
	watched map[string]int
	states  map[string]clusterState
	fenced  map[string][]string            // cluster → fenced/ node names
	lags    map[string]map[string]lagValue // cluster → replica → last reading
}

type lagValue struct {
	seconds float64
	at      time.Time
	ok      bool
}

// clusterState is what the gauges say of one cluster.
type clusterState struct {
	recoveries     bool
	unacknowledged bool
	degraded       bool
	held           bool
	fenced         int
}

// Watching counts cluster as watched by this detector until the returned func is called.
func (g *Gauges) Watching(cluster string) (done func()) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.watched == nil {
		g.watched = map[string]int{}
	}
	g.watched[cluster]++
	return func() {
		g.mu.Lock()
		defer g.mu.Unlock()
		if g.watched[cluster]--; g.watched[cluster] <= 0 {
			delete(g.watched, cluster)
		}
	}
}

// recoveriesEnabled says whether automatic failover of the cluster is on: neither the
// global switch nor the cluster's own is off.
func recoveriesEnabled(global topology.Recoveries, t topology.Topology) bool {
	return !global.Disabled && (t.Recoveries == nil || !t.Recoveries.Disabled)
}

// stateOf is the pure part: the gauges of one cluster from its topology, the global switch
// and the nodes named by its fenced/ keys.
func stateOf(t topology.Topology, global topology.Recoveries, fenced []string) clusterState {
	return clusterState{
		recoveries:     recoveriesEnabled(global, t),
		unacknowledged: t.Unacknowledged(),
		degraded:       t.Degraded != nil && t.Degraded.Open(),
		held:           t.Held != nil && t.Held.Open(),
		fenced:         fencedOut(t, fenced),
	}
}

// fencedOut counts the fenced nodes that are not members again: a fenced/ key stays after
// the node rejoins (or, a replica fenced in place, stays a member), and only a node still
// out of the cluster needs a human.
func fencedOut(t topology.Topology, fenced []string) int {
	n := 0
	for _, f := range fenced {
		if _, member := t.Find(f); !member {
			n++
		}
	}
	return n
}

// fencedByCluster groups the key names under prefix that are fenced/<node> records.
func fencedByCluster(prefix string, keys []string) map[string][]string {
	out := map[string][]string{}
	base := strings.TrimSuffix(prefix, "/") + "/"
	for _, k := range keys {
		rest, ok := strings.CutPrefix(k, base)
		if !ok {
			continue
		}
		parts := strings.Split(rest, "/")
		if len(parts) == 3 && parts[1] == "fenced" && parts[0] != "" && parts[2] != "" {
			out[parts[0]] = append(out[parts[0]], parts[2])
		}
	}
	return out
}

// lagDue picks up to budget replicas whose last reading is older than every (or that have
// none), the oldest first; ties go by cluster and node, so that every replica gets its turn.
func lagDue(replicas map[string][]string, lags map[string]map[string]lagValue, now time.Time, every time.Duration, budget int) [][2]string {
	type due struct {
		cluster, node string
		at            time.Time
	}
	var all []due
	for c, nodes := range replicas {
		for _, n := range nodes {
			v, seen := lags[c][n]
			if seen && now.Sub(v.at) < every {
				continue
			}
			all = append(all, due{c, n, v.at})
		}
	}
	sort.Slice(all, func(i, j int) bool {
		a, b := all[i], all[j]
		if !a.at.Equal(b.at) {
			return a.at.Before(b.at)
		}
		if a.cluster != b.cluster {
			return a.cluster < b.cluster
		}
		return a.node < b.node
	})
	out := make([][2]string, 0, min(budget, len(all)))
	for _, d := range all[:min(budget, len(all))] {
		out = append(out, [2]string{d.cluster, d.node})
	}
	return out
}

// Register creates the observable gauges on mp.
func (g *Gauges) Register(mp metric.MeterProvider) error {
	m := mp.Meter("baton")
	type gauge struct {
		name, desc string
		value      func(clusterState) int64
	}
	perCluster := []gauge{
		{"baton_recoveries_enabled", "1 while automatic failover of the cluster is enabled (`baton recoveries`)", func(s clusterState) int64 { return b2i(s.recoveries) }},
		{"baton_unacknowledged_failovers", "1 while the cluster's last unplanned failover awaits `baton ack`", func(s clusterState) int64 { return b2i(s.unacknowledged) }},
		{"baton_durability_degraded", "1 while the primary acknowledges writes without the acknowledgement its durability policy promises (key degraded open)", func(s clusterState) int64 { return b2i(s.degraded) }},
		{"baton_commits_held", "1 while the primary holds commits waiting for an acknowledgement (key held open)", func(s clusterState) int64 { return b2i(s.held) }},
		{"baton_fenced_nodes", "nodes fenced (key fenced/<node>) that are not members of the cluster again", func(s clusterState) int64 { return int64(s.fenced) }},
	}
	var insts []metric.Observable
	var obs []metric.Int64ObservableGauge
	for _, p := range perCluster {
		o, err := m.Int64ObservableGauge(p.name, metric.WithDescription(p.desc))
		if err != nil {
			return err
		}
		obs, insts = append(obs, o), append(insts, o)
	}
	watched, err := m.Int64ObservableGauge("baton_clusters_watched", metric.WithDescription("clusters this detector watches (its share of the fleet)"))
	if err != nil {
		return err
	}
	configured, err := m.Int64ObservableGauge("baton_clusters_configured", metric.WithDescription("clusters in the catalog (the fleet shares them)"))
	if err != nil {
		return err
	}
	lag, err := m.Float64ObservableGauge("baton_replica_lag_seconds", metric.WithDescription("age of the replica's own heartbeat row on the replica (read by the detector, at most every few seconds)"))
	if err != nil {
		return err
	}
	insts = append(insts, watched, configured, lag)
	_, err = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		g.mu.Lock()
		defer g.mu.Unlock()
		det := metric.WithAttributes(attribute.String("detector", g.Detector))
		o.ObserveInt64(watched, int64(len(g.watched)), det)
		if g.Configured != nil {
			o.ObserveInt64(configured, int64(g.Configured()), det)
		}
		for c, s := range g.states {
			if g.watched[c] == 0 {
				continue
			}
			attrs := metric.WithAttributes(attribute.String("cluster", c))
			for i, p := range perCluster {
				o.ObserveInt64(obs[i], p.value(s), attrs)
			}
		}
		for c, nodes := range g.lags {
			if g.watched[c] == 0 {
				continue
			}
			for n, v := range nodes {
				if v.ok {
					o.ObserveFloat64(lag, v.seconds, metric.WithAttributes(attribute.String("cluster", c), attribute.String("node", n)))
				}
			}
		}
		return nil
	}, insts...)
	return err
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// Run refreshes the gauges until ctx ends.
func (g *Gauges) Run(ctx context.Context) {
	every := g.Every
	if every <= 0 {
		every = 5 * time.Second
	}
	if g.Consul != nil {
		go g.followFenced(ctx)
	}
	if g.Lag != nil {
		go g.readLags(ctx)
	}
	for {
		g.refresh(ctx)
		select {
		case <-ctx.Done():
			return
		case <-time.After(every):
		}
	}
}

func (g *Gauges) clusters() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]string, 0, len(g.watched))
	for c := range g.watched {
		out = append(out, c)
	}
	sort.Strings(out)
	return out
}

// refresh recomputes every watched cluster's state. A cluster whose topology cannot be read
// keeps its last state; the global switch unread keeps the last states' recoveries.
func (g *Gauges) refresh(ctx context.Context) {
	rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	global, gerr := topology.Recoveries{}, error(nil)
	if g.Recoveries != nil {
		global, gerr = g.Recoveries(rctx)
	}
	if gerr != nil && g.Log != nil {
		g.Log.Debug("gauges: cannot read the global recoveries switch", "error", gerr)
	}
	clusters := g.clusters()
	topos := map[string]topology.Topology{}
	for _, c := range clusters {
		if t, err := g.Topologies.Read(rctx, c); err == nil {
			topos[c] = t
		}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	states := map[string]clusterState{}
	for _, c := range clusters {
		t, ok := topos[c]
		old, had := g.states[c]
		switch {
		case !ok && had:
			states[c] = old
		case !ok:
		default:
			s := stateOf(t, global, g.fenced[c])
			if gerr != nil && had {
				s.recoveries = old.recoveries
			}
			if gerr != nil && !had {
				continue
			}
			states[c] = s
		}
	}
	g.states = states
	// Lag readings of replicas no longer in a watched cluster go.
	for c, nodes := range g.lags {
		t, ok := topos[c]
		if !ok {
			if g.watched[c] == 0 {
				delete(g.lags, c)
			}
			continue
		}
		for n := range nodes {
			if !slices.ContainsFunc(t.Replicas, func(r topology.Node) bool { return r.Name == n }) {
				delete(nodes, n)
			}
		}
	}
}

// followFenced keeps g.fenced current with one blocking query on the prefix's key names.
func (g *Gauges) followFenced(ctx context.Context) {
	var index uint64
	for ctx.Err() == nil {
		qctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		keys, meta, err := g.Consul.KV().Keys(g.Prefix+"/", "", (&api.QueryOptions{WaitIndex: index, WaitTime: 10 * time.Second}).WithContext(qctx))
		cancel()
		if err != nil {
			index = 0
			sleepCtx(ctx, time.Second)
			continue
		}
		if meta.LastIndex < index {
			index = 0
			continue
		}
		index = meta.LastIndex
		f := fencedByCluster(g.Prefix, keys)
		g.mu.Lock()
		g.fenced = f
		g.mu.Unlock()
	}
}

// readLags reads, every second, the lag of up to LagPerSecond replicas that are due.
func (g *Gauges) readLags(ctx context.Context) {
	every, budget := g.LagEvery, g.LagPerSecond
	if every <= 0 {
		every = 15 * time.Second
	}
	if budget <= 0 {
		budget = 10
	}
	for ctx.Err() == nil {
		started := time.Now()
		replicas := map[string][]string{}
		nodes := map[[2]string]topology.Node{}
		for _, c := range g.clusters() {
			t, err := g.Topologies.Read(ctx, c)
			if err != nil {
				continue
			}
			for _, r := range t.Replicas {
				replicas[c] = append(replicas[c], r.Name)
				nodes[[2]string{c, r.Name}] = r
			}
		}
		g.mu.Lock()
		due := lagDue(replicas, g.lags, started, every, budget)
		g.mu.Unlock()
		var wg sync.WaitGroup
		for _, d := range due {
			wg.Add(1)
			go func() {
				defer wg.Done()
				lctx, cancel := context.WithTimeout(ctx, 2*time.Second)
				defer cancel()
				lag, ok, err := g.Lag(lctx, d[0], nodes[d])
				g.mu.Lock()
				defer g.mu.Unlock()
				if g.lags == nil {
					g.lags = map[string]map[string]lagValue{}
				}
				if g.lags[d[0]] == nil {
					g.lags[d[0]] = map[string]lagValue{}
				}
				g.lags[d[0]][d[1]] = lagValue{seconds: lag.Seconds(), at: time.Now(), ok: ok && err == nil}
			}()
		}
		wg.Wait()
		sleepCtx(ctx, time.Second-time.Since(started))
	}
}

func sleepCtx(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
