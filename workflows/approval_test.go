package workflows

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/testsuite"

	"github.com/baton-db/baton/activities"
)

type updateResult struct {
	rejected error
	err      error
	accepted bool
}

func (u *updateResult) callbacks() *testsuite.TestUpdateCallback {
	return &testsuite.TestUpdateCallback{
		OnReject:   func(err error) { u.rejected = err },
		OnAccept:   func() { u.accepted = true },
		OnComplete: func(_ any, err error) { u.err = err },
	}
}

// testRun is the run ID of every workflow the test environment runs.
const testRun = "default-test-run-id"

func gated(env *testsuite.TestWorkflowEnvironment) {
	p := plan
	p.Approval = activities.Approval{Required: true, Reason: "require_approval is always", Approvers: []string{"alice"}, Timeout: time.Hour}
	env.OnActivity("CheckPreconditions", mock.Anything, mock.Anything).Return(p, nil)
}

func TestApprovalGateWaitsThenProceeds(t *testing.T) {
	env := newEnv(t)
	happy(env, "CheckPreconditions")
	gated(env)
	var stranger, stale, otherRun, otherCandidate, good updateResult
	var stepWhileWaiting string
	env.RegisterDelayedCallback(func() {
		v, err := env.QueryWorkflow(QueryCurrentStep)
		if err == nil {
			_ = v.Get(&stepWhileWaiting)
		}
		env.UpdateWorkflow(UpdateApprove, "1", stranger.callbacks(), Decision{By: "mallory", Epoch: 7, RunID: testRun, Candidate: "node3"})
		env.UpdateWorkflow(UpdateApprove, "2", stale.callbacks(), Decision{By: "alice", Epoch: 8, RunID: testRun, Candidate: "node3"})
		env.UpdateWorkflow(UpdateApprove, "4", otherRun.callbacks(), Decision{By: "alice", Epoch: 7, RunID: "an-earlier-run", Candidate: "node3"})
		env.UpdateWorkflow(UpdateApprove, "5", otherCandidate.callbacks(), Decision{By: "alice", Epoch: 7, RunID: testRun, Candidate: "node2"})
		env.UpdateWorkflow(UpdateApprove, "3", good.callbacks(), Decision{By: "alice", Epoch: 7, RunID: testRun, Candidate: "node3"})
	}, time.Minute)
	env.ExecuteWorkflow(PlannedSwitchover, SwitchoverInput{Cluster: "demo"})
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	if stepWhileWaiting != "waiting for approval" {
		t.Fatalf("current_step while waiting is %q", stepWhileWaiting)
	}
	if stranger.rejected == nil || !strings.Contains(stranger.rejected.Error(), "unknown approver") {
		t.Fatalf("unknown approver not rejected: %v", stranger.rejected)
	}
	for name, u := range map[string]updateResult{"another run": otherRun, "another candidate": otherCandidate} {
		if u.rejected == nil || !strings.Contains(u.rejected.Error(), "this approval is for run") {
			t.Fatalf("an approval for %s was not rejected: %v", name, u.rejected)
		}
	}
	if stale.rejected == nil || !strings.Contains(stale.rejected.Error(), "stale plan") {
		t.Fatalf("stale plan not rejected: %v", stale.rejected)
	}
	if !good.accepted {
		t.Fatal("alice's approval was not accepted")
	}
	var r Result
	_ = env.GetWorkflowResult(&r)
	if r.Outcome != "succeeded" || r.ApprovedBy != "alice" {
		t.Fatalf("result %+v", r)
	}
}

func TestApprovalAbortAndTimeoutChangeNothing(t *testing.T) {
	for _, mode := range []string{"abort", "timeout"} {
		t.Run(mode, func(t *testing.T) {
			env := newEnv(t)
			gated(env) // no write step is registered: calling one would fail the workflow
			if mode == "abort" {
				var u updateResult
				env.RegisterDelayedCallback(func() {
					env.UpdateWorkflow(UpdateAbort, "1", u.callbacks(), Decision{By: "alice", Reason: "not today"})
				}, time.Minute)
			}
			env.ExecuteWorkflow(PlannedSwitchover, SwitchoverInput{Cluster: "demo"})
			if err := env.GetWorkflowError(); err != nil {
				t.Fatalf("an abort must end cleanly: %v", err)
			}
			var r Result
			_ = env.GetWorkflowResult(&r)
			if r.Outcome != "aborted" || !strings.Contains(r.Reason, "nothing was changed") {
				t.Fatalf("result %+v", r)
			}
			env.AssertNotCalled(t, "DemotePrimary", mock.Anything, mock.Anything)
		})
	}
}
