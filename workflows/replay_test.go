package workflows

import (
	"path/filepath"
	"testing"

	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/baton-db/baton/activities"
)

// The histories were recorded from real sandbox runs (tests/testdata/histories). Replaying
// them proves the current code still makes the same decisions, so a failover that is
// running during a deploy resumes correctly.
func TestReplayRecordedHistories(t *testing.T) {
	files, err := filepath.Glob("../tests/testdata/histories/*.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 3 {
		t.Fatalf("found %d recorded histories, want planned, unplanned and aborted", len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			r := worker.NewWorkflowReplayer()
			Register(r)
			if err := r.ReplayWorkflowHistoryFromJSONFile(nil, f); err != nil {
				t.Fatalf("replay %s: %v", f, err)
			}
		})
	}
}

// A changed step order must be caught by replay, or the test above proves nothing.
func TestReplayCatchesAChangedStepOrder(t *testing.T) {
	r := worker.NewWorkflowReplayer()
	r.RegisterWorkflowWithOptions(func(ctx workflow.Context, in SwitchoverInput) (Result, error) {
		var plan activities.Plan
		_ = workflow.ExecuteActivity(quick(ctx), a.CatchUpReplicas, plan).Get(ctx, nil) // skips the checks
		return Result{}, nil
	}, workflow.RegisterOptions{Name: "PlannedSwitchover"})
	err := r.ReplayWorkflowHistoryFromJSONFile(nil, "../tests/testdata/histories/planned.json")
	if err == nil {
		t.Fatal("replay accepted a workflow that runs different steps")
	}
}
