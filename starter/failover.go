package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"go.temporal.io/api/serviceerror"

	"github.com/baton-db/baton/activities"
	"github.com/baton-db/baton/internal/app"
	"github.com/baton-db/baton/internal/start"
)

func newFailover() *cobra.Command {
	var cluster string
	var force, wait, dryRun, alive bool
	cmd := &cobra.Command{
		Use:   "failover --cluster NAME [--force [--primary-alive]]",
		Short: "Start the unplanned failover of a cluster whose primary is dead (or, forced, sick)",
		Long: "Starts UnplannedFailover, the workflow the detector starts. It still confirms that the primary is dead;\n" +
			"--force skips the maintenance flag, the anti-flap period, the recoveries switches and the cluster's zone and lag\n" +
			"limits. --force --primary-alive replaces a primary that still answers (sick, not dead): it is fenced first\n" +
			"(read-only, sessions ended), the replicas apply what it executed, and only a replica holding all of it is\n" +
			"promoted; if none is, nothing is promoted and the primary is made writable again.",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if alive && !force {
				return usage(errors.New("--primary-alive replaces a primary that still answers and needs --force: a human's decision, never the detector's; nothing was changed"))
			}
			cfg, err := loadCluster(cmd, cluster)
			if err != nil {
				return err
			}
			if dryRun {
				return dryRunFailover(cmd.Context(), cfg, cluster, force, alive, stdout)
			}
			c, err := app.Client(cmd.Context(), cfg, quietLogger())
			if err != nil {
				return err
			}
			defer c.Close()
			st := start.Starter{Client: c, Queue: cfg.Temporal.TaskQueue}
			started, err := st.StartFailover(cmd.Context(), start.FailoverInput{Cluster: cluster, Force: force, PrimaryAlive: alive, RequestedBy: currentUser()},
				fmt.Sprintf("unplanned failover of %s, started by %s", cluster, currentUser()))
			if err != nil {
				return fmt.Errorf("start failover: %w", err)
			}
			run := started.Run
			switch {
			case started.Attached && force:
				return refused(fmt.Errorf("a failover of %s is already running (%s run %s); --force was not applied to it. "+
					"Follow it with `baton watch --cluster %s`, and run `baton failover --force` again once it has ended if it is still needed",
					cluster, run.GetID(), run.GetRunID(), cluster))
			case started.Attached:
				fmt.Printf("a failover of %s is already running: following %s run %s\n", cluster, run.GetID(), run.GetRunID())
			case started.Preempted != "":
				fmt.Printf("cancelled the running switchover (run %s) and started %s run %s\n", started.Preempted, run.GetID(), run.GetRunID())
			default:
				fmt.Printf("started %s run %s\n", run.GetID(), run.GetRunID())
			}
			if !wait {
				return nil
			}
			return follow(cmd.Context(), c, run, os.Stdout)
		},
	}
	cmd.Flags().StringVar(&cluster, "cluster", "", "cluster to fail over (required)")
	cmd.Flags().BoolVar(&force, "force", false, "skip maintenance, the anti-flap period, the recoveries switches and the zone and lag limits")
	cmd.Flags().BoolVar(&alive, "primary-alive", false, "with --force: fence and replace a primary that still answers")
	cmd.Flags().BoolVar(&wait, "wait", true, "follow the workflow until it ends")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print what the failover would do; change nothing")
	_ = cmd.MarkFlagRequired("cluster")
	return cmd
}

func newRejoin() *cobra.Command {
	var cluster, host string
	cmd := &cobra.Command{
		Use:   "rejoin --cluster NAME --host NODE",
		Short: "Bring an evicted node back as a replica, after checking it has nothing the primary lacks",
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, c, err := connect(cmd, cluster)
			if err != nil {
				return err
			}
			defer c.Close()
			// One operation per cluster: a rejoin shares the switchover's and failover's ID.
			run, err := c.ExecuteWorkflow(cmd.Context(), start.Options(start.WorkflowID(cluster), cfg.Temporal.TaskQueue, "rejoin", cluster,
				fmt.Sprintf("rejoin of %s to %s", host, cluster)), start.Rejoin, activities.RejoinInput{Cluster: cluster, Host: host})
			var started *serviceerror.WorkflowExecutionAlreadyStarted
			if errors.As(err, &started) {
				return fmt.Errorf("another operation of %s is running (workflow %s): a rejoin never overlaps a switchover or failover; "+
					"nothing was changed. Watch it with `baton watch --cluster %s` and rejoin %s when it has ended", cluster, start.WorkflowID(cluster), cluster, host)
			}
			if err != nil {
				return fmt.Errorf("start rejoin: %w", err)
			}
			if err := run.Get(cmd.Context(), nil); err != nil {
				return explain(run.GetID(), err)
			}
			fmt.Printf("%s is a replica of %s again and back in the reader pool\n", host, cluster)
			return nil
		},
	}
	cmd.Flags().StringVar(&cluster, "cluster", "", "cluster name (required)")
	cmd.Flags().StringVar(&host, "host", "", "evicted node name or host:port (required)")
	_ = cmd.MarkFlagRequired("cluster")
	_ = cmd.MarkFlagRequired("host")
	return cmd
}
