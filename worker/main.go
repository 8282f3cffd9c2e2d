// Command baton-worker runs Baton's workflows and activities.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/pflag"
	"go.temporal.io/sdk/worker"

	"github.com/baton-db/baton/activities"
	"github.com/baton-db/baton/internal/app"
	"github.com/baton-db/baton/workflows"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "baton-worker:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	fs := pflag.NewFlagSet("baton-worker", pflag.ContinueOnError)
	app.AddFlags(fs)
	app.AddLogFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := app.LoadConfig(fs)
	if err != nil {
		return err
	}
	p, err := app.Start(ctx, cfg, "worker", cfg.Telemetry.PrometheusAddr)
	if err != nil {
		return err
	}
	defer p.Close()
	log, c := p.Log, p.Temporal
	acts := activities.New(cfg, p.Topo)
	acts.Metrics = p.Metrics
	cat := p.Catalog(ctx, cfg, "worker")
	acts.Clusters = cat
	defer activities.Local{Activities: acts}.Close()

	opts := worker.Options{}
	if f := os.Getenv("BATON_FAULT_CRASH_FILE"); f != "" {
		opts.Interceptors = append(opts.Interceptors, &crashHook{file: f})
		log.Warn("fault injection enabled", "file", f)
	}
	w := worker.New(c, cfg.Temporal.TaskQueue, opts)
	workflows.Register(w)
	w.RegisterActivity(acts)
	log.Info("worker started", "task_queue", cfg.Temporal.TaskQueue, "namespace", cfg.Temporal.Namespace)
	if err := w.Start(); err != nil {
		return err
	}
	p.ReadyWhen(cat.Ready)
	<-ctx.Done()
	w.Stop()
	return nil
}
