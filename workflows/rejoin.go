package workflows

import (
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/baton-db/baton/activities"
)

// RejoinWorkflowID is the ID of the rejoin of one node.
func RejoinWorkflowID(cluster, host string) string { return "rejoin/" + cluster + "/" + host }

// RejoinNode brings an evicted node back as a replica, after checking its GTIDs.
func RejoinNode(ctx workflow.Context, in activities.RejoinInput) error {
	t := newTracker(ctx)
	_ = workflow.UpsertTypedSearchAttributes(ctx, SACluster.ValueSet(in.Cluster), SAKind.ValueSet("rejoin"))
	return t.do(ctx, "rejoin node", func() error {
		return workflow.ExecuteActivity(options(ctx, time.Minute, 5*time.Second, 3), a.RejoinNode, in).Get(ctx, nil)
	})
}
