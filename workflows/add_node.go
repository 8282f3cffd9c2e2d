package workflows

import (
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/baton-db/baton/activities"
	"github.com/baton-db/baton/internal/topology"
)

// NodeResult is what AddNode returns: the node added, whether it acknowledges the
// primary's commits, how long it took to catch up, and, for a replacement, the node removed.
type NodeResult struct {
	Cluster string
	// Kind ("node-add", "node-replace"), From (the node replaced) and To (the node added)
	// are named as in Result, which `baton watch` reads of any run of the cluster.
	Kind     string
	From, To string `json:",omitempty"`
	Node     topology.Node
	Primary  string
	// Acks: it acknowledges the primary's commits (semi-sync) under the durability policy.
	Acks bool
	// MadeReadOnly: the new server was writable and the check made it read-only.
	MadeReadOnly bool `json:",omitempty"`
	CatchUp      time.Duration
	// Replaced is the node a `node replace` removed; Removal what its removal said.
	Replaced string `json:",omitempty"`
	Removal  string `json:",omitempty"`
	// Note is a problem that did not fail the run (a semi-sync flag the detector sets).
	Note    string `json:",omitempty"`
	Outcome string
	Steps   []StepRecord
}

// AddNode makes a new server a replica of a running cluster (`baton node add`, runbook
// §3.2.3), and with in.Replace then removes the node it replaces (`baton node replace`,
// §3.2.4), as one auditable run:
//
//  1. check new node: it answers, its name, address and server_id are its own, it has what
//     onboarding requires, no errant transaction, no other source; then it is made
//     read-only (a refusal changes nothing). For a replacement, the old node must be a
//     replica, and the last acker only if the new node acknowledges in its place (or force);
//  2. attach: pointed at the primary as a failover points a replica, acknowledging nothing;
//  3. wait caught up: both threads running, the primary's transactions held;
//  4. register: replicas/<name> in Consul with CAS on the epoch (the reader pools take it),
//     then its semi-sync flag by the durability policy;
//  5. remove old node (replacement only): RemoveNode, as `baton node remove`.
//
// A failure or cancellation in 2–4 runs "undo attach" (on a disconnected context, so a
// failover that preempts the run still gets a detached, read-only node): nothing is left
// of the add. A failure in 5 leaves the new node a member and says how to remove the old.
// It shares the cluster's operation ID (start.WorkflowID), so it never overlaps a
// switchover, a failover, a rejoin or a removal.
func AddNode(ctx workflow.Context, in activities.AddNodeInput) (NodeResult, error) {
	t := newTracker(ctx)
	kind := "node-add"
	if in.Replace != "" {
		kind = "node-replace"
	}
	_ = workflow.UpsertTypedSearchAttributes(ctx, SACluster.ValueSet(in.Cluster), SAKind.ValueSet(kind))
	res := NodeResult{Cluster: in.Cluster, Kind: kind, From: in.Replace, To: in.Host}
	err := addNode(ctx, t, in, &res)
	res.Steps = t.steps
	switch {
	case err == nil:
		res.Outcome = "succeeded"
	case temporal.IsCanceledError(err) || errors.Is(ctx.Err(), workflow.ErrCanceled):
		res.Outcome = "preempted"
	default:
		res.Outcome = "failed"
	}
	dctx, _ := workflow.NewDisconnectedContext(ctx)
	_ = workflow.UpsertTypedSearchAttributes(dctx, SAOutcome.ValueSet(res.Outcome))
	return res, err
}

func addNode(ctx workflow.Context, t *tracker, in activities.AddNodeInput, res *NodeResult) error {
	var plan activities.NewNodePlan
	summary := fmt.Sprintf("may %s (%s, zone %s) join %s?", in.Host, in.Addr, in.Zone, in.Cluster)
	if in.Replace != "" {
		summary = fmt.Sprintf("may %s (%s, zone %s) replace %s in %s?", in.Host, in.Addr, in.Zone, in.Replace, in.Cluster)
	}
	if err := t.run(ctx, step{name: "check new node", opts: checkingNode, summary: summary,
		activity: a.CheckNewNode, args: args(in), out: &plan}); err != nil {
		return err
	}
	res.Node, res.Primary, res.Acks, res.MadeReadOnly = plan.Node, plan.Primary.Name, plan.Acks, plan.MadeReadOnly
	workflow.SetCurrentDetails(ctx, fmt.Sprintf("**Node add** of %s (%s, zone %s, server_id %d) to %s, replica of %s\n\nRequested by %s: %s",
		plan.Node.Name, plan.Node.Addr(), plan.Node.Zone, plan.Node.ServerID, in.Cluster, plan.Primary.Name, in.By, in.Reason))
	var caught activities.NodeCatchUp
	var reg activities.RegisterResult
	err := t.run(ctx, step{name: "attach", opts: waitingFor(time.Minute), summary: plan.Node.Name + " replicates from " + plan.Primary.Name,
		activity: a.AttachNode, args: args(plan)})
	if err == nil {
		err = t.run(ctx, step{name: "wait caught up", opts: catchingUp(plan.MaxCatchUp), summary: plan.Node.Name + " holds what " + plan.Primary.Name + " executed",
			activity: a.WaitCaughtUp, args: args(plan), out: &caught})
		res.CatchUp = caught.Took
	}
	if err == nil {
		err = t.run(ctx, step{name: "register", opts: quick, summary: "Consul: " + plan.Node.Name + " is a replica of " + in.Cluster,
			activity: a.RegisterNode, args: args(plan), out: &reg})
	}
	if err != nil {
		return undoAttach(ctx, t, plan, err)
	}
	res.Acks, res.Note = reg.Acks, reg.Note
	if plan.Replace == nil {
		return nil
	}
	old := *plan.Replace
	why := "replaced by " + plan.Node.Name
	if in.Reason != "" {
		why += ": " + in.Reason
	}
	err = t.run(ctx, step{name: "remove old node", opts: waitingFor(time.Minute), summary: "remove " + old.Name + " from " + in.Cluster,
		activity: a.RemoveNode, args: args(activities.RemoveInput{Cluster: in.Cluster, Host: old.Name, By: in.By, Reason: why, Force: in.Force}),
		out: &res.Removal})
	if err == nil {
		res.Replaced = old.Name
		return nil
	}
	if temporal.IsCanceledError(err) {
		return err
	}
	// Not a refusal (exit 3): the new node is a member now. The cause's text only, so no
	// refusal type of it reads as "nothing was changed".
	return temporal.NewNonRetryableApplicationError(fmt.Sprintf("%s was added to %s and is a member, but removing %s failed: %s; remove it with `baton node remove --cluster %s --host %s --reason ...`",
		plan.Node.Name, in.Cluster, old.Name, msgOf(err), in.Cluster, old.Name), activities.ErrReplaceIncomplete, nil)
}

// undoAttach takes back the attach after a failure or a cancellation. It runs on a
// disconnected context, so that a cancelled run still undoes; its own failure is reported
// with the original one, never swallowed.
func undoAttach(ctx workflow.Context, t *tracker, plan activities.NewNodePlan, cause error) error {
	dctx, _ := workflow.NewDisconnectedContext(ctx)
	var u activities.UndoAttachResult
	err := t.run(dctx, step{name: "undo attach", opts: func(ctx workflow.Context) workflow.Context { return options(ctx, 30*time.Second, 0, 5) },
		summary: "detach " + plan.Node.Name + ", read-only", activity: a.UndoAttach, args: args(plan), out: &u})
	if err != nil {
		return errors.Join(wrapf(cause, "node add of %s to %s failed", plan.Node.Name, plan.Cluster),
			wrapf(err, "undoing its attach failed too: stop %s's replication and set it read-only by hand", plan.Node.Name))
	}
	if temporal.IsCanceledError(cause) {
		return wrapf(cause, "node add of %s to %s cancelled; %s", plan.Node.Name, plan.Cluster, u.Note)
	}
	// The step's own words and type, and what became of the node; no cause, so that the
	// CLI reads it as a failure, never as a refusal that changed nothing.
	msg, typ := stepError(cause)
	return temporal.NewNonRetryableApplicationError(fmt.Sprintf("node add of %s to %s failed: %s. %s", plan.Node.Name, plan.Cluster, msg, u.Note), typ, nil)
}

func msgOf(err error) string { m, _ := stepError(err); return m }

// errNodeAddFailed is the type of a failed add whose step gave none.
const errNodeAddFailed = "NodeAddFailed"

// stepError is a failed step's own message and error type (an activity's ApplicationError).
func stepError(err error) (string, string) {
	var app *temporal.ApplicationError
	if errors.As(err, &app) {
		typ := app.Type()
		if typ == "" {
			typ = errNodeAddFailed
		}
		return app.Message(), typ
	}
	return rootCause(err), errNodeAddFailed
}

// checkingNode is the check's options: reads of the new server and Consul; a refusal is
// not retried, a primary that did not answer is.
func checkingNode(ctx workflow.Context) workflow.Context { return options(ctx, 30*time.Second, 0, 3) }

// catchingUp is the catch-up's options: it heartbeats every look, and bounds itself by limit
// (the step's own timeout is a margin above it).
func catchingUp(limit time.Duration) func(workflow.Context) workflow.Context {
	return func(ctx workflow.Context) workflow.Context { return options(ctx, limit+time.Minute, 10*time.Second, 3) }
}
