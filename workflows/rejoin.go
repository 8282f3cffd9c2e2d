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
