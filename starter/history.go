package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/temporalproto"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/worker"

	"github.com/baton-db/baton/internal/app"
	"github.com/baton-db/baton/workflows"
)

func newHistory() *cobra.Command {
	h := &cobra.Command{Use: "history", Short: "Export a failover's history for a postmortem"}
	var id, runID string
	export := &cobra.Command{
		Use:   "export --workflow-id ID [--run-id RUN] > h.json",
		Short: "Write the full event history as JSON (the format `baton replay` and `temporal` read)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			hist, err := fetchHistory(cmd, id, runID)
			if err != nil {
				return err
			}
			b, err := temporalproto.CustomJSONMarshalOptions{Indent: "  "}.Marshal(hist)
			if err != nil {
				return err
			}
			_, err = os.Stdout.Write(append(b, '\n'))
			return err
		},
	}
	export.Flags().StringVar(&id, "workflow-id", "", "workflow ID, for example failover/demo (required)")
	export.Flags().StringVar(&runID, "run-id", "", "run ID (default: the latest run)")
	_ = export.MarkFlagRequired("workflow-id")
	h.AddCommand(export)
	return h
}

func fetchHistory(cmd *cobra.Command, id, runID string) (*historypb.History, error) {
	cfg, err := app.LoadConfig(cmd.Flags())
	if err != nil {
		return nil, err
	}
	c, err := app.Client(cmd.Context(), cfg, quietLogger())
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return readHistory(cmd.Context(), c, id, runID)
}

func readHistory(ctx context.Context, c client.Client, id, runID string) (*historypb.History, error) {
	it := c.GetWorkflowHistory(ctx, id, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	hist := &historypb.History{}
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			return nil, fmt.Errorf("history of %s: %w", id, err)
		}
		hist.Events = append(hist.Events, ev)
	}
	return hist, nil
}

func newReplay() *cobra.Command {
	return &cobra.Command{
		Use:   "replay h.json",
		Short: "Replay an exported history against this build's workflow code; report any non-determinism",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return replay(args[0], os.Stdout)
		},
	}
}

// replay runs the workflow code against a recorded history. A change that would make a
// running failover take a different path is reported as a determinism error.
func replay(path string, w io.Writer) error {
	r := worker.NewWorkflowReplayer()
	workflows.Register(r)
	if err := r.ReplayWorkflowHistoryFromJSONFile(nil, path); err != nil {
		return fmt.Errorf("replay of %s FAILED: the current code does not reproduce this history (a non-deterministic change: gate it with workflow.GetVersion): %w", path, err)
	}
	fmt.Fprintf(w, "replay of %s: OK, the current code reproduces every recorded decision\n", path)
	return nil
}

func newPostmortem() *cobra.Command {
	var id, runID, file string
	cmd := &cobra.Command{
		Use:   "postmortem --workflow-id ID [--run-id RUN] | --file h.json",
		Short: "Print a Markdown timeline of a failover: each step, start, duration, attempts, errors, approver",
		RunE: func(cmd *cobra.Command, _ []string) error {
			var hist *historypb.History
			var err error
			if file != "" {
				f, ferr := os.Open(file)
				if ferr != nil {
					return ferr
				}
				defer f.Close()
				hist, err = client.HistoryFromJSON(f, client.HistoryJSONOptions{})
			} else {
				if id == "" {
					return fmt.Errorf("pass --workflow-id ID or --file h.json")
				}
				hist, err = fetchHistory(cmd, id, runID)
			}
			if err != nil {
				return err
			}
			postmortem(hist, os.Stdout)
			return nil
		},
	}
	cmd.Flags().StringVar(&id, "workflow-id", "", "workflow ID, for example failover/demo")
	cmd.Flags().StringVar(&runID, "run-id", "", "run ID (default: the latest run)")
	cmd.Flags().StringVar(&file, "file", "", "an exported history instead of the server's")
	return cmd
}

// postmortem writes the Markdown timeline of one run.
func postmortem(h *historypb.History, w io.Writer) {
	type step struct {
		name, summary         string
		scheduled, start, end time.Time
		attempt               int32
		outcome               string
	}
	dc := converter.GetDefaultDataConverter()
	steps := map[int64]*step{}
	var order []int64
	var first, last time.Time
	var wfType, status, result string
	var decisions []string
	for _, ev := range h.Events {
		at := ev.GetEventTime().AsTime()
		if first.IsZero() {
			first = at
		}
		last = at
		if ls, ok := localActivity(ev); ok {
			outcome := "ok"
			if ls.Failure != "" {
				outcome = "**failed**: " + ls.Failure
			}
			steps[ev.GetEventId()] = &step{name: ls.Name, summary: "(local activity)", scheduled: at, end: at, attempt: ls.Attempt, outcome: outcome}
			order = append(order, ev.GetEventId())
			continue
		}
		switch ev.GetEventType() {
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
			a := ev.GetWorkflowExecutionStartedEventAttributes()
			wfType = a.GetWorkflowType().GetName()
			result = "input: " + payloadText(dc, a.GetInput().GetPayloads())
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
			a := ev.GetActivityTaskScheduledEventAttributes()
			s := &step{name: a.GetActivityType().GetName(), scheduled: at}
			if md := ev.GetUserMetadata().GetSummary(); md != nil {
				_ = dc.FromPayload(md, &s.summary)
			}
			steps[ev.GetEventId()] = s
			order = append(order, ev.GetEventId())
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_STARTED:
			a := ev.GetActivityTaskStartedEventAttributes()
			if s := steps[a.GetScheduledEventId()]; s != nil {
				s.start, s.attempt = at, a.GetAttempt()
				if f := a.GetLastFailure(); f != nil {
					s.outcome = "retried after: " + f.GetMessage() + "; "
				}
			}
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
			if s := steps[ev.GetActivityTaskCompletedEventAttributes().GetScheduledEventId()]; s != nil {
				s.end, s.outcome = at, s.outcome+"ok"
			}
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_FAILED:
			a := ev.GetActivityTaskFailedEventAttributes()
			if s := steps[a.GetScheduledEventId()]; s != nil {
				s.end, s.outcome = at, s.outcome+"**failed**: "+a.GetFailure().GetMessage()
			}
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT:
			a := ev.GetActivityTaskTimedOutEventAttributes()
			if s := steps[a.GetScheduledEventId()]; s != nil {
				s.end, s.outcome = at, s.outcome+"**timed out**: "+a.GetFailure().GetMessage()
			}
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
			u := ev.GetWorkflowExecutionUpdateAcceptedEventAttributes().GetAcceptedRequest().GetInput()
			var d workflows.Decision
			if p := u.GetArgs().GetPayloads(); len(p) > 0 {
				_ = dc.FromPayload(p[0], &d)
			}
			decisions = append(decisions, fmt.Sprintf("- %s: **%s** by **%s** (saw epoch %d) %s", at.Format("15:04:05.000"), u.GetName(), d.By, d.Epoch, d.Reason))
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
			status = "completed"
			result = payloadText(dc, ev.GetWorkflowExecutionCompletedEventAttributes().GetResult().GetPayloads())
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED:
			status = "failed"
			result = ev.GetWorkflowExecutionFailedEventAttributes().GetFailure().GetMessage()
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT:
			status = strings.ToLower(strings.TrimPrefix(ev.GetEventType().String(), "WorkflowExecution"))
		}
	}
	if status == "" {
		status = "running"
	}
	fmt.Fprintf(w, "# Postmortem: %s\n\n", wfType)
	fmt.Fprintf(w, "- started %s, last event %s (%s), status **%s**\n", first.Format(time.RFC3339Nano), last.Format(time.RFC3339Nano), last.Sub(first).Round(time.Millisecond), status)
	fmt.Fprintf(w, "- %d events\n\n", len(h.Events))
	fmt.Fprintln(w, "| # | step | summary | started (+s) | duration | attempts | outcome |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|")
	for i, id := range order {
		s := steps[id]
		dur := "-"
		if !s.end.IsZero() {
			dur = s.end.Sub(s.scheduled).Round(time.Millisecond).String()
		}
		fmt.Fprintf(w, "| %d | %s | %s | %.3f | %s | %d | %s |\n", i+1, s.name, s.summary, s.scheduled.Sub(first).Seconds(), dur, s.attempt,
			strings.ReplaceAll(s.outcome, "|", "/"))
	}
	if len(decisions) > 0 {
		fmt.Fprintln(w, "\n## Approval gate")
		for _, d := range decisions {
			fmt.Fprintln(w, d)
		}
	}
	fmt.Fprintf(w, "\n## Result\n\n```\n%s\n```\n", result)
}

func payloadText(dc converter.DataConverter, ps []*commonpb.Payload) string {
	var parts []string
	for _, p := range ps {
		parts = append(parts, string(p.GetData()))
	}
	return strings.Join(parts, " ")
}
