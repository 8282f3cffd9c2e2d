package workflows

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/baton-db/baton/activities"
	"github.com/baton-db/baton/internal/topology"
)

var confirmed = activities.ConfirmResult{Cluster: "demo", Proceed: true, Why: "node1 does not answer",
	Primary: node1, Replicas: []topology.Node{node2, node3}, Epoch: 7, EpochIndex: 70}

func newFailoverEnv() *testsuite.TestWorkflowEnvironment {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflow(UnplannedFailover)
	env.RegisterActivity(&activities.Activities{})
	return env
}

// failoverHappy registers a successful result for every step but those in skip.
func failoverHappy(env *testsuite.TestWorkflowEnvironment, skip ...string) {
	ok := map[string]any{
		"ConfirmPrimaryDead": confirmed,
		"ChooseCandidate":    plan,
		"ProbePrimary":       activities.ProbeResult{Why: "primary node1 does not answer"},
		"WaitRelayLog":       struct{}{},
		"FenceOldPrimary":    activities.FenceResult{},
		"PromoteCandidate":   struct{}{},
		"PublishTopology":    activities.PublishResult{Epoch: 8},
		"ReparentReplica":    struct{}{},
		"VerifyRouting":      activities.VerifyResult{},
		"RestartHeartbeats":  struct{}{},
		"EvictNode":          activities.EvictResult{},
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

func TestFailoverRunsTheRunbookInOrder(t *testing.T) {
	env := newFailoverEnv()
	failoverHappy(env, "PublishTopology")
	var published activities.PublishInput
	env.OnActivity(a.PublishTopology, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.PublishInput) (activities.PublishResult, error) {
			published = in
			return activities.PublishResult{Epoch: 8}, nil
		})
	env.ExecuteWorkflow(UnplannedFailover, FailoverInput{Cluster: "demo", DeadPrimary: "node1"})
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	var r Result
	_ = env.GetWorkflowResult(&r)
	got := stepNames(r)
	at := map[string]int{}
	for i, n := range got {
		at[n] = i + 1
	}
	// Every step ran once, and the runbook's dependencies hold.
	for _, w := range []string{"confirm primary dead", "choose candidate", "wait for relay log", "fence old primary",
		"promote candidate", "publish topology", "reparent replicas", "verify routing", "restart heartbeats",
		"evict crashed node", "record result", "probe primary"} {
		if at[w] == 0 {
			t.Fatalf("step %q did not run: %v", w, got)
		}
	}
	if len(got) != 12 {
		t.Fatalf("steps %v", got)
	}
	for _, order := range [][2]string{{"confirm primary dead", "choose candidate"}, {"choose candidate", "wait for relay log"},
		{"wait for relay log", "promote candidate"}, {"probe primary", "fence old primary"}, {"probe primary", "promote candidate"},
		{"fence old primary", "publish topology"}, {"promote candidate", "publish topology"},
		{"promote candidate", "reparent replicas"}, {"publish topology", "verify routing"}, {"verify routing", "restart heartbeats"},
		{"reparent replicas", "restart heartbeats"}, {"restart heartbeats", "evict crashed node"}, {"evict crashed node", "record result"}} {
		if at[order[0]] > at[order[1]] {
			t.Fatalf("%q ran after %q: %v", order[0], order[1], got)
		}
	}
	if r.Outcome != "succeeded" || r.To != "node3" || r.Epoch != 8 {
		t.Fatalf("result %+v", r)
	}
	if len(published.Evict) != 1 || published.Evict[0].Node.Name != "node1" {
		t.Fatalf("the crashed node is not evicted in the publish: %+v", published.Evict)
	}
	for _, n := range published.Replicas {
		if n.Name == "node1" {
			t.Fatal("the crashed node is still in the published replica pool")
		}
	}
}

func TestFailoverIsANoOpWhenThePrimaryIsNotDead(t *testing.T) {
	env := newFailoverEnv()
	env.OnActivity(a.ConfirmPrimaryDead, mock.Anything, mock.Anything).Return(
		activities.ConfirmResult{Cluster: "demo", Proceed: false, Why: "Consul names node2 now"}, nil)
	env.ExecuteWorkflow(UnplannedFailover, FailoverInput{Cluster: "demo", DeadPrimary: "node1"})
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	var r Result
	_ = env.GetWorkflowResult(&r)
	if r.Outcome != "no-op" || len(r.Steps) != 1 || !strings.Contains(r.Reason, "node2") {
		t.Fatalf("result %+v", r)
	}
}

func TestFailoverWithNoQualifyingCandidateChangesNothing(t *testing.T) {
	env := newFailoverEnv()
	env.OnActivity(a.ConfirmPrimaryDead, mock.Anything, mock.Anything).Return(confirmed, nil)
	env.OnActivity(a.ChooseCandidate, mock.Anything, mock.Anything).Return(activities.Plan{},
		temporal.NewNonRetryableApplicationError("no replica qualifies, so nothing was changed: node2: excluded: SQL thread not running. A human must pick a replica", "NoCandidate", nil))
	env.ExecuteWorkflow(UnplannedFailover, FailoverInput{Cluster: "demo"})
	err := env.GetWorkflowError()
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || appErr.Type() != "NoCandidate" || !strings.Contains(appErr.Message(), "A human must") {
		t.Fatalf("error %v, want NoCandidate with instructions", err)
	}
	// No write step was registered: had one run, the workflow would have failed differently.
	env.AssertNotCalled(t, "PromoteCandidate", mock.Anything, mock.Anything)
}

func TestFailoverPromoteRetriedAfterWorkerCrash(t *testing.T) {
	env := newFailoverEnv()
	failoverHappy(env, "PromoteCandidate")
	calls := 0
	env.OnActivity(a.PromoteCandidate, mock.Anything, mock.Anything).Return(
		func(_ context.Context, _ activities.PromoteInput) (struct{}, error) {
			calls++
			if calls == 1 {
				return struct{}{}, errors.New("activity worker lost mid-step")
			}
			return struct{}{}, nil
		})
	env.ExecuteWorkflow(UnplannedFailover, FailoverInput{Cluster: "demo"})
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	if calls != 2 {
		t.Fatalf("promote ran %d times, want 2", calls)
	}
}

func TestFailoverWhenThePrimaryComesBack(t *testing.T) {
	env := newFailoverEnv()
	failoverHappy(env, "FenceOldPrimary", "EvictNode")
	env.OnActivity(a.FenceOldPrimary, mock.Anything, mock.Anything).Return(
		activities.FenceResult{Answered: true, GTIDs: "0-101-12"}, nil)
	var evicted activities.EvictInput
	env.OnActivity(a.EvictNode, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.EvictInput) (activities.EvictResult, error) {
			evicted = in
			return activities.EvictResult{Unique: "0-101-12"}, nil
		})
	env.ExecuteWorkflow(UnplannedFailover, FailoverInput{Cluster: "demo"})
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	// The decision stands: the returned primary was fenced, and is evicted with the GTIDs
	// it held so that nobody re-adds it without checking them.
	if evicted.Node.Name != "node1" || evicted.GTIDs != "0-101-12" {
		t.Fatalf("evicted %+v", evicted)
	}
}

// Consul down after the promotion: the publish is retried, first fast and then in slower
// rounds, for as long as it takes; the failover finishes once Consul answers. A changed
// epoch, which no retry can fix, ends it.
func TestFailoverWaitsForConsulToPublish(t *testing.T) {
	env := newFailoverEnv()
	failoverHappy(env, "PublishTopology")
	attempts := 0
	env.OnActivity(a.PublishTopology, mock.Anything, mock.Anything).Return(
		func(context.Context, activities.PublishInput) (activities.PublishResult, error) {
			attempts++
			if attempts < 100 {
				return activities.PublishResult{}, errors.New("read topology of demo from Consul: context deadline exceeded")
			}
			return activities.PublishResult{Epoch: 8}, nil
		})
	var during string
	env.RegisterDelayedCallback(func() {
		v, err := env.QueryWorkflow(QueryCurrentStep)
		if err == nil {
			_ = v.Get(&during)
		}
	}, 3*time.Minute)
	env.ExecuteWorkflow(UnplannedFailover, FailoverInput{Cluster: "demo"})
	var res Result
	if err := env.GetWorkflowResult(&res); err != nil || res.Outcome != "succeeded" || res.Epoch != 8 {
		t.Fatalf("after %d publish attempts: %v %+v", attempts, err, res)
	}
	if !strings.Contains(during, "publish topology: waiting for Consul") {
		t.Fatalf("current_step while Consul was down: %q", during)
	}
	if attempts != 100 {
		t.Fatalf("%d publish attempts, want 100", attempts)
	}

	env = newFailoverEnv()
	failoverHappy(env, "PublishTopology")
	env.OnActivity(a.PublishTopology, mock.Anything, mock.Anything).Return(activities.PublishResult{},
		temporal.NewNonRetryableApplicationError("Consul epoch of demo is 9, planned at 7", "EpochChanged", nil))
	env.ExecuteWorkflow(UnplannedFailover, FailoverInput{Cluster: "demo"})
	if err := env.GetWorkflowError(); err == nil || !strings.Contains(err.Error(), "EpochChanged") {
		t.Fatalf("a changed epoch should end the failover: %v", err)
	}
}

// The primary answers the workflow's own probe (it stalled just past the detector's
// threshold): replication is restarted on the replicas the relay-log wait stopped, and
// nothing is promoted or published.
func TestFailoverEndsWhenTheProbeFindsThePrimaryAlive(t *testing.T) {
	env := newFailoverEnv()
	failoverHappy(env, "ProbePrimary")
	env.OnActivity(a.ProbePrimary, mock.Anything, mock.Anything).Return(
		activities.ProbeResult{Answers: true, Why: "primary node1 answers again; nothing to fail over"}, nil)
	restarted := false
	env.OnActivity(a.RestartReplication, mock.Anything, mock.Anything).Return(
		func(context.Context, activities.Plan) (struct{}, error) { restarted = true; return struct{}{}, nil })
	env.ExecuteWorkflow(UnplannedFailover, FailoverInput{Cluster: "demo"})
	var res Result
	if err := env.GetWorkflowResult(&res); err != nil || res.Outcome != "no-op" || !strings.Contains(res.Reason, "answers again") {
		t.Fatalf("%v %+v", err, res)
	}
	if !restarted {
		t.Fatal("replication was not restarted")
	}
	for _, s := range stepNames(res) {
		if s == "promote candidate" || s == "publish topology" || s == "fence old primary" {
			t.Fatalf("%q ran although the primary answered: %v", s, stepNames(res))
		}
	}
}
