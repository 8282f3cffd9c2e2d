// Command baton-heartbeat is the heartbeat agent of one replica (see internal/heartbeat).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/pflag"
	"go.opentelemetry.io/otel/metric"

	"github.com/baton-db/baton/internal/app"
	"github.com/baton-db/baton/internal/flavor"
	"github.com/baton-db/baton/internal/heartbeat"
	"github.com/baton-db/baton/internal/mysqladmin"
	"github.com/baton-db/baton/internal/telemetry"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "baton-heartbeat:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	fs := pflag.NewFlagSet("baton-heartbeat", pflag.ContinueOnError)
	app.AddFlags(fs)
	app.AddLogFlags(fs)
	cluster := fs.String("cluster", "", "cluster name")
	node := fs.String("node", "", "this replica's node name in Consul")
	interval := fs.Duration("interval", 200*time.Millisecond, "how often to write the heartbeat")
	source := fs.String("source-addr", "", "local address to connect from (this host's address)")
	flav := fs.String("flavor", "mariadb", "the node's SQL dialect: mariadb or mysql")
	leaseTTL := fs.Duration("lease-ttl", 2*time.Second, "as the primary's agent, hold the cluster's write lease with this TTL: the node fences itself within a third of it when it can renew it neither in Consul nor reach every replica (0: no lease; failovers then wait for no agent)")
	pidFile := fs.String("mysqld-pid-file", "", "this node's mysqld pid file: a deposed node whose commits are held is stopped (SIGKILL) instead of waiting for a restart")
	metrics := fs.String("metrics-addr", "", "serve Prometheus metrics (baton_agent_fences) on this address")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *cluster == "" || *node == "" {
		return fmt.Errorf("--cluster and --node are required")
	}
	if *interval <= 0 {
		return fmt.Errorf("--interval must be positive, got %s", *interval)
	}
	if err := heartbeat.CheckLeaseTTL(*leaseTTL, *interval); err != nil {
		return err
	}
	f, err := flavor.ByName(*flav)
	if err != nil {
		return fmt.Errorf("--flavor: %w", err)
	}
	// Its own config: no clusters, and secrets that hold only the heartbeat user's password
	// and this agent's Consul token.
	cfg, err := app.LoadAgentConfig(fs)
	if err != nil {
		return err
	}
	topo, err := app.Topology(cfg)
	if err != nil {
		return err
	}
	o, err := cfg.MySQLOptions(cfg.Secrets.HeartbeatUser, cfg.Secrets.HeartbeatPassword)
	if err != nil {
		return err
	}
	o.SourceAddr = *source
	var guard mysqladmin.Options
	if cfg.Secrets.GuardUser != "" {
		if guard, err = cfg.MySQLOptions(cfg.Secrets.GuardUser, cfg.Secrets.GuardPassword); err != nil {
			return err
		}
		guard.SourceAddr = *source
	}
	log := app.Logger(cfg)
	app.LogStarting(log, "heartbeat", "cluster", *cluster, "node", *node)
	if guard.User == "" {
		log.Warn("MYSQL_GUARD_USER is not set: this agent will not fence its own node when Consul deposes or evicts it (docs/runbook.md §5)")
	}
	tel, err := telemetry.Setup(ctx, telemetry.Config{PrometheusAddr: *metrics}, "heartbeat", log)
	if err != nil {
		return err
	}
	defer func() { _ = tel.Shutdown(context.Background()) }()
	fences, err := tel.Meter.Meter("baton").Int64Counter("baton_agent_fences",
		metric.WithDescription("times this agent fenced its own node (deposed or evicted, and writable)"))
	if err != nil {
		return err
	}
	a := &heartbeat.Agent{Cluster: *cluster, Node: *node, Interval: *interval, Topo: topo, Log: log, MySQL: o, Guard: guard, Flavor: f, Fences: fences, MysqldPIDFile: *pidFile, LeaseTTL: *leaseTTL}
	tel.SetReady(a.Ready)
	if guard.User == "" {
		a.LeaseTTL = 0
		if *leaseTTL > 0 {
			log.Warn("no lease: it needs MYSQL_GUARD_USER (the agent must be able to fence its node)")
		}
	}
	return a.Run(ctx)
}
