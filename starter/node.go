package main

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"go.temporal.io/api/serviceerror"

	"github.com/baton-db/baton/activities"
	"github.com/baton-db/baton/internal/config"
	"github.com/baton-db/baton/internal/start"
	"github.com/baton-db/baton/internal/topology"
	"github.com/baton-db/baton/workflows"
)

func newNode() *cobra.Command {
	cmd := &cobra.Command{Use: "node", Short: "Change the nodes of a running cluster: a promotion rule, a removal"}
	cmd.AddCommand(newNodeSet(), newNodeRemove())
	return cmd
}

// newNodeSet sets a node's promotion rule in Consul through the worker (the Operate
// workflow): the next switchover's or failover's choice reads it, with no file edit and no
// restart.
func newNodeSet() *cobra.Command {
	var cluster, host, rule, as string
	cmd := &cobra.Command{
		Use:   "set --host NODE --promotion prefer|neutral|prefer_not|must_not [--cluster NAME] [--as NAME]",
		Short: "Set a node's promotion rule at run time (it overrides the config's prefer and must_not for that node)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !slices.Contains(topology.PromotionRules, rule) {
				return usage(fmt.Errorf("--promotion %q: want one of %s", rule, strings.Join(topology.PromotionRules, ", ")))
			}
			if strings.TrimSpace(as) == "" {
				return refused(fmt.Errorf("--as must name who sets the rule"))
			}
			if !config.ValidName(host) {
				return usage(fmt.Errorf("--host %q is not a valid node name (lower-case letters, digits, - and _)", host))
			}
			cfg, tc, err := operatorClient(cmd)
			if err != nil {
				return err
			}
			defer tc.Close()
			in := activities.PromotionInput{NodeRef: activities.NodeRef{Cluster: cluster, Host: host}, Rule: rule, By: as}
			res, err := operate(cmd.Context(), cfg, tc, cluster, fmt.Sprintf("promotion of %s set to %s by %s", host, rule, as), workflows.OperateInput{Promotion: &in})
			if err != nil {
				return err
			}
			note := ""
			if rule == "must_not" && res.Promotion.Primary {
				note = " (it is the primary now: the rule applies when it is a replica again)"
			}
			fmt.Printf("%s of %s: promotion %s, set by %s; the next switchover or failover reads it%s\n", host, res.Promotion.Cluster, rule, as, note)
			return nil
		},
	}
	cmd.Flags().StringVar(&host, "host", "", "node name (required)")
	cmd.Flags().StringVar(&cluster, "cluster", "", "cluster of the node (default: the one cluster that has it)")
	cmd.Flags().StringVar(&rule, "promotion", "", "prefer, neutral, prefer_not or must_not (required)")
	cmd.Flags().StringVar(&as, "as", currentUser(), "who sets it")
	_ = cmd.MarkFlagRequired("host")
	_ = cmd.MarkFlagRequired("promotion")
	return cmd
}

// newNodeRemove runs RemoveNode on the worker: the replica leaves the reader pool and stops
// replicating; `baton rejoin` takes it back.
func newNodeRemove() *cobra.Command {
	var cluster, host, reason, as string
	var force bool
	cmd := &cobra.Command{
		Use:   "remove --cluster NAME --host NODE --reason TEXT [--as NAME] [--force]",
		Short: "Take a replica out of a running cluster: drained from the reader pool, detached, kept read-only",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if strings.TrimSpace(reason) == "" {
				return refused(fmt.Errorf("--reason is required: say why %s leaves %s", host, cluster))
			}
			if strings.TrimSpace(as) == "" {
				return refused(fmt.Errorf("--as must name who removes it"))
			}
			cfg, c, err := connect(cmd, cluster)
			if err != nil {
				return err
			}
			defer c.Close()
			in := activities.RemoveInput{Cluster: cluster, Host: host, By: as, Reason: reason, Force: force}
			run, err := c.ExecuteWorkflow(cmd.Context(), start.Options(start.WorkflowID(cluster), cfg.Temporal.TaskQueue, "remove", cluster,
				fmt.Sprintf("removal of %s from %s", host, cluster)), start.Remove, in)
			var started *serviceerror.WorkflowExecutionAlreadyStarted
			if errors.As(err, &started) {
				return refused(fmt.Errorf("another operation of %s is running (workflow %s): a removal never overlaps one; nothing was changed. "+
					"Watch it with `baton watch --cluster %s` and remove %s when it has ended", cluster, start.WorkflowID(cluster), cluster, host))
			}
			if err != nil {
				return fmt.Errorf("start removal: %w", err)
			}
			var out string
			if err := run.Get(cmd.Context(), &out); err != nil {
				return explain(run.GetID(), err)
			}
			fmt.Println(out)
			return nil
		},
	}
	cmd.Flags().StringVar(&cluster, "cluster", "", "cluster name (required)")
	cmd.Flags().StringVar(&host, "host", "", "replica name or host:port (required)")
	cmd.Flags().StringVar(&reason, "reason", "", "why (required)")
	cmd.Flags().StringVar(&as, "as", currentUser(), "who removes it")
	cmd.Flags().BoolVar(&force, "force", false, "remove the last replica that may acknowledge commits (the primary then acknowledges alone)")
	_ = cmd.MarkFlagRequired("cluster")
	_ = cmd.MarkFlagRequired("host")
	return cmd
}
