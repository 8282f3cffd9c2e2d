package workflows

import (
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/baton-db/baton/activities"
	"github.com/baton-db/baton/internal/config"
	"github.com/baton-db/baton/internal/start"
)

// DurabilityInput reports a change of a cluster's durability. It carries no secrets.
type DurabilityInput = start.DurabilityInput

// DurabilityChanged runs the hooks of a durability change that the detector recorded
// (docs/runbook.md §5, "durability never degrades in silence"): durability-degraded when the
// primary began acknowledging writes without the promised copy, durability-restored when
// it waits for one again. It changes nothing; its history is the audit trail.
func DurabilityChanged(ctx workflow.Context, in DurabilityInput) (Result, error) {
	t := newTracker(ctx)
	res := Result{Cluster: in.Cluster, Kind: "durability", From: in.Primary, Reason: in.Reason}
	_ = workflow.UpsertTypedSearchAttributes(ctx, SACluster.ValueSet(in.Cluster), SAKind.ValueSet("durability"))
	var refs []activities.HookRef
	if err := t.run(ctx, step{name: "read hooks", opts: readFor(5 * time.Second), local: true,
		activity: a.ClusterHooks, args: args(in.Cluster), out: &refs}); err != nil {
		return res, err
	}
	p := config.DurabilityDegraded
	if !in.Until.IsZero() {
		p = config.DurabilityRestored
	}
	ev := activities.Event{Cluster: in.Cluster, Kind: "durability", OldPrimary: in.Primary, Reason: in.Reason, RequestedBy: "detector"}
	_ = runHooks(ctx, t, refs, p, ev, &res) // post hooks: their failures are in the result
	setOutcome(ctx, &res, "succeeded")
	res.Steps = t.steps
	return res, nil
}
