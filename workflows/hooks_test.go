package workflows

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/baton-db/baton/activities"
	"github.com/baton-db/baton/internal/config"
)

var (
	gateHook   = activities.HookRef{Name: "gate", Point: config.PreFailover, Timeout: 2 * time.Second, Attempts: 1}
	recordHook = activities.HookRef{Name: "record", Point: config.PostFailover, Timeout: 5 * time.Second, Attempts: 3}
	unsuccHook = activities.HookRef{Name: "record", Point: config.PostUnsuccessfulFailover, Timeout: 5 * time.Second, Attempts: 3}
	// What RunHook returns for a pre-failover hook that could not run, and for one that vetoed.
	hookCouldNotRun = temporal.NewNonRetryableApplicationError(
		`pre-failover hook "gate" failed, which is not a veto (only exit status 42 or HTTP 409 vetoes): webhook: dial tcp 10.0.0.9:443: connect: connection refused`, activities.ErrHookFailed, nil)
	hookVetoed = temporal.NewNonRetryableApplicationError(
		`pre-failover hook "gate" vetoed the failover of demo: exit status 42: change freeze`, activities.ErrHookVetoed, nil)
)

// hookedFailover is a failover whose confirmation carries hooks; RunHook answers a
// pre-failover hook with pre and records every event it is given.
func hookedFailover(pre error, hooks ...activities.HookRef) (*testsuite.TestWorkflowEnvironment, *[]activities.Event, *int) {
	env := newFailoverEnv()
	failoverHappy(env, "ConfirmPrimaryDead")
	c := confirmed
	c.Hooks = hooks
	env.OnActivity(a.ConfirmPrimaryDead, mock.Anything, mock.Anything).Return(c, nil)
	var events []activities.Event
	env.OnActivity(a.RunHook, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.HookInput) error {
		events = append(events, in.Event)
		if in.Event.Point == config.PreFailover {
			return pre
		}
		return nil
	})
	restarted := 0
	env.OnActivity(a.RestartReplication, mock.Anything, mock.Anything).Return(
		func(context.Context, activities.Plan) (struct{}, error) { restarted++; return struct{}{}, nil })
	return env, &events, &restarted
}

func hookPoints(events []activities.Event) []string {
	var out []string
	for _, e := range events {
		out = append(out, string(e.Point))
	}
	return out
}

// A pre-failover hook that cannot run (its webhook's port closed, its program missing, a
// non-veto exit status) does not veto: the dead primary's failover goes on, the problem is
// in the result, and the post hooks run as usual.
func TestPreFailoverHookThatCannotRunIsPassedOver(t *testing.T) {
	env, events, _ := hookedFailover(hookCouldNotRun, gateHook, recordHook, unsuccHook)
	env.ExecuteWorkflow(UnplannedFailover, FailoverInput{Cluster: "demo", DeadPrimary: "node1"})
	var r Result
	if err := env.GetWorkflowResult(&r); err != nil || r.Outcome != "succeeded" || r.To != "node3" {
		t.Fatalf("%v %+v", err, r)
	}
	steps := stepNames(r)
	at := map[string]int{}
	for i, n := range steps {
		at[n] = i + 1
	}
	if at["pre-failover hook gate"] == 0 || at["promote candidate"] == 0 || at["publish topology"] == 0 {
		t.Fatalf("steps %v: want the hook, the promotion and the publish", steps)
	}
	if len(r.HookProblems) != 1 || !strings.Contains(r.HookProblems[0], `pre-failover hook "gate" failed, which is not a veto`) ||
		!strings.Contains(r.HookProblems[0], "connection refused") || !strings.Contains(r.HookProblems[0], "went on") {
		t.Fatalf("hook problems %q: want the gate's failure, and that the failover went on", r.HookProblems)
	}
	if got := strings.Join(hookPoints(*events), ","); got != "pre-failover,post-failover" {
		t.Fatalf("hook events %s, want pre-failover then post-failover", got)
	}
	// The post hooks are told which pre-failover hook the failover went on without.
	if post := (*events)[1]; post.HookProblems != r.HookProblems[0] || post.NewPrimary != "node3" {
		t.Fatalf("post-failover event %+v: want the hook problem %q", post, r.HookProblems[0])
	}
}

// The same for a pre-failover hook that does not answer within its timeout.
func TestPreFailoverHookTimeoutIsPassedOver(t *testing.T) {
	env, events, _ := hookedFailover(temporal.NewNonRetryableApplicationError(`pre-failover hook "gate" did not answer within 2s`,
		activities.ErrHookTimedOut, nil), gateHook, recordHook)
	env.ExecuteWorkflow(UnplannedFailover, FailoverInput{Cluster: "demo", DeadPrimary: "node1"})
	var r Result
	if err := env.GetWorkflowResult(&r); err != nil || r.Outcome != "succeeded" {
		t.Fatalf("%v %+v", err, r)
	}
	if len(r.HookProblems) != 1 || !strings.Contains(r.HookProblems[0], "pre-failover hook gate did not answer within 2s") {
		t.Fatalf("hook problems %q", r.HookProblems)
	}
	if ev := *events; len(ev) != 2 || ev[1].HookProblems != r.HookProblems[0] {
		t.Fatalf("hook events %+v", ev)
	}
}

// Only an explicit veto stops a failover: outcome vetoed, nobody promoted, replication
// restarted, and the post-unsuccessful-failover hooks told why.
func TestPreFailoverHookVetoStopsTheFailover(t *testing.T) {
	env, events, restarted := hookedFailover(hookVetoed, gateHook, recordHook, unsuccHook)
	env.ExecuteWorkflow(UnplannedFailover, FailoverInput{Cluster: "demo", DeadPrimary: "node1"})
	var r Result
	if err := env.GetWorkflowResult(&r); err != nil || r.Outcome != "vetoed" || !strings.Contains(r.Reason, `hook "gate" vetoed`) {
		t.Fatalf("%v %+v", err, r)
	}
	env.AssertNotCalled(t, "PromoteCandidate", mock.Anything, mock.Anything)
	if *restarted != 1 {
		t.Fatalf("replication restarted %d times, want 1", *restarted)
	}
	if len(r.HookProblems) != 0 {
		t.Fatalf("a veto is not a hook problem: %q", r.HookProblems)
	}
	ev := *events
	if len(ev) != 2 || ev[1].Point != config.PostUnsuccessfulFailover || !strings.Contains(ev[1].Error, "vetoed") {
		t.Fatalf("hook events %+v: want the veto reported to post-unsuccessful-failover", ev)
	}
}

// Runs that reached a failed pre-failover hook before the change took every failure for a
// veto; they replay that way.
func TestPreFailoverHookFailureBeforeExplicitVetoes(t *testing.T) {
	env, _, _ := hookedFailover(hookCouldNotRun, gateHook, recordHook)
	env.OnGetVersion("explicit-hook-veto", workflow.DefaultVersion, 1).Return(workflow.DefaultVersion)
	env.ExecuteWorkflow(UnplannedFailover, FailoverInput{Cluster: "demo", DeadPrimary: "node1"})
	var r Result
	if err := env.GetWorkflowResult(&r); err != nil || r.Outcome != "vetoed" || strings.Contains(r.Reason, "switchover") {
		t.Fatalf("%v %+v", err, r)
	}
	env.AssertNotCalled(t, "PromoteCandidate", mock.Anything, mock.Anything)
}

// A switchover stays strict: a pre-switchover hook that vetoes, cannot run or does not
// answer refuses it, and nothing changes.
func TestPreSwitchoverHookFailureRefusesTheSwitchover(t *testing.T) {
	for _, c := range []struct {
		name string
		err  error
		want string
	}{
		{"veto", temporal.NewNonRetryableApplicationError(`pre-switchover hook "gate" vetoed the switchover of demo: exit status 42: release`, activities.ErrHookVetoed, nil),
			`hook "gate" vetoed`},
		{"failure", temporal.NewNonRetryableApplicationError(`pre-switchover hook "gate" failed, which is not a veto (only exit status 42 or HTTP 409 vetoes): exit status 1: oops`, activities.ErrHookFailed, nil),
			`hook "gate" failed, which is not a veto`},
		{"timeout", temporal.NewNonRetryableApplicationError(`pre-switchover hook "gate" did not answer within 2s`, activities.ErrHookTimedOut, nil),
			"did not answer within 2s"},
	} {
		t.Run(c.name, func(t *testing.T) {
			env := newEnv(t)
			p := plan
			p.Hooks = []activities.HookRef{{Name: "gate", Point: config.PreSwitchover, Timeout: 2 * time.Second, Attempts: 1}}
			happy(env, "CheckPreconditions")
			env.OnActivity(a.CheckPreconditions, mock.Anything, mock.Anything).Return(p, nil)
			env.OnActivity(a.RunHook, mock.Anything, mock.Anything).Return(c.err)
			env.ExecuteWorkflow(PlannedSwitchover, SwitchoverInput{Cluster: "demo"})
			var r Result
			if err := env.GetWorkflowResult(&r); err != nil || r.Outcome != "vetoed" || !strings.Contains(r.Reason, c.want) || !strings.Contains(r.Reason, "nothing was changed") && c.name != "veto" {
				t.Fatalf("%v %+v", err, r)
			}
			env.AssertNotCalled(t, "CatchUpReplicas", mock.Anything, mock.Anything)
			env.AssertNotCalled(t, "DemotePrimary", mock.Anything, mock.Anything)
		})
	}
}

// Any other failure of a pre-failover hook (here: its config gone from the worker) is not a
// veto either, and is named in the result.
func TestPreFailoverHookOtherFailureIsPassedOver(t *testing.T) {
	env, _, _ := hookedFailover(temporal.NewNonRetryableApplicationError(`hook "gate" is not configured for cluster demo`,
		activities.ErrBadConfig, nil), gateHook, recordHook)
	env.ExecuteWorkflow(UnplannedFailover, FailoverInput{Cluster: "demo", DeadPrimary: "node1"})
	var r Result
	if err := env.GetWorkflowResult(&r); err != nil || r.Outcome != "succeeded" {
		t.Fatalf("%v %+v", err, r)
	}
	if len(r.HookProblems) != 1 || !strings.Contains(r.HookProblems[0], "pre-failover hook gate failed without vetoing") ||
		!strings.Contains(r.HookProblems[0], "not configured") {
		t.Fatalf("hook problems %q", r.HookProblems)
	}
}

// The detector's degraded record runs the durability-degraded hooks, and its end the
// durability-restored ones; a failing hook is reported and changes nothing.
func TestDurabilityChangedRunsItsHooks(t *testing.T) {
	degraded := activities.HookRef{Name: "page", Point: config.DurabilityDegraded, Timeout: time.Second, Attempts: 1}
	restored := activities.HookRef{Name: "page", Point: config.DurabilityRestored, Timeout: time.Second, Attempts: 1}
	since := time.Date(2026, 12, 4, 4, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		in   DurabilityInput
		want config.HookPoint
	}{
		{DurabilityInput{Cluster: "demo2", Primary: "node4", Reason: "after falling back to asynchronous replication", Since: since}, config.DurabilityDegraded},
		{DurabilityInput{Cluster: "demo2", Primary: "node4", Reason: "after falling back", Since: since, Until: since.Add(time.Minute)}, config.DurabilityRestored},
	} {
		var s testsuite.WorkflowTestSuite
		env := s.NewTestWorkflowEnvironment()
		env.RegisterWorkflow(DurabilityChanged)
		env.RegisterActivity(&activities.Activities{})
		env.OnActivity(a.ClusterHooks, mock.Anything, "demo2").Return([]activities.HookRef{gateHook, recordHook, degraded, restored}, nil)
		var events []activities.Event
		env.OnActivity(a.RunHook, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.HookInput) error {
			events = append(events, in.Event)
			return temporal.NewNonRetryableApplicationError("pager down", activities.ErrHookFailed, nil)
		})
		env.ExecuteWorkflow(DurabilityChanged, c.in)
		var r Result
		if err := env.GetWorkflowError(); err != nil || env.GetWorkflowResult(&r) != nil {
			t.Fatalf("%v", err)
		}
		if len(events) != 1 || events[0].Point != c.want || events[0].Cluster != "demo2" || events[0].OldPrimary != "node4" || events[0].Kind != "durability" {
			t.Fatalf("want one %s event for demo2, got %+v", c.want, events)
		}
		if r.Outcome != "succeeded" || len(r.HookProblems) != 1 || !strings.Contains(r.HookProblems[0], "pager down") {
			t.Fatalf("result %+v", r)
		}
	}
}
