package workflows

import "go.temporal.io/sdk/worker"

// Register adds every Baton workflow to w (a worker or a replayer).
func Register(w worker.WorkflowRegistry) {
	w.RegisterWorkflow(PlannedSwitchover)
	w.RegisterWorkflow(UnplannedFailover)
	w.RegisterWorkflow(RejoinNode)
	w.RegisterWorkflow(RemoveNode)
	w.RegisterWorkflow(DurabilityChanged)
	w.RegisterWorkflow(Inspect)
	w.RegisterWorkflow(Operate)
	w.RegisterWorkflow(AddCluster)
	w.RegisterWorkflow(AddNode)
}
