package main

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/temporal"

	"github.com/baton-db/baton/activities"
	"github.com/baton-db/baton/internal/config"
	"github.com/baton-db/baton/internal/start"
	"github.com/baton-db/baton/internal/topology"
	"github.com/baton-db/baton/workflows"
)

func newNode() *cobra.Command {
	cmd := &cobra.Command{Use: "node", Short: "Change the nodes of a running cluster: add, replace, remove, a promotion rule"}
	cmd.AddCommand(newNodeSet(), newNodeRemove(), newNodeAdd(), newNodeReplace())
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

// newNodeAdd runs AddNode on the worker: a new server checked, attached to the primary,
// caught up and registered in Consul, where the reader pools take it.
func newNodeAdd() *cobra.Command {
	var in activities.AddNodeInput
	cmd := &cobra.Command{
		Use:   "add --cluster NAME --host NODE --addr HOST:PORT --zone ZONE [--as NAME] [--reason TEXT] [--max-catchup D]",
		Short: "Add a new server to a running cluster: checked, attached to the primary, caught up, registered (the reader pools take it)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runAddNode(cmd, in)
		},
	}
	addNodeFlags(cmd, &in, "host", "name of the new node (required)")
	return cmd
}

// newNodeReplace runs AddNode with Replace: the new node is added as `node add` adds it,
// then the old one removed as `node remove` removes it, in one run.
func newNodeReplace() *cobra.Command {
	var in activities.AddNodeInput
	cmd := &cobra.Command{
		Use:   "replace --cluster NAME --host OLD --with NODE --addr HOST:PORT --zone ZONE [--as NAME] [--reason TEXT] [--force]",
		Short: "Replace a replica by a new server in one run: the new one added (checked, attached, caught up, registered), then the old one removed",
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runAddNode(cmd, in)
		},
	}
	addNodeFlags(cmd, &in, "with", "name of the new node (required)")
	cmd.Flags().StringVar(&in.Replace, "host", "", "the replica it replaces (required; the primary is refused: switch over first)")
	cmd.Flags().BoolVar(&in.Force, "force", false, "remove the last replica that may acknowledge commits although the new node may not acknowledge in its place")
	_ = cmd.MarkFlagRequired("host")
	return cmd
}

func addNodeFlags(cmd *cobra.Command, in *activities.AddNodeInput, nameFlag, nameHelp string) {
	cmd.Flags().StringVar(&in.Cluster, "cluster", "", "cluster name (required)")
	cmd.Flags().StringVar(&in.Host, nameFlag, "", nameHelp)
	cmd.Flags().StringVar(&in.Addr, "addr", "", "the new server's host:port, as Baton's worker reaches it (required)")
	cmd.Flags().StringVar(&in.Zone, "zone", "", "the new node's zone (required; the durability policy reads it)")
	cmd.Flags().StringVar(&in.By, "as", currentUser(), "who adds it")
	cmd.Flags().StringVar(&in.Reason, "reason", "", "why (recorded in the run)")
	cmd.Flags().DurationVar(&in.MaxCatchUp, "max-catchup", activities.DefaultMaxCatchUp,
		"how long the new node may take to catch up in all (each round, and any stretch without progress, is bounded by the cluster's catchup_timeout)")
	for _, f := range []string{"cluster", nameFlag, "addr", "zone"} {
		_ = cmd.MarkFlagRequired(f)
	}
}

// runAddNode starts AddNode under the cluster's operation ID and prints its result.
func runAddNode(cmd *cobra.Command, in activities.AddNodeInput) error {
	if !config.ValidName(in.Host) {
		return usage(fmt.Errorf("%q is not a valid node name (lower-case letters, digits, - and _)", in.Host))
	}
	if !config.ValidName(in.Zone) {
		return usage(fmt.Errorf("--zone %q is not a valid zone name (lower-case letters, digits, - and _)", in.Zone))
	}
	if _, _, err := net.SplitHostPort(in.Addr); err != nil {
		return usage(fmt.Errorf("--addr %q is not host:port", in.Addr))
	}
	if in.MaxCatchUp <= 0 {
		return usage(fmt.Errorf("--max-catchup %s: must be positive", in.MaxCatchUp))
	}
	if strings.TrimSpace(in.By) == "" {
		return refused(fmt.Errorf("--as must name who adds it"))
	}
	what := fmt.Sprintf("add of %s (%s, zone %s) to %s", in.Host, in.Addr, in.Zone, in.Cluster)
	kind := "node-add"
	if in.Replace != "" {
		what = fmt.Sprintf("replacement of %s by %s (%s, zone %s) in %s", in.Replace, in.Host, in.Addr, in.Zone, in.Cluster)
		kind = "node-replace"
	}
	cfg, c, err := connect(cmd, in.Cluster)
	if err != nil {
		return err
	}
	defer c.Close()
	run, err := c.ExecuteWorkflow(cmd.Context(), start.Options(start.WorkflowID(in.Cluster), cfg.Temporal.TaskQueue, kind, in.Cluster, what), start.AddNode, in)
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &started) {
		return refused(fmt.Errorf("another operation of %s is running (workflow %s): a node add never overlaps one; nothing was changed. "+
			"Watch it with `baton watch --cluster %s` and add %s when it has ended", in.Cluster, start.WorkflowID(in.Cluster), in.Cluster, in.Host))
	}
	if err != nil {
		return fmt.Errorf("start the %s: %w", what, err)
	}
	var res workflows.NodeResult
	if err := run.Get(cmd.Context(), &res); err != nil {
		return addNodeError(run.GetID(), err)
	}
	printNodeResult(res)
	return nil
}

// addNodeError is the exit code of a failed AddNode: a refusal of its check (non-retryable:
// nothing was changed but, at most, a writable new server made read-only) exits 3; any
// later failure exits 1 (the attach was undone, or the error says what is left).
func addNodeError(id string, err error) error {
	e := explain(id, err)
	var act *temporal.ActivityError
	var app *temporal.ApplicationError
	if errors.As(err, &act) && act.ActivityType().GetName() == "CheckNewNode" && errors.As(err, &app) && app.NonRetryable() {
		return refused(e)
	}
	return failed(e)
}

func printNodeResult(r workflows.NodeResult) {
	n := r.Node
	acks := "it does not acknowledge commits (the durability policy: zone " + n.Zone + ")"
	if r.Acks {
		acks = "it acknowledges commits (semi-sync)"
	}
	fmt.Printf("%s (%s, zone %s, server_id %d) is a replica of %s's primary %s and in its reader pool: caught up in %s; %s\n",
		n.Name, n.Addr(), n.Zone, n.ServerID, r.Cluster, r.Primary, r.CatchUp.Round(time.Millisecond), acks)
	if r.MadeReadOnly {
		fmt.Printf("  %s was writable: made read-only before it was attached\n", n.Name)
	}
	if r.Note != "" {
		fmt.Printf("  note: %s\n", r.Note)
	}
	if r.Replaced != "" {
		fmt.Printf("  replaced %s: %s\n", r.Replaced, r.Removal)
	}
	for _, s := range r.Steps {
		fmt.Printf("  %-16s %8s\n", s.Name, s.Duration.Round(time.Millisecond))
	}
}
