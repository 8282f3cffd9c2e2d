package start

import (
	"time"

	"go.temporal.io/sdk/client"
)

// AddCluster is the workflow type of `baton cluster add`: the worker prepares the servers,
// discovers and checks the cluster, seeds its topology and enters it in the catalog.
const AddCluster = "AddCluster"

// AddClusterTimeout bounds an AddCluster run: its steps take seconds (preparing new
// servers waits up to 15 s for their replication); with no worker polling the task queue
// the CLI gets an error instead of waiting for ever.
const AddClusterTimeout = 3 * time.Minute

// AddClusterWorkflowID is the one ID of every add of a cluster, "add/<cluster>": a second
// add of the same name is refused while one runs (and may run again once it has ended).
func AddClusterWorkflowID(cluster string) string { return "add/" + cluster }

// AddClusterOptions are the start options of an AddCluster run: kind "add" and the
// cluster's BatonCluster (`baton status` shows it as the cluster's open operation); a start
// while another add of the cluster runs fails (WorkflowExecutionAlreadyStarted).
func AddClusterOptions(cluster, queue, summary string) client.StartWorkflowOptions {
	o := Options(AddClusterWorkflowID(cluster), queue, "add", cluster, summary)
	o.WorkflowExecutionTimeout = AddClusterTimeout
	return o
}
