// Command baton-detector watches its share of the configured clusters' primaries (the
// detectors share them through Consul, internal/fleet) and starts UnplannedFailover when
// one dies (docs/runbook.md §4).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"sort"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/baton-db/baton/internal/app"
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
	names := make([]string, 0, len(cfg.Clusters))
	for n := range cfg.Clusters {
		names = append(names, n)
	}
	sort.Strings(names)
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
	gauges := &detect.Gauges{Detector: *id, Configured: len(names), Topologies: topos, Recoveries: topo.Recoveries,
		Consul: cacheStore.Client(), Prefix: cfg.Consul.KVPrefix, LagEvery: *lagEvery, LagPerSecond: 10, Log: log}
	if *lagEvery > 0 {
		gauges.Lag = func(ctx context.Context, cluster string, n topology.Node) (time.Duration, bool, error) {
			f, err := flavor.ByName(string(cfg.Clusters[cluster].Flavor))
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
	watch := func(ctx context.Context, name string) {
		cc := cfg.Clusters[name]
		f, err := flavor.ByName(string(cc.Flavor))
		if err != nil {
			log.Error("cannot watch cluster", "cluster", name, "error", err)
			return
		}
		log.Info("watching cluster", "cluster", name, "detector", *id)
		defer gauges.Watching(name)()
		detect.New(detect.Options{Cluster: name, ClusterConfig: cc, Detector: cfg.Detector, Flavor: f, Consul: topo,
			Topologies: topos, Starter: start.Starter{Client: tc, Queue: cfg.Temporal.TaskQueue}, Log: log, Metrics: m,
			Fencer: topo, KeepUsers: []string{cfg.Secrets.AdminUser, cfg.Secrets.ReplUser},
			MySQL: o, Handshakes: handshakes}).Run(ctx)
	}
	log.Info("detector started", "id", *id, "clusters", names, "probe_interval", cfg.Detector.ProbeInterval,
		"probe_timeout", cfg.Detector.ProbeTimeout, "failure_threshold", cfg.Detector.FailureThreshold)
	// The clusters are shared with every other detector through Consul locks (internal/fleet),
	// on a client of its own: the session's check must pass even while watchers queue.
	fc, err := app.Topology(cfg)
	if err != nil {
		return err
	}
	fl := &fleet.Fleet{Consul: fc.Client(), Prefix: app.FleetPrefix(cfg), ID: *id, Clusters: names, Watch: watch, Log: log}
	p.ReadyWhen(fl.Ready)
	return fl.Run(ctx)
}
