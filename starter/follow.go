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

// follow prints each activity of a run as it completes (name, duration, attempt), then
// the summary. It returns the workflow's error, so the exit code says how it ended.
func follow(ctx context.Context, c client.Client, run client.WorkflowRun, w io.Writer) error {
	it := c.GetWorkflowHistory(ctx, run.GetID(), run.GetRunID(), true, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	type act struct {
		name      string
		scheduled time.Time
		attempt   int32
	}
	acts := map[int64]*act{}
	var first time.Time
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			return fmt.Errorf("follow %s: %w", run.GetID(), err)
		}
		at := ev.GetEventTime().AsTime()
		if first.IsZero() {
			first = at
		}
		if ls, ok := localActivity(ev); ok {
			status := "ok"
			if ls.Failure != "" {
				status = "FAILED: " + ls.Failure
			}
			fmt.Fprintf(w, "  +%7.3fs  %-22s %8s  attempt %d  %s\n", at.Sub(first).Seconds(), ls.Name, "local", ls.Attempt, status)
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
				fmt.Fprintf(w, "  +%7.3fs  %-22s %8s  attempt %d  ok\n", at.Sub(first).Seconds(), x.name, at.Sub(x.scheduled).Round(time.Millisecond), x.attempt)
			}
		case enums.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
			var step string
			if p := ev.GetUpsertWorkflowSearchAttributesEventAttributes().GetSearchAttributes().GetIndexedFields()["BatonStep"]; p != nil &&
				converter.GetDefaultDataConverter().FromPayload(p, &step) == nil && step == "waiting for approval" {
				fmt.Fprintf(w, "  +%7.3fs  waiting for approval: baton approve --cluster ... --as NAME (or baton abort)\n", at.Sub(first).Seconds())
			}
		case enums.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
			u := ev.GetWorkflowExecutionUpdateAcceptedEventAttributes().GetAcceptedRequest()
			var d workflows.Decision
			if args := u.GetInput().GetArgs().GetPayloads(); len(args) > 0 {
				_ = converter.GetDefaultDataConverter().FromPayload(args[0], &d)
			}
			fmt.Fprintf(w, "  +%7.3fs  %s by %s\n", at.Sub(first).Seconds(), u.GetInput().GetName(), d.By)
		case enums.EVENT_TYPE_ACTIVITY_TASK_FAILED:
			f := ev.GetActivityTaskFailedEventAttributes()
			if x := acts[f.GetScheduledEventId()]; x != nil {
				fmt.Fprintf(w, "  +%7.3fs  %-22s %8s  attempt %d  FAILED: %s\n", at.Sub(first).Seconds(), x.name, at.Sub(x.scheduled).Round(time.Millisecond), x.attempt, f.GetFailure().GetMessage())
			}
		}
	}
	var res workflows.Result
	err := run.Get(ctx, &res)
	printSummary(w, res)
	if err != nil {
		return explain(run.GetID(), err)
	}
	if res.Outcome == "aborted" || res.Outcome == "vetoed" {
		return fmt.Errorf("%s: %s", run.GetID(), res.Reason)
	}
	return nil
}

// explain turns a workflow failure into the operator's message: the step's own words and
// its error type, without the Temporal wrapping.
func explain(id string, err error) error {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		return fmt.Errorf("%s: %s [%s]", id, appErr.Message(), appErr.Type())
	}
	return fmt.Errorf("%s failed: %w", id, err)
}

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
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}
