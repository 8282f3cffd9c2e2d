package start

import (
	"regexp"
	"testing"
)

// An Inspect or Operate run has its own ID each time, carries its kind but not the
// cluster's search attribute (so `baton status` does not list its own read as the cluster's
// open operation), and ends by itself when no worker runs it.
func TestOperatorOptions(t *testing.T) {
	o := OperatorOptions("inspect", "demo", "baton", "baton status demo")
	if !regexp.MustCompile(`^inspect/demo/[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(o.ID) {
		t.Errorf("ID %q", o.ID)
	}
	if o2 := OperatorOptions("inspect", "demo", "baton", ""); o2.ID == o.ID {
		t.Errorf("two runs share the ID %q", o.ID)
	}
	if id := OperatorWorkflowID("operate", ""); !regexp.MustCompile(`^operate/all/`).MatchString(id) {
		t.Errorf("ID without a cluster %q", id)
	}
	sa := o.TypedSearchAttributes
	if kind, ok := sa.GetKeyword(SAKind); !ok || kind != "inspect" {
		t.Errorf("kind %q %v", kind, ok)
	}
	if _, ok := sa.GetKeyword(SACluster); ok {
		t.Error("an operator run carries BatonCluster")
	}
	if o.WorkflowExecutionTimeout != OperatorTimeout || o.TaskQueue != "baton" || o.Memo[MemoVersion] == nil {
		t.Errorf("options %+v", o)
	}
}
