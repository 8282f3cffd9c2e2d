// Package detect is the detector: one Watcher per cluster probes its primary, asks the
// replicas when it cannot reach it, and starts UnplannedFailover on a DeadPrimary.
package detect

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/baton-db/baton/internal/config"
	"github.com/baton-db/baton/internal/flavor"
	"github.com/baton-db/baton/internal/mysqladmin"
	"github.com/baton-db/baton/internal/policy"
	"github.com/baton-db/baton/internal/start"
	"github.com/baton-db/baton/internal/telemetry"
	"github.com/baton-db/baton/internal/topology"
)

// Consul is what the detector reads from Consul.
type Consul interface {
	Read(ctx context.Context, cluster string) (topology.Topology, error)
	Reaches(ctx context.Context, cluster string) (map[string]topology.Reach, error)
	Recoveries(ctx context.Context) (topology.Recoveries, error)
}

// Topologies reads a cluster's topology, possibly from a cache (topology.Cache).
type Topologies interface {
	Read(ctx context.Context, cluster string) (topology.Topology, error)
}

// Starter starts a cluster's unplanned failover (start.Starter).
type Starter interface {
	StartFailover(ctx context.Context, in start.FailoverInput, summary string) (start.Started, error)
}

// Watcher watches one cluster's primary.
type Watcher struct {
	cluster string
	// problems are the bad Consul keys last logged (each change is logged once)
	problems string
	cc       config.ClusterConfig
	dc       config.Detector
	flavor   flavor.Flavor
	opts     mysqladmin.Options
	consul   Consul
	topos    Topologies
	starter  Starter
	log      *slog.Logger
	metrics  *telemetry.Metrics

	primary topology.Node
	probe   *probe
	gate    Gate
	// runDone hears when a failover this watcher started completed: a no-op (the primary
	// answered the workflow's probe) must not leave the watcher quiet for long.
	runDone  chan struct{}
	failures int
	first    time.Time // first sign of trouble in the current episode
	quietTil time.Time

	// topo is the last topology read; the fence pass works from it.
	topo      topology.Topology
	fencer    Fencer
	keepUsers map[string]bool
	fencing   atomic.Bool
	ticks     int
}

// Options configure a Watcher.
type Options struct {
	Cluster       string
	ClusterConfig config.ClusterConfig
	Detector      config.Detector
	Flavor        flavor.Flavor
	MySQL         mysqladmin.Options
	Consul        Consul
	// Topologies answers the watcher's periodic "who is primary" read; nil reads Consul.
	// Decisions (the replicas' views, the failover itself) always read Consul directly.
	Topologies Topologies
	Starter    Starter
	// Fencer records fencings (nil: logged only); KeepUsers are users whose sessions a
	// fence leaves alone (Baton's own and replication's).
	Fencer    Fencer
	KeepUsers []string
	Log       *slog.Logger
	Metrics   *telemetry.Metrics
	// Handshakes is shared by all of a detector's watchers (NewGate); nil: no bound.
	Handshakes Gate
}

// New returns a watcher of one cluster.
func New(o Options) *Watcher {
	w := &Watcher{runDone: make(chan struct{}, 1), cluster: o.Cluster, cc: o.ClusterConfig, dc: o.Detector, flavor: o.Flavor, opts: o.MySQL,
		consul: o.Consul, topos: o.Topologies, starter: o.Starter, log: o.Log, metrics: o.Metrics, gate: o.Handshakes}
	if w.topos == nil {
		w.topos = o.Consul
	}
	w.fencer, w.keepUsers = o.Fencer, map[string]bool{}
	for _, u := range o.KeepUsers {
		w.keepUsers[u] = true
	}
	return w
}

// Run watches until ctx ends.
func (w *Watcher) Run(ctx context.Context) {
	defer w.reset(topology.Node{})
	var lastRead time.Time
	for ctx.Err() == nil {
		if time.Since(lastRead) >= time.Second || w.primary.Name == "" {
			t, err := w.topos.Read(ctx, w.cluster)
			if err != nil {
				w.log.Warn("cannot read topology", "cluster", w.cluster, "error", err)
			} else {
				if p := strings.Join(t.Problems, "; "); p != w.problems {
					if p != "" {
						w.log.Warn("problems read in Consul (none decides a failover)", "cluster", w.cluster, "problems", p)
					}
					w.problems = p
				}
				lastRead, w.topo = time.Now(), t
				if t.Primary.Addr() != w.primary.Addr() {
					w.log.Info("watching primary", "cluster", w.cluster, "primary", t.Primary.Name, "addr", t.Primary.Addr(), "epoch", t.Epoch)
					w.reset(t.Primary)
				}
			}
		}
		w.fencePass(ctx)
		if w.primary.Name == "" || time.Now().Before(w.quietTil) {
			select {
			case <-ctx.Done():
			case <-time.After(w.dc.ProbeInterval):
			case <-w.runDone:
				w.quietTil = time.Time{}
			}
			continue
		}
		w.check(ctx) // takes a probe interval when the primary answers
	}
}

// fencePass starts a fence pass unless one is still running.
func (w *Watcher) fencePass(ctx context.Context) {
	w.ticks++
	if w.topo.Primary.Name == "" || (len(w.topo.Evicted) == 0 && w.ticks%replicaFenceEvery != 0) || !w.fencing.CompareAndSwap(false, true) {
		return
	}
	t, replicas := w.topo, w.ticks%replicaFenceEvery == 0
	go func() {
		defer w.fencing.Store(false)
		w.fenceReturned(ctx, t, replicas)
	}()
}

// reset starts watching n (or nothing) from a clean state.
func (w *Watcher) reset(n topology.Node) {
	if w.probe != nil {
		w.probe.close()
		w.probe = nil
	}
	w.primary, w.failures, w.first, w.quietTil = n, 0, time.Time{}, time.Time{}
	if n.Name == "" {
		return
	}
	probe, err := newProbe(n.Addr(), w.opts, w.dc.ProbeInterval, w.dc.ProbeTimeout, w.gate)
	if err != nil {
		w.log.Error("cannot watch the primary: its address does not make a connection", "cluster", w.cluster, "primary", n.Name, "error", err)
		w.primary = topology.Node{}
		return
	}
	w.probe = probe
}

// probeOptions are the connection settings with the probe's timeouts.
func (w *Watcher) probeOptions() mysqladmin.Options {
	o := w.opts
	o.ConnectTimeout, o.ReadTimeout = w.dc.ProbeTimeout, w.dc.ProbeTimeout
	return o
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

func (w *Watcher) check(ctx context.Context) {
	dropped, timedOut, err := w.probe.run(ctx)
	if ctx.Err() != nil {
		return
	}
	if err == nil {
		if w.failures > 0 {
			w.log.Info("primary answers again", "cluster", w.cluster, "primary", w.primary.Name, "after_failures", w.failures)
		}
		w.failures, w.first = 0, time.Time{}
		return
	}
	if dropped {
		w.log.Info("connection to primary dropped", "cluster", w.cluster, "primary", w.primary.Name, "error", err)
	}
	if w.first.IsZero() {
		w.first = time.Now()
	}
	w.failures++
	w.metrics.ProbeFailures.Add(ctx, 1, clusterAttr(w.cluster))
	// A fresh connection tells a dropped session from a dead server (and becomes the
	// probe's). After a timeout it would only time out again, and the next probe follows
	// at once; a refused one waits for the interval.
	reaches := false
	if dropped {
		_, oerr := w.probe.open(ctx)
		reaches = oerr == nil
	}
	if !timedOut && !dropped {
		defer sleep(ctx, w.dc.ProbeInterval)
	}

	deadline, pause := time.Now().Add(w.dc.ConfirmWindow), 50*time.Millisecond
	for {
		e := Evidence{Reaches: reaches, ConnDropped: dropped, ProbeFailures: w.failures, Threshold: w.dc.FailureThreshold}
		if !reaches && (dropped || w.failures >= w.dc.FailureThreshold) {
			e.Replicas, e.PrimaryZone = w.askReplicas(ctx)
		}
		v, why := Classify(e)
		switch v {
		case Healthy:
			w.failures, w.first = 0, time.Time{}
			return
		case Suspect:
			w.log.Info("primary suspect", "cluster", w.cluster, "primary", w.primary.Name, "evidence", why, "probe_error", err, "since_first", time.Since(w.first).Round(time.Millisecond))
			return
		case DeadPrimary:
			w.act(ctx, why)
			return
		}
		// UnreachablePrimary: replicas may not have noticed a crash yet; ask again, less and
		// less often (a mass outage must not turn into a storm of questions). With no
		// replica at all, nothing can confirm.
		if time.Now().After(deadline) || len(e.Replicas) == 0 {
			w.log.Warn("UnreachablePrimary: no failover", "cluster", w.cluster, "primary", w.primary.Name, "evidence", why)
			return
		}
		sleep(ctx, pause)
		pause = min(2*pause, 400*time.Millisecond)
	}
}

// askReplicas gathers each replica's view of the primary: its IO thread and its heartbeat
// agent's own connect attempt. Replicas are asked in parallel, so silent ones cost one
// probe timeout in all.
func (w *Watcher) askReplicas(ctx context.Context) ([]ReplicaView, string) {
	t, err := w.consul.Read(ctx, w.cluster)
	if err != nil {
		return nil, ""
	}
	reach, _ := w.consul.Reaches(ctx, w.cluster)
	out := make([]ReplicaView, len(t.Replicas))
	var wg sync.WaitGroup
	for i, r := range t.Replicas {
		v := ReplicaView{Name: r.Name, Zone: r.Zone}
		if rp, ok := reach[r.Name]; ok && rp.Primary == w.primary.Addr() && rp.Fresh(time.Now()) {
			okv := rp.OK
			v.AgentOK = &okv
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = w.askReplica(ctx, r, v)
		}()
	}
	wg.Wait()
	return out, t.Primary.Zone
}

func (w *Watcher) askReplica(ctx context.Context, r topology.Node, v ReplicaView) ReplicaView {
	c, err := mysqladmin.Open(r.Addr(), w.flavor, w.probeOptions())
	if err != nil {
		return v
	}
	defer c.Close()
	qctx, cancel := context.WithTimeout(ctx, w.dc.ProbeTimeout)
	defer cancel()
	if st, err := c.ReplicaStatus(qctx); err == nil && st != nil {
		v.Reachable = true
		v.IOState, v.IOError = st.IORunning, st.IOError
		v.IOConnected = st.IOConnected() && sameHost(st.SourceHost, w.primary.IPv4)
	}
	return v
}

// sameHost reports whether a replication source (an address or a name) is ip: a replica
// set up by hostname still follows the primary.
func sameHost(source, ip string) bool {
	if source == ip {
		return true
	}
	if net.ParseIP(source) != nil {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupHost(ctx, source)
	return err == nil && slices.Contains(addrs, ip)
}

// act starts the unplanned failover, unless Consul names another primary already or the
// failover policy (maintenance, anti-flap) forbids it. A planned switchover of the cluster
// is preempted: a dead primary always wins.
func (w *Watcher) act(ctx context.Context, evidence string) {
	latency := time.Since(w.first)
	t, err := w.consul.Read(ctx, w.cluster)
	if err != nil {
		w.log.Error("DeadPrimary but Consul is unreadable; not failing over", "cluster", w.cluster, "error", err)
		return
	}
	quiet := func(d time.Duration, msg string, args ...any) {
		w.quietTil = time.Now().Add(d)
		w.log.Warn(msg, append([]any{"cluster", w.cluster, "primary", w.primary.Name, "evidence", evidence}, args...)...)
	}
	if t.Primary.Name != w.primary.Name {
		quiet(0, "DeadPrimary already replaced in Consul", "consul_primary", t.Primary.Name)
		return
	}
	rec, err := w.consul.Recoveries(ctx)
	if err != nil {
		w.log.Error("DeadPrimary but the global recoveries switch is unreadable; not failing over", "cluster", w.cluster, "error", err)
		return
	}
	if ok, why := policy.Failover(t, rec, w.cc.AntiFlap, time.Now(), false); !ok {
		quiet(5*time.Second, "DeadPrimary: no failover: "+why)
		return
	}
	host, _ := os.Hostname()
	started, err := w.starter.StartFailover(ctx, start.FailoverInput{
		Cluster: w.cluster, DeadPrimary: w.primary.Name, RequestedBy: "detector@" + host, Evidence: evidence, DetectedAt: time.Now()},
		fmt.Sprintf("unplanned failover of %s: %s died", w.cluster, w.primary.Name))
	if err != nil {
		w.log.Error("DeadPrimary but the failover could not start; retrying", "cluster", w.cluster, "error", err)
		return
	}
	run := started.Run
	w.metrics.DetectionLatency.Record(ctx, latency.Seconds(), clusterAttr(w.cluster))
	w.metrics.FailoversStarted.Add(ctx, 1, clusterAttr(w.cluster))
	msg := "DeadPrimary: failover started"
	if started.Attached {
		msg = "DeadPrimary: a failover is already running"
	}
	if started.Preempted != "" {
		msg = "DeadPrimary: switchover preempted, failover started"
	}
	w.log.Warn(msg, "cluster", w.cluster, "primary", w.primary.Name, "detection_latency_ms", latency.Milliseconds(),
		"workflow_id", run.GetID(), "run_id", run.GetRunID(), "preempted_run", started.Preempted, "evidence", evidence)
	// Wait for Consul to name the new primary before judging again, or for the run to end:
	// a run that completed without replacing the primary (a no-op) lets the watcher resume.
	// A failed run keeps it quiet, so a failing failover is not restarted in a loop.
	w.quietTil = time.Now().Add(30 * time.Second)
	go func() {
		err := run.Get(ctx, nil)
		if err != nil {
			if ctx.Err() == nil {
				// Why it failed (no candidate qualifies, a knob forbids it) is the
				// operator's next step: say it here too, not only in the history.
				w.log.Error("DeadPrimary: the failover failed; a human must act", "cluster", w.cluster, "primary", w.primary.Name,
					"workflow_id", run.GetID(), "run_id", run.GetRunID(), "error", rootError(err))
			}
			return
		}
		select {
		case w.runDone <- struct{}{}:
		default:
		}
	}()
}

func clusterAttr(c string) metric.MeasurementOption {
	return metric.WithAttributes(attribute.String("cluster", c))
}

// rootError is the innermost message of a workflow's failure (the activity's own words).
func rootError(err error) string {
	for {
		u := errors.Unwrap(err)
		if u == nil {
			return err.Error()
		}
		err = u
	}
}
