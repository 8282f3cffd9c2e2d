package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/user"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"

	"github.com/baton-db/baton/workflows"
)

func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

func currentUser() string {
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return "unknown"
}

// followEvent is one line of `baton watch -o json`: a step, the approval gate, a
// decision, and last the end of the run with its result.
type followEvent struct {
	Event    string    `json:"event"` // step, waiting_for_approval, decision, end
	At       time.Time `json:"at"`
	OffsetS  float64   `json:"offset_s"` // since the run's first event
	Step     string    `json:"step,omitempty"`
	Local    bool      `json:"local,omitempty"` // a local activity (its duration is not recorded)
	Duration string    `json:"duration,omitempty"`
	Attempt  int32     `json:"attempt,omitempty"`
	Status   string    `json:"status,omitempty"` // ok or failed
	Error    string    `json:"error,omitempty"`
	Decision string    `json:"decision,omitempty"` // approve or abort
	By       string    `json:"by,omitempty"`
	// The end: the run's result, and the error the command ends with ("" on success).
	Result   *workflows.Result `json:"result,omitempty"`
	ExitCode *int              `json:"exit_code,omitempty"`
}

// follow prints each activity of a run as it completes (name, duration, attempt), then
// the summary. It returns the workflow's error, so the exit code says how it ended
// (exit.go: a refusal 3, a failure 1, a wait cut short 4).
func follow(ctx context.Context, c client.Client, run client.WorkflowRun, w io.Writer) error {
	return followRun(ctx, c, run, w, false)
}

// followRun is follow; asJSON prints one followEvent per line instead.
func followRun(ctx context.Context, c client.Client, run client.WorkflowRun, w io.Writer, asJSON bool) error {
	it := c.GetWorkflowHistory(ctx, run.GetID(), run.GetRunID(), true, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	type act struct {
		name      string
		scheduled time.Time
		attempt   int32
	}
	acts := map[int64]*act{}
	var first, last time.Time
	emit := func(e followEvent) {
		e.OffsetS = e.At.Sub(first).Seconds()
		if asJSON {
			_ = writeJSON(w, e, false)
			return
		}
		switch e.Event {
		case "step":
			status := "ok"
			if e.Status != "ok" {
				status = "FAILED: " + e.Error
			}
			fmt.Fprintf(w, "  +%7.3fs  %-22s %8s  attempt %d  %s\n", e.OffsetS, e.Step, e.Duration, e.Attempt, status)
		case "waiting_for_approval":
			fmt.Fprintf(w, "  +%7.3fs  waiting for approval: baton approve --cluster ... --as NAME (or baton abort)\n", e.OffsetS)
		case "decision":
			fmt.Fprintf(w, "  +%7.3fs  %s by %s\n", e.OffsetS, e.Decision, e.By)
		}
	}
	step := func(at time.Time, x *act, failure string) {
		e := followEvent{Event: "step", At: at, Step: x.name, Duration: at.Sub(x.scheduled).Round(time.Millisecond).String(), Attempt: x.attempt, Status: "ok"}
		if failure != "" {
			e.Status, e.Error = "failed", failure
		}
		emit(e)
	}
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			var nf *serviceerror.NotFound
			if errors.As(err, &nf) {
				return refused(fmt.Errorf("follow %s: %w", run.GetID(), err))
			}
			// The run goes on without us: its outcome is unknown here.
			return unknownOutcome(fmt.Errorf("follow %s: %w", run.GetID(), err))
		}
		at := ev.GetEventTime().AsTime()
		if first.IsZero() {
			first = at
		}
		last = at
		if ls, ok := localActivity(ev); ok {
			e := followEvent{Event: "step", At: at, Step: ls.Name, Local: true, Duration: "local", Attempt: ls.Attempt, Status: "ok"}
			if ls.Failure != "" {
				e.Status, e.Error = "failed", ls.Failure
			}
			emit(e)
			continue
		}
		switch ev.GetEventType() {
		case enums.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
			acts[ev.GetEventId()] = &act{name: ev.GetActivityTaskScheduledEventAttributes().GetActivityType().GetName(), scheduled: at}
		case enums.EVENT_TYPE_ACTIVITY_TASK_STARTED:
			a := ev.GetActivityTaskStartedEventAttributes()
			if x := acts[a.GetScheduledEventId()]; x != nil {
				x.attempt = a.GetAttempt()
			}
		case enums.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
			if x := acts[ev.GetActivityTaskCompletedEventAttributes().GetScheduledEventId()]; x != nil {
				step(at, x, "")
			}
		case enums.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
			var st string
			if p := ev.GetUpsertWorkflowSearchAttributesEventAttributes().GetSearchAttributes().GetIndexedFields()["BatonStep"]; p != nil &&
				converter.GetDefaultDataConverter().FromPayload(p, &st) == nil && st == "waiting for approval" {
				emit(followEvent{Event: "waiting_for_approval", At: at})
			}
		case enums.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
			u := ev.GetWorkflowExecutionUpdateAcceptedEventAttributes().GetAcceptedRequest()
			var d workflows.Decision
			if args := u.GetInput().GetArgs().GetPayloads(); len(args) > 0 {
				_ = converter.GetDefaultDataConverter().FromPayload(args[0], &d)
			}
			emit(followEvent{Event: "decision", At: at, Decision: u.GetInput().GetName(), By: d.By})
		case enums.EVENT_TYPE_ACTIVITY_TASK_FAILED:
			f := ev.GetActivityTaskFailedEventAttributes()
			if x := acts[f.GetScheduledEventId()]; x != nil {
				step(at, x, f.GetFailure().GetMessage())
			}
		}
	}
	var res workflows.Result
	err := runEnd(run, run.Get(ctx, &res), res)
	if !asJSON {
		printSummary(w, res)
		return err
	}
	e := followEvent{Event: "end", At: last} // the run's closing event
	if res.Cluster != "" {
		e.Result = &res
	}
	code := exitCode(err)
	e.ExitCode = &code
	if err != nil {
		e.Error = err.Error()
	}
	emit(e)
	return err
}

// runEnd is the error a followed run ends the command with: the workflow's failure (a
// refusal or not, exit.go), an outcome that changed nothing (aborted, vetoed, a failover
// found unneeded: refused), or, when the wait itself ended first, an unknown outcome.
func runEnd(run client.WorkflowRun, err error, res workflows.Result) error {
	var wfErr *temporal.WorkflowExecutionError
	switch {
	case err != nil && errors.As(err, &wfErr):
		return explain(run.GetID(), err)
	case err != nil:
		return unknownOutcome(fmt.Errorf("%s: the wait for its end stopped (%w); it may still be running: `baton watch` follows it", run.GetID(), err))
	}
	switch res.Outcome {
	case "aborted", "vetoed":
		return refused(fmt.Errorf("%s: %s", run.GetID(), res.Reason))
	case "no-op":
		return refused(fmt.Errorf("%s: no failover was needed, nothing was changed: %s", run.GetID(), res.Reason))
	}
	return nil
}

// explain turns a workflow failure into the operator's message: the step's own words and
// its error type, without the Temporal wrapping.
func explain(id string, err error) error {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		return explained{msg: fmt.Sprintf("%s: %s [%s]", id, appErr.Message(), appErr.Type()), err: err}
	}
	return fmt.Errorf("%s failed: %w", id, err)
}

// explained is a workflow's failure in the operator's words; it still wraps the failure,
// so exitCode finds a refusal's error type in it.
type explained struct {
	msg string
	err error
}

func (e explained) Error() string { return e.msg }
func (e explained) Unwrap() error { return e.err }

func printSummary(w io.Writer, r workflows.Result) {
	if r.Cluster == "" {
		return
	}
	var total time.Duration
	if n := len(r.Steps); n > 0 {
		total = r.Steps[n-1].Start.Add(r.Steps[n-1].Duration).Sub(r.Steps[0].Start)
	}
	fmt.Fprintf(w, "\n%s %s of %s: %s -> %s, epoch %d, %s in total\n", r.Outcome, r.Kind, r.Cluster, r.From, r.To, r.Epoch, total.Round(time.Millisecond))
	if r.Reason != "" {
		label := "candidate"
		if r.Outcome != "succeeded" {
			label = "reason"
		}
		fmt.Fprintf(w, "  %s: %s\n", label, r.Reason)
	}
	for _, s := range r.Steps {
		status := "ok"
		if s.Error != "" {
			status = "error: " + s.Error
		}
		fmt.Fprintf(w, "  %-22s %8s  %s\n", s.Name, s.Duration.Round(time.Millisecond), status)
	}
	for _, p := range r.HookProblems {
		fmt.Fprintf(w, "  hook: %s\n", p)
	}
	for _, p := range r.RoutingUnverified {
		fmt.Fprintf(w, "  routing: %s\n", p)
	}
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}
