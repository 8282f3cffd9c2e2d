package main

import (
	"fmt"

	"github.com/spf13/cobra"
	"go.temporal.io/sdk/client"

	"github.com/baton-db/baton/internal/app"
	"github.com/baton-db/baton/workflows"
)

// newDecision builds `baton approve` and `baton abort`: Updates to a switchover waiting at
// its approval gate. The approver's name and the epoch they saw go into the history.
func newDecision(update, short string) *cobra.Command {
	var cluster, as, reason string
	cmd := &cobra.Command{
		Use:   update + " --cluster NAME --as APPROVER",
		Short: short,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, c, err := connect(cmd, cluster)
			if err != nil {
				return err
			}
			defer c.Close()
			topo, err := app.Topology(cfg)
			if err != nil {
				return err
			}
			t, err := topo.Read(cmd.Context(), cluster)
			if err != nil {
				return err
			}
			h, err := c.UpdateWorkflow(cmd.Context(), client.UpdateWorkflowOptions{
				WorkflowID:   workflows.WorkflowID(cluster),
				UpdateName:   update,
				WaitForStage: client.WorkflowUpdateStageCompleted,
				Args:         []any{workflows.Decision{By: as, Epoch: t.Epoch, Reason: reason}},
			})
			if err != nil {
				return fmt.Errorf("%s refused: %w", update, err)
			}
			var msg string
			if err := h.Get(cmd.Context(), &msg); err != nil {
				return fmt.Errorf("%s refused: %w", update, err)
			}
			fmt.Println(msg)
			return nil
		},
	}
	cmd.Flags().StringVar(&cluster, "cluster", "", "cluster whose switchover waits (required)")
	cmd.Flags().StringVar(&as, "as", currentUser(), "your name, as listed in the cluster's approvers")
	cmd.Flags().StringVar(&reason, "reason", "", "why (recorded in the history)")
	_ = cmd.MarkFlagRequired("cluster")
	return cmd
}
