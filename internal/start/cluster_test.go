package start

import (
	"testing"

	"go.temporal.io/api/enums/v1"
)

// Every add of a cluster has the one ID add/<cluster>, so a second add of it fails to start
// while one runs; it carries the cluster and kind "add", and ends by itself with no worker.
func TestAddClusterOptions(t *testing.T) {
	o := AddClusterOptions("demo3", "baton", "baton cluster add demo3")
	if o.ID != "add/demo3" || AddClusterWorkflowID("demo3") != o.ID {
		t.Errorf("ID %q", o.ID)
	}
	if o.WorkflowIDConflictPolicy != enums.WORKFLOW_ID_CONFLICT_POLICY_FAIL || !o.WorkflowExecutionErrorWhenAlreadyStarted {
		t.Errorf("a running add is not refused: %+v", o)
	}
	if o.WorkflowIDReusePolicy != enums.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE {
		t.Errorf("an ended add blocks the next: %v", o.WorkflowIDReusePolicy)
	}
	sa := o.TypedSearchAttributes
	if c, ok := sa.GetKeyword(SACluster); !ok || c != "demo3" {
		t.Errorf("cluster %q %v", c, ok)
	}
	if k, ok := sa.GetKeyword(SAKind); !ok || k != "add" {
		t.Errorf("kind %q %v", k, ok)
	}
	if o.WorkflowExecutionTimeout != AddClusterTimeout || o.TaskQueue != "baton" || o.Memo[MemoVersion] == nil {
		t.Errorf("options %+v", o)
	}
}
