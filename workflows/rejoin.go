package workflows

import (
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/baton-db/baton/activities"
)

// RejoinNode brings an evicted node back as a replica, after checking its GTIDs.
func RejoinNode(ctx workflow.Context, in activities.RejoinInput) error {
	t := newTracker(ctx)
	_ = workflow.UpsertTypedSearchAttributes(ctx, SACluster.ValueSet(in.Cluster), SAKind.ValueSet("rejoin"))
	return t.run(ctx, step{name: "rejoin node", opts: waitingFor(time.Minute), summary: "rejoin " + in.Host,
		activity: a.RejoinNode, args: args(in)})
}

// RemoveNode takes a replica out of a running cluster: drained from the reader pool and
// detached (`baton node remove`). It shares the cluster's operation ID, so it never overlaps
// a switchover, a failover or a rejoin, and a dead primary's failover preempts it.
func RemoveNode(ctx workflow.Context, in activities.RemoveInput) (string, error) {
	t := newTracker(ctx)
	_ = workflow.UpsertTypedSearchAttributes(ctx, SACluster.ValueSet(in.Cluster), SAKind.ValueSet("remove"))
	var out string
	err := t.run(ctx, step{name: "remove node", opts: waitingFor(time.Minute), summary: "remove " + in.Host + " from " + in.Cluster,
		activity: a.RemoveNode, args: args(in), out: &out})
	return out, err
}
