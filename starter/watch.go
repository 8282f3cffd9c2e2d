package main

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/baton-db/baton/workflows"
)

func newWatch() *cobra.Command {
	var cluster, runID string
	var out *output
	cmd := &cobra.Command{
		Use:   "watch --cluster NAME [--run-id ID] [-o json]",
		Short: "Follow the latest (or a given) switchover or failover of a cluster, step by step",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := out.check(); err != nil {
				return err
			}
			_, c, err := connect(cmd, cluster)
			if err != nil {
				return err
			}
			defer c.Close()
			return followRun(cmd.Context(), c, c.GetWorkflow(cmd.Context(), workflows.WorkflowID(cluster), runID), os.Stdout, out.json())
		},
	}
	cmd.Flags().StringVar(&cluster, "cluster", "", "cluster name (required)")
	cmd.Flags().StringVar(&runID, "run-id", "", "a specific run (default: the latest)")
	out = addOutput(cmd)
	_ = cmd.MarkFlagRequired("cluster")
	return cmd
}
