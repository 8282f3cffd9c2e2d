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
	"go.temporal.io/sdk/workflow"

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
		"StopOldPrimary":     activities.StopResult{How: "fenced by its agent: read-only"},
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
		"evict crashed node", "record result", "probe primary", "stop old primary"} {
		if at[w] == 0 {
			t.Fatalf("step %q did not run: %v", w, got)
		}
	}
	if len(got) != 13 {
		t.Fatalf("steps %v", got)
	}
	for _, order := range [][2]string{{"confirm primary dead", "choose candidate"}, {"choose candidate", "wait for relay log"},
		{"wait for relay log", "promote candidate"}, {"probe primary", "fence old primary"}, {"probe primary", "promote candidate"},
		{"probe primary", "stop old primary"}, {"stop old primary", "promote candidate"},
		{"fence old primary", "publish topology"}, {"promote candidate", "publish topology"},
		{"promote candidate", "reparent replicas"}, {"publish topology", "verify routing"}, {"verify routing", "restart heartbeats"},
		{"reparent replicas", "restart heartbeats"}, {"restart heartbeats", "evict crashed node"}, {"evict crashed node", "record result"}} {
		if at[order[0]] > at[order[1]] {
			t.Fatalf("%q ran after %q: %v", order[0], order[1], got)
		}
	}
	if r.Outcome != "succeeded" || r.To != "node3" || r.Epoch != 8 || r.OldPrimaryStopped != "fenced by its agent: read-only" {
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

// A kill -9: the fence finds the old primary's host refusing connections, which settles
// the failover rule. The lease's step, started beside the fence, is not waited for (here
// it would answer only after a minute), and the result gives the fence's reason.
func TestFailoverSettledByTheFenceDoesNotWaitForTheLease(t *testing.T) {
	env := newFailoverEnv()
	failoverHappy(env, "FenceOldPrimary", "StopOldPrimary")
	env.OnActivity(a.FenceOldPrimary, mock.Anything, mock.Anything).Return(
		activities.FenceResult{Error: "dial tcp 127.0.1.1:3306: connect: connection refused"}, nil)
	env.OnActivity(a.StopOldPrimary, mock.Anything, mock.Anything).Return(
		activities.StopResult{How: "its lease expired"}, nil).After(time.Minute)
	env.ExecuteWorkflow(UnplannedFailover, FailoverInput{Cluster: "demo", DeadPrimary: "node1"})
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	var r Result
	_ = env.GetWorkflowResult(&r)
	if !strings.Contains(r.OldPrimaryStopped, "refused the connection") || !slices.Contains(stepNames(r), "stop old primary") {
		t.Fatalf("stopped %q, steps %v", r.OldPrimaryStopped, stepNames(r))
	}
	var started, published time.Time
	for _, st := range r.Steps {
		switch st.Name {
		case "confirm primary dead":
			started = st.Start
		case "publish topology":
			published = st.Start
		}
	}
	if r.Outcome != "succeeded" || published.IsZero() || published.Sub(started) >= time.Minute {
		t.Fatalf("outcome %s, published %s after the start: the lease's step was waited for", r.Outcome, published.Sub(started))
	}
}

// A primary restarted at once answers, read-only: Baton fences it and its lease is left
// alone (its agent's fence would stop mysqld when commits are held).
func TestFailoverFencesAReachedPrimaryWithoutRevokingItsLease(t *testing.T) {
	env := newFailoverEnv()
	failoverHappy(env, "ProbePrimary", "FenceOldPrimary", "StopOldPrimary")
	env.OnActivity(a.ProbePrimary, mock.Anything, mock.Anything).Return(
		activities.ProbeResult{Reached: true, Why: "primary node1 answers, but it is read-only"}, nil)
	env.OnActivity(a.FenceOldPrimary, mock.Anything, mock.Anything).Return(activities.FenceResult{Answered: true}, nil)
	called := false
	env.OnActivity(a.StopOldPrimary, mock.Anything, mock.Anything).Return(
		func(context.Context, activities.StopInput) (activities.StopResult, error) {
			called = true
			return activities.StopResult{How: "revoked"}, nil
		})
	env.ExecuteWorkflow(UnplannedFailover, FailoverInput{Cluster: "demo", DeadPrimary: "node1"})
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	var r Result
	_ = env.GetWorkflowResult(&r)
	if called || !strings.Contains(r.OldPrimaryStopped, "fenced by Baton") || r.Outcome != "succeeded" {
		t.Fatalf("lease revoked: %v; stopped %q; outcome %s", called, r.OldPrimaryStopped, r.Outcome)
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

// The relay-log wait fails and the probe finds the primary answering: the failover ends
// without promoting, and the IO threads it stopped are started again.
func TestFailoverThatEndsWithoutPromotingRestartsReplication(t *testing.T) {
	for _, answers := range []bool{true, false} {
		env := newFailoverEnv()
		failoverHappy(env, "ProbePrimary", "WaitRelayLog")
		env.OnActivity(a.ProbePrimary, mock.Anything, mock.Anything).Return(activities.ProbeResult{Answers: answers, Why: "probe"}, nil)
		env.OnActivity(a.WaitRelayLog, mock.Anything, mock.Anything).Return(struct{}{},
			temporal.NewNonRetryableApplicationError("node3 did not apply its relay log", activities.ErrRelayLogNotApplied, nil))
		restarted := 0
		env.OnActivity(a.RestartReplication, mock.Anything, mock.Anything).Return(
			func(context.Context, activities.Plan) (struct{}, error) { restarted++; return struct{}{}, nil })
		env.ExecuteWorkflow(UnplannedFailover, FailoverInput{Cluster: "demo"})
		var res Result
		err := env.GetWorkflowResult(&res)
		if answers && (err != nil || res.Outcome != "no-op") {
			t.Fatalf("primary answers: %v %+v", err, res)
		}
		if !answers && (err == nil || !strings.Contains(err.Error(), activities.ErrRelayLogNotApplied)) {
			t.Fatalf("primary dead: the wait's error should end the failover: %v", err)
		}
		if restarted != 1 {
			t.Fatalf("answers=%v: replication restarted %d times, want 1", answers, restarted)
		}
		env.AssertNotCalled(t, "PromoteCandidate", mock.Anything, mock.Anything)
	}
}

// The chosen candidate dies before it is promoted: the failover chooses again among the
// live replicas and the lost one is evicted with the old primary.
func TestFailoverChoosesAgainWhenTheCandidateDies(t *testing.T) {
	env := newFailoverEnv()
	failoverHappy(env, "ChooseCandidate", "PromoteCandidate", "PublishTopology")
	var chosenFrom [][]string
	env.OnActivity(a.ChooseCandidate, mock.Anything, mock.Anything).Return(
		func(_ context.Context, c activities.ConfirmResult) (activities.Plan, error) {
			var names []string
			for _, r := range c.Replicas {
				names = append(names, r.Name)
			}
			chosenFrom = append(chosenFrom, names)
			p := plan
			p.Candidate, p.Others, p.Lost = c.Replicas[len(c.Replicas)-1], c.Replicas[:len(c.Replicas)-1], c.Lost
			return p, nil
		})
	promotes := 0
	env.OnActivity(a.PromoteCandidate, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.PromoteInput) (struct{}, error) {
			promotes++
			if in.Plan.Candidate.Name == "node3" {
				return struct{}{}, temporal.NewNonRetryableApplicationError("candidate node3 stopped answering", activities.ErrCandidateLost, nil)
			}
			return struct{}{}, nil
		})
	var published activities.PublishInput
	env.OnActivity(a.PublishTopology, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.PublishInput) (activities.PublishResult, error) {
			published = in
			return activities.PublishResult{Epoch: 8}, nil
		})
	env.ExecuteWorkflow(UnplannedFailover, FailoverInput{Cluster: "demo"})
	var res Result
	if err := env.GetWorkflowResult(&res); err != nil || res.Outcome != "succeeded" || res.To != "node2" {
		t.Fatalf("%v %+v", err, res)
	}
	if len(chosenFrom) != 2 || strings.Join(chosenFrom[1], ",") != "node2" || promotes != 2 {
		t.Fatalf("chose from %v, promoted %d times", chosenFrom, promotes)
	}
	var evicted []string
	for _, e := range published.Evict {
		evicted = append(evicted, e.Node.Name)
	}
	if strings.Join(evicted, ",") != "node1,node3" || published.Record == nil || published.Record.Kind != "unplanned" {
		t.Fatalf("published %+v", published)
	}
}

// A replica that dies after the choice is left out and reported: the failover, which has
// already happened, succeeds, and heartbeats are awaited only from the replicas that follow.
func TestFailoverLeavesOutAReplicaThatCannotBeReparented(t *testing.T) {
	env := newFailoverEnv()
	p := plan
	p.Others = []topology.Node{node2, {Name: "node4", ServerID: 4}}
	failoverHappy(env, "ChooseCandidate", "ReparentReplica", "RestartHeartbeats")
	env.OnActivity(a.ChooseCandidate, mock.Anything, mock.Anything).Return(p, nil)
	env.OnActivity(a.ReparentReplica, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.ReparentInput) (struct{}, error) {
			if in.Node.Name == "node4" {
				return struct{}{}, temporal.NewNonRetryableApplicationError("connection refused", "Unreachable", nil)
			}
			return struct{}{}, nil
		})
	var hb activities.HeartbeatInput
	env.OnActivity(a.RestartHeartbeats, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.HeartbeatInput) (struct{}, error) {
			hb = in
			return struct{}{}, nil
		})
	env.ExecuteWorkflow(UnplannedFailover, FailoverInput{Cluster: "demo"})
	var res Result
	if err := env.GetWorkflowResult(&res); err != nil || res.Outcome != "succeeded" {
		t.Fatalf("%v %+v", err, res)
	}
	if len(res.LeftOut) != 1 || !strings.Contains(res.LeftOut[0], "node4") || !strings.Contains(res.LeftOut[0], "baton rejoin") {
		t.Fatalf("left out %v", res.LeftOut)
	}
	if len(hb.Replicas) != 1 || hb.Replicas[0].Name != "node2" {
		t.Fatalf("heartbeats awaited from %+v", hb.Replicas)
	}
}

// Every older step order that is kept for replay still runs its steps in its own order.
func TestFailoverLegacyOrders(t *testing.T) {
	for _, c := range []struct {
		name              string
		parallel, besides workflow.Version
		before            [][2]string
	}{
		{"sequential", workflow.DefaultVersion, workflow.DefaultVersion,
			[][2]string{{"wait for relay log", "fence old primary"}, {"fence old primary", "promote candidate"}, {"publish topology", "reparent replicas"}, {"reparent replicas", "verify routing"}}},
		{"parallel fence and verify", 1, workflow.DefaultVersion,
			[][2]string{{"wait for relay log", "promote candidate"}, {"promote candidate", "publish topology"}, {"publish topology", "reparent replicas"}}},
		{"reparent beside publish", workflow.DefaultVersion, 1,
			[][2]string{{"fence old primary", "promote candidate"}, {"publish topology", "verify routing"}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			env := newFailoverEnv()
			failoverHappy(env)
			env.OnGetVersion("probe-beside-stop", workflow.DefaultVersion, 1).Return(workflow.DefaultVersion)
			env.OnGetVersion("parallel-fence-and-verify", workflow.DefaultVersion, 1).Return(c.parallel)
			env.OnGetVersion("reparent-beside-publish", workflow.DefaultVersion, 1).Return(c.besides)
			env.ExecuteWorkflow(UnplannedFailover, FailoverInput{Cluster: "demo"})
			var r Result
			if err := env.GetWorkflowResult(&r); err != nil || r.Outcome != "succeeded" {
				t.Fatalf("%v %+v", err, r)
			}
			at := map[string]int{}
			for i, n := range stepNames(r) {
				at[n] = i + 1
			}
			if at["probe primary"] != 0 || len(at) != 11 {
				t.Fatalf("steps %v", stepNames(r))
			}
			for _, o := range c.before {
				if at[o[0]] == 0 || at[o[0]] > at[o[1]] {
					t.Fatalf("%q should run before %q: %v", o[0], o[1], stepNames(r))
				}
			}
		})
	}
}

// Runs recorded before "local-publish" publish as a regular activity; that branch still
// succeeds in the current order.
func TestFailoverBeforeLocalPublish(t *testing.T) {
	env := newFailoverEnv()
	failoverHappy(env)
	env.OnGetVersion("local-publish", workflow.DefaultVersion, 1).Return(workflow.DefaultVersion)
	env.ExecuteWorkflow(UnplannedFailover, FailoverInput{Cluster: "demo"})
	var r Result
	if err := env.GetWorkflowResult(&r); err != nil || r.Outcome != "succeeded" {
		t.Fatalf("%v %+v", err, r)
	}
	if n := stepNames(r); !slices.Contains(n, "promote candidate") || !slices.Contains(n, "publish topology") {
		t.Fatalf("steps %v", n)
	}
}

// --primary-alive: the live primary is fenced before a candidate is chosen, and the choice
// is asked to hold what it executed.
func TestFailoverOfALivePrimaryFencesItFirst(t *testing.T) {
	env := newFailoverEnv()
	failoverHappy(env, "ChooseCandidate")
	env.OnActivity(a.DemoteLivePrimary, mock.Anything, mock.Anything).Return(
		activities.DemoteLiveResult{Answered: true, GTIDs: "0-1-42", Ended: 3}, nil)
	var asked activities.ConfirmResult
	env.OnActivity(a.ChooseCandidate, mock.Anything, mock.Anything).Return(
		func(_ context.Context, c activities.ConfirmResult) (activities.Plan, error) {
			asked = c
			return plan, nil
		})
	env.ExecuteWorkflow(UnplannedFailover, FailoverInput{Cluster: "demo", Force: true, PrimaryAlive: true})
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	var r Result
	_ = env.GetWorkflowResult(&r)
	got := stepNames(r)
	if i, j := slices.Index(got, "demote live primary"), slices.Index(got, "choose candidate"); i < 0 || j < i {
		t.Fatalf("the live primary was not demoted before the choice: %v", got)
	}
	if asked.PrimaryGTIDs != "0-1-42" {
		t.Fatalf("the choice was not asked to hold the fenced primary's GTIDs: %+v", asked)
	}
	if r.Outcome != "succeeded" || slices.Contains(got, "reopen live primary") {
		t.Fatalf("result %+v", r)
	}
}

// A forced failover of a live primary that finds no candidate holding all it executed
// makes it writable again (ReopenLivePrimary checks that Consul still names it).
func TestFailoverOfALivePrimaryWithNoCandidateReopensIt(t *testing.T) {
	env := newFailoverEnv()
	env.OnActivity(a.ConfirmPrimaryDead, mock.Anything, mock.Anything).Return(confirmed, nil)
	env.OnActivity(a.DemoteLivePrimary, mock.Anything, mock.Anything).Return(
		activities.DemoteLiveResult{Answered: true, GTIDs: "0-1-42"}, nil)
	env.OnActivity(a.ChooseCandidate, mock.Anything, mock.Anything).Return(activities.Plan{},
		temporal.NewNonRetryableApplicationError("no replica qualifies: node2: excluded: lacks 0-1-42 that the fenced primary executed", "NoCandidate", nil))
	reopened := false
	env.OnActivity(a.ReopenLivePrimary, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.DemoteLiveInput) (string, error) {
			reopened = in.Primary.Name == "node1"
			return "node1 is writable again", nil
		})
	env.ExecuteWorkflow(UnplannedFailover, FailoverInput{Cluster: "demo", Force: true, PrimaryAlive: true})
	if err := env.GetWorkflowError(); err == nil || !strings.Contains(err.Error(), "lacks 0-1-42") {
		t.Fatalf("error %v", err)
	}
	if !reopened {
		t.Fatal("the fenced live primary was not reopened")
	}
}
