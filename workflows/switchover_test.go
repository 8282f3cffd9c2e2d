package workflows

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/baton-db/baton/activities"
	"github.com/baton-db/baton/internal/topology"
)

var (
	node1 = topology.Node{Name: "node1", IPv4: "127.0.1.1", Port: 3306, ServerID: 101, Zone: "a"}
	node2 = topology.Node{Name: "node2", IPv4: "127.0.1.2", Port: 3306, ServerID: 102, Zone: "b"}
	node3 = topology.Node{Name: "node3", IPv4: "127.0.1.3", Port: 3306, ServerID: 103, Zone: "a"}
	plan  = activities.Plan{Cluster: "demo", OldPrimary: node1, Candidate: node3, Others: []topology.Node{node2}, Epoch: 7, EpochIndex: 70, Reason: "test"}
)

func newEnv(t *testing.T) *testsuite.TestWorkflowEnvironment {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflow(PlannedSwitchover)
	env.RegisterActivity(&activities.Activities{})
	return env
}

// happy registers a successful result for every step of a switchover but those in skip.
func happy(env *testsuite.TestWorkflowEnvironment, skip ...string) {
	ok := map[string]any{
		"CheckPreconditions": plan,
		"CatchUpReplicas":    activities.CatchUpResult{},
		"DemotePrimary":      activities.DemoteResult{GTIDs: "0-101-9"},
		"PromoteCandidate":   struct{}{},
		"PublishTopology":    activities.PublishResult{Epoch: 8},
		"ReparentOldPrimary": struct{}{},
		"VerifyRouting":      activities.VerifyResult{},
		"RestartHeartbeats":  struct{}{},
	}
	for name, res := range ok {
		if !slices.Contains(skip, name) {
			env.OnActivity(name, mock.Anything, mock.Anything).Return(res, nil)
		}
	}
	if !slices.Contains(skip, "RecordResult") {
		env.OnActivity("RecordResult", mock.Anything, mock.Anything, mock.Anything).Return(struct{}{}, nil)
	}
}

func stepNames(r Result) []string {
	var out []string
	for _, s := range r.Steps {
		out = append(out, s.Name)
	}
	return out
}

func TestSwitchoverRunsTheRunbookInOrder(t *testing.T) {
	env := newEnv(t)
	happy(env, "PublishTopology")
	var published activities.PublishInput
	env.OnActivity(a.PublishTopology, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.PublishInput) (activities.PublishResult, error) {
			published = in
			return activities.PublishResult{Epoch: 8}, nil
		})
	env.ExecuteWorkflow(PlannedSwitchover, SwitchoverInput{Cluster: "demo"})
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	var r Result
	if err := env.GetWorkflowResult(&r); err != nil {
		t.Fatal(err)
	}
	// The old primary is reparented while routing is verified: those two in either order.
	want := []string{"check preconditions", "catch up replicas", "demote primary", "promote candidate",
		"publish topology", "reparent old primary", "verify routing", "restart heartbeats", "record result"}
	if got := stepNames(r); len(got) != len(want) {
		t.Fatalf("steps %v, want %v", got, want)
	} else {
		if got[5] == "verify routing" {
			got[5], got[6] = got[6], got[5]
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("step %d is %q, want %q (all: %v)", i, got[i], want[i], got)
			}
		}
	}
	if r.From != "node1" || r.To != "node3" || r.Epoch != 8 || r.Outcome != "succeeded" {
		t.Fatalf("result %+v", r)
	}
	if published.Primary.Name != "node3" || published.Epoch != 7 || len(published.Replicas) != 2 ||
		published.Replicas[0].Name != "node1" || published.Replicas[1].Name != "node2" {
		t.Fatalf("published %+v", published)
	}
}

func TestSwitchoverRefusedByPreconditionsChangesNothing(t *testing.T) {
	env := newEnv(t)
	env.OnActivity(a.CheckPreconditions, mock.Anything, mock.Anything).Return(activities.Plan{},
		temporal.NewNonRetryableApplicationError("2 check(s) failed", "PreconditionFailed", nil))
	env.ExecuteWorkflow(PlannedSwitchover, SwitchoverInput{Cluster: "demo"})
	err := env.GetWorkflowError()
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || appErr.Type() != "PreconditionFailed" {
		t.Fatalf("error %v, want PreconditionFailed", err)
	}
	// Nothing past the checks ran: the mocks for the write steps were never registered,
	// so any call would have failed the workflow with a different error.
	env.AssertNotCalled(t, "DemotePrimary", mock.Anything, mock.Anything)
}

func TestFailureAfterDemotionIsUndone(t *testing.T) {
	for _, failing := range []string{"DemotePrimary", "PromoteCandidate", "PublishTopology"} {
		t.Run(failing, func(t *testing.T) {
			env := newEnv(t)
			happy(env, failing)
			boom := temporal.NewNonRetryableApplicationError("boom", "Boom", nil)
			switch failing {
			case "DemotePrimary":
				env.OnActivity(a.DemotePrimary, mock.Anything, mock.Anything).Return(activities.DemoteResult{}, boom)
			case "PromoteCandidate":
				env.OnActivity(a.PromoteCandidate, mock.Anything, mock.Anything).Return(struct{}{}, boom)
			case "PublishTopology":
				env.OnActivity(a.PublishTopology, mock.Anything, mock.Anything).Return(activities.PublishResult{}, boom)
			}
			undone := 0
			env.OnActivity(a.UndoDemotePrimary, mock.Anything, mock.Anything).Return(
				func(_ context.Context, p activities.Plan) (activities.UndoResult, error) {
					undone++
					if p.OldPrimary.Name != "node1" || p.Epoch != 7 {
						t.Errorf("undo got plan %+v", p)
					}
					return activities.UndoResult{Reopened: "node1"}, nil
				})
			env.ExecuteWorkflow(PlannedSwitchover, SwitchoverInput{Cluster: "demo"})
			err := env.GetWorkflowError()
			if err == nil {
				t.Fatal("workflow succeeded; want failure")
			}
			if undone != 1 {
				t.Fatalf("undo ran %d times, want 1", undone)
			}
			env.AssertNotCalled(t, "ReparentOldPrimary", mock.Anything, mock.Anything)
		})
	}
}

func TestFailedUndoIsReportedNotSwallowed(t *testing.T) {
	env := newEnv(t)
	happy(env, "PromoteCandidate")
	env.OnActivity(a.PromoteCandidate, mock.Anything, mock.Anything).Return(struct{}{},
		temporal.NewNonRetryableApplicationError("promote broke", "Boom", nil))
	env.OnActivity(a.UndoDemotePrimary, mock.Anything, mock.Anything).Return(activities.UndoResult{},
		temporal.NewNonRetryableApplicationError("Consul now names node3", "UndoUnsafe", nil))
	env.ExecuteWorkflow(PlannedSwitchover, SwitchoverInput{Cluster: "demo"})
	err := env.GetWorkflowError()
	if err == nil {
		t.Fatal("want failure")
	}
	for _, want := range []string{"promote broke", "Consul now names node3", "a human must"} {
		if !contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

func TestPromoteRetriedAfterWorkerCrash(t *testing.T) {
	env := newEnv(t)
	happy(env, "PromoteCandidate")
	calls := 0
	env.OnActivity(a.PromoteCandidate, mock.Anything, mock.Anything).Return(
		func(_ context.Context, _ activities.PromoteInput) (struct{}, error) {
			calls++
			if calls == 1 {
				return struct{}{}, errors.New("worker lost its connection mid-step")
			}
			return struct{}{}, nil
		})
	env.ExecuteWorkflow(PlannedSwitchover, SwitchoverInput{Cluster: "demo"})
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	if calls != 2 {
		t.Fatalf("promote ran %d times, want 2 (one retry)", calls)
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
