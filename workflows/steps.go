// Package workflows holds Baton's failover workflows. Each reads like its procedure in
// docs/runbook.md: a list of named steps, in the documented order, one activity each.
package workflows

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/baton-db/baton/activities"
	"github.com/baton-db/baton/internal/start"
)

// TaskQueue is where the worker listens.
const TaskQueue = "baton"

// The start options, IDs and search attributes live in package start, which the detector
// uses without linking the workflows.
const TaskTimeout = start.TaskTimeout

var (
	WorkflowID   = start.WorkflowID
	SACluster    = start.SACluster
	SAKind       = start.SAKind
	SAOldPrimary = start.SAOldPrimary
	SANewPrimary = start.SANewPrimary
	SAStep       = start.SAStep
	SAOutcome    = start.SAOutcome
)

// QueryCurrentStep is the query that returns the running step's name.
const QueryCurrentStep = "current_step"

// StepRecord is one step's timing in a result.
type StepRecord struct {
	Name     string
	Start    time.Time
	Duration time.Duration
	Error    string `json:",omitempty"`
}

// Result is what a switchover or failover returns.
type Result struct {
	Cluster string
	Kind    string
	From    string
	To      string
	Epoch   uint64
	Reason  string
	Outcome string
	// ApprovedBy is the human who approved the plan, when the policy asked for one.
	ApprovedBy string `json:",omitempty"`
	// PassedOver are the replicas the plan excluded, each with why (a must_not, a downtime,
	// a zone or lag limit, missing transactions).
	PassedOver []string `json:",omitempty"`
	// LeftOut says what a failover could not bring along (a replica that died meanwhile).
	LeftOut []string `json:",omitempty"`
	// HookProblems are hooks that failed without stopping anything (a post hook, or a
	// pre-failover hook past its timeout or failing without a veto).
	HookProblems []string `json:",omitempty"`
	// OldPrimaryStopped is how a failover knew the old primary took no writes before it
	// promoted (docs/runbook.md §3, the failover rule).
	OldPrimaryStopped string `json:",omitempty"`
	// RoutingUnverified are writer endpoints the worker could not reach at all while it
	// verified routing (their zone cut off from it): where they route is unknown.
	RoutingUnverified []string `json:",omitempty"`
	Steps             []StepRecord
}

// tracker records step timings, answers current_step and keeps BatonStep up to date.
// Steps may run side by side: current names every running one.
type tracker struct {
	current string
	running []string
	steps   []StepRecord
}

func newTracker(ctx workflow.Context) *tracker {
	t := &tracker{current: "starting"}
	_ = workflow.SetQueryHandler(ctx, QueryCurrentStep, func() (string, error) { return t.current, nil })
	return t
}

// set names what is running now, for the query and the search attribute.
func (t *tracker) set(ctx workflow.Context, running ...string) {
	t.running = running
	if len(running) > 0 {
		t.current = strings.Join(running, " + ")
		_ = workflow.UpsertTypedSearchAttributes(ctx, SAStep.ValueSet(t.current))
	}
}

// note adds what a running step is doing to its name, as in "publish topology: waiting
// for Consul".
func (t *tracker) note(ctx workflow.Context, name, what string) {
	running := slices.Clone(t.running)
	for i, s := range running {
		if s == name || strings.HasPrefix(s, name+": ") {
			running[i] = name + ": " + what
		}
	}
	t.set(ctx, running...)
}

// do runs one named step and records how long it took.
func (t *tracker) do(ctx workflow.Context, name string, f func() error) error {
	t.set(ctx, append(slices.Clone(t.running), name)...)
	start := workflow.Now(ctx)
	err := f()
	rec := StepRecord{Name: name, Start: start, Duration: workflow.Now(ctx).Sub(start)}
	if err != nil {
		rec.Error = err.Error()
		workflow.GetLogger(ctx).Error("step failed", "step", name, "error", err)
	}
	t.steps = append(t.steps, rec)
	t.running = slices.DeleteFunc(t.running, func(s string) bool { return s == name || strings.HasPrefix(s, name+": ") })
	if len(t.running) > 0 {
		t.current = strings.Join(t.running, " + ")
	}
	return err
}

// step is one runbook step: its name, how it runs, what the Web UI shows for it, the
// activity, its input and where its output goes. Every workflow's run is a list of these.
type step struct {
	name     string
	opts     func(workflow.Context) workflow.Context // activity options (quick, waitingFor, readFor, ...)
	local    bool                                    // run in this worker, recorded as a marker
	summary  string
	activity any
	args     []any
	out      any
}

// run runs one step and records it. A local step takes its timeout and retry policy from
// opts, and is given up after every attempt's timeout has passed.
func (t *tracker) run(ctx workflow.Context, s step) error {
	return t.do(ctx, s.name, func() error {
		o := workflow.GetActivityOptions(s.opts(ctx))
		o.Summary = s.summary
		if !s.local {
			return workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, o), s.activity, s.args...).Get(ctx, s.out)
		}
		lo := workflow.LocalActivityOptions{StartToCloseTimeout: o.StartToCloseTimeout, RetryPolicy: o.RetryPolicy, Summary: o.Summary}
		if o.RetryPolicy != nil && o.RetryPolicy.MaximumAttempts > 0 {
			lo.ScheduleToCloseTimeout = o.StartToCloseTimeout * time.Duration(o.RetryPolicy.MaximumAttempts)
		}
		return workflow.ExecuteLocalActivity(workflow.WithLocalActivityOptions(ctx, lo), s.activity, s.args...).Get(ctx, s.out)
	})
}

// args is a step's activity input.
func args(in ...any) []any { return in }

// options is the activity options of one kind of step. Every retry policy is bounded.
func options(ctx workflow.Context, startToClose, heartbeat time.Duration, attempts int32) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: startToClose,
		HeartbeatTimeout:    heartbeat,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    100 * time.Millisecond,
			BackoffCoefficient: 2,
			MaximumInterval:    2 * time.Second,
			MaximumAttempts:    attempts,
		},
	})
}

// readFor is for fast reads, run as local steps: in the worker that runs the workflow, with
// no server round trip, the result recorded in the history as a marker.
func readFor(timeout time.Duration) func(workflow.Context) workflow.Context {
	return func(ctx workflow.Context) workflow.Context { return options(ctx, timeout, 0, 3) }
}

// quick is for short reads and writes on the critical path.
func quick(ctx workflow.Context) workflow.Context { return options(ctx, 10*time.Second, 0, 5) }

// publishing is for the unplanned failover's Consul write: fast retries for a minute, after
// which the workflow waits for Consul in slower rounds (consulRetryEvery).
func publishing(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout:    10 * time.Second,
		ScheduleToCloseTimeout: time.Minute,
		RetryPolicy: &temporal.RetryPolicy{InitialInterval: 100 * time.Millisecond, BackoffCoefficient: 2,
			MaximumInterval: 2 * time.Second},
	})
}

// publishingHere is the first round of that write as a local activity: fast retries for 10 s.
func publishingHere(ctx workflow.Context, summary string) workflow.Context {
	return workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		StartToCloseTimeout:    5 * time.Second,
		ScheduleToCloseTimeout: 10 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{InitialInterval: 100 * time.Millisecond, BackoffCoefficient: 2,
			MaximumInterval: 2 * time.Second},
		Summary: summary,
	})
}

const consulRetryEvery = 10 * time.Second

// retryable tells errors worth another round (timeouts, unreachable services) from the
// ones no retry can fix (a changed epoch, bad input).
func retryable(err error) bool {
	var app *temporal.ApplicationError
	if errors.As(err, &app) {
		return !app.NonRetryable()
	}
	var canceled *temporal.CanceledError
	return !errors.As(err, &canceled)
}

// waitingFor is for steps that poll and heartbeat, up to limit.
func waitingFor(limit time.Duration) func(workflow.Context) workflow.Context {
	return func(ctx workflow.Context) workflow.Context { return options(ctx, limit, 5*time.Second, 3) }
}

func setOutcome(ctx workflow.Context, r *Result, outcome string) {
	r.Outcome = outcome
	_ = workflow.UpsertTypedSearchAttributes(ctx, SAOutcome.ValueSet(outcome))
	// Counted by cluster, for the failed-failover alert (the SDK's handler skips replays).
	workflow.GetMetricsHandler(ctx).WithTags(map[string]string{"cluster": r.Cluster, "kind": r.Kind, "outcome": outcome}).
		Counter("baton_operations_ended").Inc(1)
}

func wrapf(err error, format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), err)
}

// summarize sets the one-line summary the Web UI shows for the next activity.
func summarize(ctx workflow.Context, summary string) workflow.Context {
	o := workflow.GetActivityOptions(ctx)
	o.Summary = summary
	return workflow.WithActivityOptions(ctx, o)
}

// passedOver names each replica a plan excluded, with why.
func passedOver(reports []activities.ReplicaReport) []string {
	var out []string
	for _, r := range reports {
		if !r.Eligible {
			out = append(out, r.Node.Name+": "+r.Why)
		}
	}
	return out
}
