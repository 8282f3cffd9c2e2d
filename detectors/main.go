// Command baton-detector watches its share of the configured clusters' primaries (the
// detectors share them through Consul, internal/fleet) and starts UnplannedFailover when
// one dies (docs/runbook.md §4).
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/baton-db/baton/internal/app"
	"github.com/baton-db/baton/internal/catalog"
	"github.com/baton-db/baton/internal/detect"
	"github.com/baton-db/baton/internal/flavor"
	"github.com/baton-db/baton/internal/fleet"
	"github.com/baton-db/baton/internal/mysqladmin"
	"github.com/baton-db/baton/internal/start"
	"github.com/baton-db/baton/internal/topology"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "baton-detector:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	fs := pflag.NewFlagSet("baton-detector", pflag.ContinueOnError)
	app.AddFlags(fs)
	app.AddLogFlags(fs)
	source := fs.String("source-addr", "", "local address for MySQL connections (overrides mysql.source_addr)")
	lagEvery := fs.Duration("replica-lag-every", 15*time.Second, "read each watched replica's heartbeat lag this often at most, for baton_replica_lag_seconds (a new connection each time, at most 10 a second; 0: never)")
	host, _ := os.Hostname()
	id := fs.String("id", fmt.Sprintf("%s-%d", host, os.Getpid()), "this detector's name in the fleet (unique; shown by `baton status`)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := app.LoadConfig(fs)
	if err != nil {
		return err
	}
	p, err := app.Start(ctx, cfg, "detector", cfg.Detector.MetricsAddr)
	if err != nil {
		return err
	}
	defer p.Close()
	log, m, tc, topo := p.Log, p.Metrics, p.Temporal, p.Topo
	src := cfg.MySQL.SourceAddr
	if *source != "" {
		src = *source
	}
	// The clusters are the catalog's (internal/catalog): every detector reads the same list,
	// so their shard plans agree; a cluster added, changed or removed is followed at once.
	cat := p.Catalog(ctx, cfg, "detector "+*id)
	o, err := cfg.MySQLOptions(cfg.Secrets.AdminUser, cfg.Secrets.AdminPassword)
	if err != nil {
		return err
	}
	o.ConnectTimeout, o.ReadTimeout, o.SourceAddr = cfg.Detector.ProbeTimeout, cfg.Detector.ProbeTimeout, src
	// One blocking query on Consul for every cluster's "who is primary", on a client of its
	// own: watchers queueing for Consul (a mass outage) must not starve it.
	cacheStore, err := app.Topology(cfg)
	if err != nil {
		return err
	}
	topos := cacheStore.Watch(ctx)
	handshakes := detect.NewGate(cfg.Detector.ConcurrentHandshakes)
	gauges := &detect.Gauges{Detector: *id, Configured: func() int { return len(cat.Names()) }, Topologies: topos, Recoveries: topo.Recoveries,
		Consul: cacheStore.Client(), Prefix: cfg.Consul.KVPrefix, LagEvery: *lagEvery, LagPerSecond: 10, Log: log}
	if *lagEvery > 0 {
		gauges.Lag = func(ctx context.Context, cluster string, n topology.Node) (time.Duration, bool, error) {
			cl, err := cat.Cluster(ctx, cluster)
			if err != nil {
				return 0, false, err
			}
			f, err := flavor.ByName(string(cl.Config.Flavor))
			if err != nil {
				return 0, false, err
			}
			c, err := mysqladmin.Open(n.Addr(), f, o)
			if err != nil {
				return 0, false, err
			}
			defer c.Close()
			return c.HeartbeatLag(ctx)
		}
	}
	if cfg.Detector.MetricsAddr != "" {
		if err := gauges.Register(p.Meter()); err != nil {
			return err
		}
		go gauges.Run(ctx)
	}
	runs := &watchRuns{cancel: map[string]func(){}, version: map[string]uint64{}}
	go runs.restartChanged(ctx, cat, log)
	watch := func(ctx context.Context, name string) {
		log.Info("watching cluster", "cluster", name, "detector", *id)
		defer gauges.Watching(name)()
		restarted := false
		for ctx.Err() == nil {
			cl, err := cat.Cluster(ctx, name)
			var f flavor.Flavor
			if err == nil {
				f, err = flavor.ByName(string(cl.Config.Flavor))
			}
			if err != nil {
				log.Error("cannot watch cluster; retrying", "cluster", name, "error", err)
				sleepCtx(ctx, time.Second)
				continue
			}
			if cl.Problem != nil {
				log.Error("the cluster's catalog entry is malformed; watching with its last good settings", "cluster", name, "error", cl.Problem)
			}
			if restarted {
				log.Info("the cluster's settings changed; watching with the new ones", "cluster", name, "version", cl.Version)
			}
			rctx := runs.start(ctx, name, cl.Version)
			detect.New(detect.Options{Cluster: name, ClusterConfig: cl.Config, Detector: cfg.Detector, Flavor: f, Consul: topo,
				Topologies: topos, Starter: start.Starter{Client: tc, Queue: cfg.Temporal.TaskQueue}, Log: log, Metrics: m,
				Fencer: topo, KeepUsers: []string{cfg.Secrets.AdminUser, cfg.Secrets.ReplUser},
				MySQL: o, Handshakes: handshakes}).Run(rctx)
			runs.end(name)
			restarted = true
		}
	}
	_ = cat.Ready(ctx)
	log.Info("detector started", "id", *id, "clusters", cat.Names(), "probe_interval", cfg.Detector.ProbeInterval,
		"probe_timeout", cfg.Detector.ProbeTimeout, "failure_threshold", cfg.Detector.FailureThreshold)
	// The clusters are shared with every other detector through Consul locks (internal/fleet),
	// on a client of its own: the session's check must pass even while watchers queue.
	fc, err := app.Topology(cfg)
	if err != nil {
		return err
	}
	fl := &fleet.Fleet{Consul: fc.Client(), Prefix: app.FleetPrefix(cfg), ID: *id, Names: cat.Names, Changed: cat.Subscribe(), Watch: watch, Log: log}
	p.ReadyWhen(fl.Ready)
	return fl.Run(ctx)
}

// watchRuns are the running watchers' settings versions: a watcher whose cluster's catalog
// entry changed is restarted with the new settings.
type watchRuns struct {
	mu      sync.Mutex
	cancel  map[string]func()
	version map[string]uint64
}

func (w *watchRuns) start(ctx context.Context, name string, version uint64) context.Context {
	rctx, cancel := context.WithCancel(ctx)
	w.mu.Lock()
	w.cancel[name], w.version[name] = cancel, version
	w.mu.Unlock()
	return rctx
}

func (w *watchRuns) end(name string) {
	w.mu.Lock()
	if c := w.cancel[name]; c != nil {
		c()
	}
	delete(w.cancel, name)
	delete(w.version, name)
	w.mu.Unlock()
}

// restartChanged ends the run of every watcher whose settings version is no longer the
// catalog's; its loop starts it again with the new settings.
func (w *watchRuns) restartChanged(ctx context.Context, cat *catalog.Catalog, log *slog.Logger) {
	sub := cat.Subscribe()
	for {
		select {
		case <-ctx.Done():
			return
		case <-sub:
		}
		w.mu.Lock()
		for name, v := range w.version {
			if cl, err := cat.Cluster(ctx, name); err == nil && cl.Version != v {
				log.Info("the cluster's catalog entry changed", "cluster", name, "from", v, "to", cl.Version)
				w.cancel[name]()
				delete(w.version, name)
			}
		}
		w.mu.Unlock()
	}
}

func sleepCtx(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
