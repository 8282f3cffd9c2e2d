package workflows

import (
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/baton-db/baton/activities"
	"github.com/baton-db/baton/internal/config"
)

// vetoed ends an operation that a pre hook refused before anything changed.
type vetoed struct{ why string }

func (e vetoed) Error() string { return e.why }

// runHooks runs the configured hooks at point p one after another, each as its own
// activity (docs/runbook.md §7). A pre hook vetoes only on purpose (ErrHookVetoed: the
// reserved exit status or HTTP answer), returned as vetoed. A pre-failover hook that fails
// otherwise (ErrHookFailed: it cannot start, exits otherwise, cannot be reached, answers
// another error) or does not answer within its timeout is passed over and reported, so it
// cannot hold a dead primary's failover. A switchover stays strict: a pre-switchover hook
// that vetoes, fails or does not answer refuses it. A post hook's failure is reported in
// the result and changes nothing.
func runHooks(ctx workflow.Context, t *tracker, refs []activities.HookRef, p config.HookPoint, ev activities.Event, res *Result) error {
	info := workflow.GetInfo(ctx)
	ev.Point, ev.WorkflowID, ev.RunID, ev.At = p, info.WorkflowExecution.ID, info.WorkflowExecution.RunID, workflow.Now(ctx)
	for _, h := range refs {
		if h.Point != p {
			continue
		}
		err := t.run(ctx, step{name: fmt.Sprintf("%s hook %s", p, h.Name), opts: hookOptions(h), summary: fmt.Sprintf("%s hook %s", p, h.Name),
			activity: a.RunHook, args: args(activities.HookInput{Hook: h.Name, Event: ev})})
		switch {
		case err == nil:
		case !p.Pre():
			res.HookProblems = append(res.HookProblems, fmt.Sprintf("%s hook %s failed after %d attempt(s): %s", p, h.Name, h.Attempts, message(err)))
		case hookTimedOut(err) && p == config.PreFailover:
			res.HookProblems = append(res.HookProblems, fmt.Sprintf("%s hook %s did not answer within %s; the failover went on without it", p, h.Name, h.Timeout))
			workflow.GetLogger(ctx).Warn("pre-failover hook timed out; failing over without it", "hook", h.Name, "timeout", h.Timeout)
		case hookTimedOut(err):
			return vetoed{fmt.Sprintf("%s hook %s did not answer within %s; nothing was changed", p, h.Name, h.Timeout)}
		case isType(err, activities.ErrHookVetoed):
			return vetoed{message(err)}
		case p == config.PreFailover && passOverFailedHook(ctx):
			if temporal.IsCanceledError(err) {
				return err // the run was cancelled: not the hook's doing
			}
			why := message(err) // RunHook's names the hook and says it is no veto
			if !isType(err, activities.ErrHookFailed) {
				why = fmt.Sprintf("%s hook %s failed without vetoing: %s", p, h.Name, why)
			}
			res.HookProblems = append(res.HookProblems, why+"; the failover went on without it")
			workflow.GetLogger(ctx).Warn("pre-failover hook failed without vetoing; failing over without it", "hook", h.Name, "error", why)
		case p == config.PreSwitchover && isType(err, activities.ErrHookFailed):
			return vetoed{fmt.Sprintf("%s; a pre-switchover hook must succeed, so the switchover was refused and nothing was changed", message(err))}
		default: // pre-switchover, or a pre-failover run from before "explicit-hook-veto" replayed
			return vetoed{message(err)}
		}
	}
	return nil
}

// passOverFailedHook: from version 1 of "explicit-hook-veto" a pre-failover hook that fails
// without vetoing is passed over; before it, every failure was a veto. The version is
// asked only where the two differ, so runs that never got there replay unchanged.
func passOverFailedHook(ctx workflow.Context) bool {
	return workflow.GetVersion(ctx, "explicit-hook-veto", workflow.DefaultVersion, 1) == 1
}

// message is an activity error's own message, without Temporal's wrapping.
func message(err error) string {
	var app *temporal.ApplicationError
	if errors.As(err, &app) {
		return app.Message()
	}
	return rootCause(err)
}

// hookTimedOut: the hook did not answer within its timeout (RunHook's own timer), or the
// attempt timed out in Temporal.
func hookTimedOut(err error) bool {
	var app *temporal.ApplicationError
	return temporal.IsTimeoutError(err) || errors.As(err, &app) && app.Type() == activities.ErrHookTimedOut
}

// hookAttemptGrace is how much longer than the hook's timeout Temporal gives an attempt of
// a pre-switchover hook, whose attempts Temporal lost (a worker crash, a Temporal restart
// after the hook answered) are run again: the switchover can wait, and the hook ran
// or hung only by RunHook's own timer. A pre-failover hook's attempt is bounded by the
// hook's timeout alone: the failover never waits longer for it.
const hookAttemptGrace = 5 * time.Second

// hookOptions bounds each attempt of a hook. Time spent waiting for a worker is not the
// hook's and does not count against it.
func hookOptions(h activities.HookRef) func(workflow.Context) workflow.Context {
	opts := workflow.ActivityOptions{StartToCloseTimeout: h.Timeout + hookAttemptGrace,
		RetryPolicy: &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumAttempts: int32(h.Attempts)}}
	switch h.Point {
	case config.PreFailover:
		opts.StartToCloseTimeout = h.Timeout
	case config.PreSwitchover:
		opts.RetryPolicy.MaximumAttempts = int32(max(h.Attempts, 3)) // a veto or a hang is not retried
	}
	return func(ctx workflow.Context) workflow.Context { return workflow.WithActivityOptions(ctx, opts) }
}

// hasHooks reports whether any hook runs at p.
func hasHooks(refs []activities.HookRef, p config.HookPoint) bool {
	for _, h := range refs {
		if h.Point == p {
			return true
		}
	}
	return false
}
