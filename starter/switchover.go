package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"go.temporal.io/api/serviceerror"

	"github.com/baton-db/baton/activities"
	"github.com/baton-db/baton/internal/app"
	"github.com/baton-db/baton/internal/config"
	"github.com/baton-db/baton/internal/start"
	"github.com/baton-db/baton/workflows"
)

func newSwitchover() *cobra.Command {
	var cluster, to string
	var wait, dryRun, approval bool
	cmd := &cobra.Command{
		Use:   "switchover --cluster NAME [--to NODE] [--wait]",
		Short: "Start a planned switchover and follow it step by step",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !config.ValidName(cluster) {
				return usage(fmt.Errorf("--cluster %q is not a valid cluster name (lower-case letters, digits, - and _)", cluster))
			}
			cfg, err := loadCluster(cmd, cluster)
			if err != nil {
				return err
			}
			if dryRun {
				return dryRunSwitchover(cmd.Context(), cfg, activities.CheckInput{Cluster: cluster, Candidate: to}, stdout)
			}
			c, err := app.Client(cmd.Context(), cfg, quietLogger())
			if err != nil {
				return err
			}
			defer c.Close()
			in := workflows.SwitchoverInput{Cluster: cluster, Candidate: to, RequestedBy: currentUser(), RequireApproval: approval}
			run, err := c.ExecuteWorkflow(cmd.Context(), start.Options(start.WorkflowID(cluster), cfg.Temporal.TaskQueue, "planned", cluster,
				fmt.Sprintf("planned switchover of %s", cluster)), start.Switchover, in)
			var started *serviceerror.WorkflowExecutionAlreadyStarted
			if errors.As(err, &started) {
				return refused(fmt.Errorf("a switchover or failover of %s is already running (workflow %s); watch it in the Web UI and retry when it ends",
					cluster, workflows.WorkflowID(cluster)))
			}
			if err != nil {
				return fmt.Errorf("start switchover: %w", err)
			}
			fmt.Printf("started %s run %s\n", run.GetID(), run.GetRunID())
			if !wait {
				return nil
			}
			return follow(cmd.Context(), c, run, os.Stdout)
		},
	}
	cmd.Flags().StringVar(&cluster, "cluster", "", "cluster to switch over (required)")
	cmd.Flags().StringVar(&to, "to", "", "candidate node name or host:port (default: Baton chooses)")
	cmd.Flags().BoolVar(&wait, "wait", true, "follow the workflow until it ends")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print the plan, the checks and the steps; change nothing")
	cmd.Flags().BoolVar(&approval, "require-approval", false, "wait for `baton approve` before the demotion, whatever the cluster's policy")
	_ = cmd.MarkFlagRequired("cluster")
	return cmd
}
