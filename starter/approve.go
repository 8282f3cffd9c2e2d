package main

import (
	"fmt"

	"github.com/spf13/cobra"
	"go.temporal.io/sdk/client"

	"github.com/baton-db/baton/workflows"
)

// newDecision builds `baton approve` and `baton abort`: Updates to a switchover waiting at
// its approval gate. The approver's name and the epoch they saw go into the history.
func newDecision(update, short string) *cobra.Command {
	var cluster, as, reason, run, to string
	cmd := &cobra.Command{
		Use:   update + " --cluster NAME --as APPROVER",
		Short: short,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, c, err := connect(cmd, cluster)
			if err != nil {
				return err
			}
			defer c.Close()
			// The epoch the approver saw, read in Consul by the worker (the Inspect
			// workflow): the gate refuses a plan made at another epoch.
			now, err := inspect(cmd.Context(), cfg, c, workflows.InspectInput{What: workflows.InspectEpoch, Cluster: cluster})
			if err != nil {
				return err
			}
			d := workflows.Decision{By: as, Epoch: now.Epoch, Reason: reason, RunID: run, Candidate: to}
			if update == workflows.UpdateApprove {
				v, err := c.QueryWorkflow(cmd.Context(), workflows.WorkflowID(cluster), "", workflows.QueryPlan)
				var p workflows.PlanView
				if err == nil {
					err = v.Get(&p)
				}
				if err != nil {
					return refusedIfRejected(fmt.Errorf("no switchover of %s to review: %w", cluster, err))
				}
				fmt.Printf("reviewing run %s: %s -> %s at epoch %d (%s)\n", p.RunID, p.From, p.To, p.Epoch, p.Reason)
				// Without --run/--to the approval names what was just shown; with them, what
				// the approver reviewed earlier, and a different waiting plan refuses it.
				if d.RunID == "" {
					d.RunID = p.RunID
				}
				if d.Candidate == "" {
					d.Candidate = p.To
				}
			}
			h, err := c.UpdateWorkflow(cmd.Context(), client.UpdateWorkflowOptions{
				WorkflowID:   workflows.WorkflowID(cluster), // the waiting run: the gate checks d.RunID against it
				UpdateName:   update,
				WaitForStage: client.WorkflowUpdateStageCompleted,
				Args:         []any{d},
			})
			if err != nil {
				return refusedIfRejected(fmt.Errorf("%s refused: %w", update, err))
			}
			var msg string
			if err := h.Get(cmd.Context(), &msg); err != nil {
				return refusedIfRejected(fmt.Errorf("%s refused: %w", update, err))
			}
			fmt.Println(msg)
			return nil
		},
	}
	cmd.Flags().StringVar(&cluster, "cluster", "", "cluster whose switchover waits (required)")
	cmd.Flags().StringVar(&as, "as", currentUser(), "your name, as listed in the cluster's approvers")
	cmd.Flags().StringVar(&reason, "reason", "", "why (recorded in the history)")
	if update == workflows.UpdateApprove {
		cmd.Flags().StringVar(&run, "run", "", "the run ID you reviewed (default: the one shown)")
		cmd.Flags().StringVar(&to, "to", "", "the candidate you reviewed (default: the one shown)")
	}
	_ = cmd.MarkFlagRequired("cluster")
	return cmd
}
