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

	"github.com/baton-db/baton/internal/app"
	"github.com/baton-db/baton/internal/heartbeat"
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
	cluster := fs.String("cluster", "", "cluster name")
	node := fs.String("node", "", "this replica's node name in Consul")
	interval := fs.Duration("interval", 200*time.Millisecond, "how often to write the heartbeat")
	source := fs.String("source-addr", "", "local address to connect from (this host's address)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *cluster == "" || *node == "" {
		return fmt.Errorf("--cluster and --node are required")
	}
	if *interval <= 0 {
		return fmt.Errorf("--interval must be positive, got %s", *interval)
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
	a := &heartbeat.Agent{Cluster: *cluster, Node: *node, Interval: *interval, Topo: topo, Log: app.Logger(), MySQL: o}
	return a.Run(ctx)
}
