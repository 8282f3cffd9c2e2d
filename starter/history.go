package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/temporalproto"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/worker"

	"github.com/baton-db/baton/internal/app"
	"github.com/baton-db/baton/internal/start"
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
	cfg, err := loadConfig(cmd)
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
		var nf *serviceerror.NotFound
		if errors.As(err, &nf) {
			return nil, refused(fmt.Errorf("history of %s: %w", id, err))
		}
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
	var out *output
	cmd := &cobra.Command{
		Use:   "postmortem --workflow-id ID [--run-id RUN] | --file h.json [-o json]",
		Short: "Print a Markdown timeline of a failover: each step, start, duration, attempts, errors, approver (-o json: the same as JSON)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := out.check(); err != nil {
				return err
			}
			var hist *historypb.History
			var err error
			if file != "" {
				f, ferr := os.Open(file)
				if ferr != nil {
					return usage(ferr)
				}
				defer f.Close()
				if hist, err = client.HistoryFromJSON(f, client.HistoryJSONOptions{}); err != nil {
					return usage(fmt.Errorf("%s: %w", file, err))
				}
			} else {
				if id == "" {
					return usage(fmt.Errorf("pass --workflow-id ID or --file h.json"))
				}
				if hist, err = fetchHistory(cmd, id, runID); err != nil {
					return err
				}
			}
			r := buildPostmortem(hist)
			return out.print(cmd.OutOrStdout(), r, func(w io.Writer) error {
				r.markdown(w)
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&id, "workflow-id", "", "workflow ID, for example failover/demo")
	cmd.Flags().StringVar(&runID, "run-id", "", "run ID (default: the latest run)")
	cmd.Flags().StringVar(&file, "file", "", "an exported history instead of the server's")
	out = addOutput(cmd)
	return cmd
}

// memoVersion is the memo key that carries the version of the baton that started a
// workflow (internal/start).
const memoVersion = start.MemoVersion

// postmortemReport is one run's timeline: `baton postmortem` prints it as Markdown, or
// with -o json as it is.
type postmortemReport struct {
	Workflow string    `json:"workflow"`
	Status   string    `json:"status"`
	Started  time.Time `json:"started"`
	Last     time.Time `json:"last_event"`
	Events   int       `json:"events"`
	// StartedBy is the version of the baton (CLI or detector) that started the run, from
	// its memo ("" for a run started before the memo existed, or by another client).
	StartedBy string           `json:"started_by_version,omitempty"`
	Input     json.RawMessage  `json:"input,omitempty"`
	Steps     []postmortemStep `json:"steps"`
	Decisions []decisionRecord `json:"decisions,omitempty"`
	// Result is the workflow's result (a workflows.Result) when it completed; Failure its
	// error when it failed.
	Result  json.RawMessage `json:"result,omitempty"`
	Failure string          `json:"failure,omitempty"`
}

type postmortemStep struct {
	Name       string    `json:"name"`
	Summary    string    `json:"summary,omitempty"`
	Local      bool      `json:"local,omitempty"`
	Scheduled  time.Time `json:"scheduled"`
	OffsetS    float64   `json:"offset_s"`
	DurationMS float64   `json:"duration_ms,omitempty"` // 0 while running
	Attempt    int32     `json:"attempt"`
	Outcome    string    `json:"outcome"`
	end        time.Time
}

type decisionRecord struct {
	At     time.Time `json:"at"`
	Update string    `json:"update"` // approve or abort
	By     string    `json:"by"`
	Epoch  uint64    `json:"epoch"`
	Reason string    `json:"reason,omitempty"`
	// Identity is the Temporal client identity that sent the Update (app.Identity: user, host,
	// pid, and with mutual TLS the client certificate's subject), beside the self-asserted By.
	Identity string `json:"identity,omitempty"`
}

// postmortem writes the Markdown timeline of one run.
func postmortem(h *historypb.History, w io.Writer) { buildPostmortem(h).markdown(w) }

// buildPostmortem reads one run's history.
func buildPostmortem(h *historypb.History) postmortemReport {
	dc := converter.GetDefaultDataConverter()
	steps := map[int64]*postmortemStep{}
	var order []int64
	r := postmortemReport{Events: len(h.Events)}
	for _, ev := range h.Events {
		at := ev.GetEventTime().AsTime()
		if r.Started.IsZero() {
			r.Started = at
		}
		r.Last = at
		if ls, ok := localActivity(ev); ok {
			outcome := "ok"
			if ls.Failure != "" {
				outcome = "**failed**: " + ls.Failure
			}
			steps[ev.GetEventId()] = &postmortemStep{Name: ls.Name, Summary: "(local activity)", Local: true, Scheduled: at, end: at, Attempt: ls.Attempt, Outcome: outcome}
			order = append(order, ev.GetEventId())
			continue
		}
		switch ev.GetEventType() {
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
			a := ev.GetWorkflowExecutionStartedEventAttributes()
			r.Workflow = a.GetWorkflowType().GetName()
			r.Input = rawJSON(a.GetInput().GetPayloads())
			if p := a.GetMemo().GetFields()[memoVersion]; p != nil {
				_ = dc.FromPayload(p, &r.StartedBy)
			}
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
			a := ev.GetActivityTaskScheduledEventAttributes()
			s := &postmortemStep{Name: a.GetActivityType().GetName(), Scheduled: at}
			if md := ev.GetUserMetadata().GetSummary(); md != nil {
				_ = dc.FromPayload(md, &s.Summary)
			}
			steps[ev.GetEventId()] = s
			order = append(order, ev.GetEventId())
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_STARTED:
			a := ev.GetActivityTaskStartedEventAttributes()
			if s := steps[a.GetScheduledEventId()]; s != nil {
				s.Attempt = a.GetAttempt()
				if f := a.GetLastFailure(); f != nil {
					s.Outcome = "retried after: " + f.GetMessage() + "; "
				}
			}
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
			if s := steps[ev.GetActivityTaskCompletedEventAttributes().GetScheduledEventId()]; s != nil {
				s.end, s.Outcome = at, s.Outcome+"ok"
			}
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_FAILED:
			a := ev.GetActivityTaskFailedEventAttributes()
			if s := steps[a.GetScheduledEventId()]; s != nil {
				s.end, s.Outcome = at, s.Outcome+"**failed**: "+a.GetFailure().GetMessage()
			}
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT:
			a := ev.GetActivityTaskTimedOutEventAttributes()
			if s := steps[a.GetScheduledEventId()]; s != nil {
				s.end, s.Outcome = at, s.Outcome+"**timed out**: "+a.GetFailure().GetMessage()
			}
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
			req := ev.GetWorkflowExecutionUpdateAcceptedEventAttributes().GetAcceptedRequest()
			u := req.GetInput()
			var d workflows.Decision
			if p := u.GetArgs().GetPayloads(); len(p) > 0 {
				_ = dc.FromPayload(p[0], &d)
			}
			r.Decisions = append(r.Decisions, decisionRecord{At: at, Update: u.GetName(), By: d.By, Epoch: d.Epoch, Reason: d.Reason,
				Identity: req.GetMeta().GetIdentity()})
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
			r.Status = "completed"
			r.Result = rawJSON(ev.GetWorkflowExecutionCompletedEventAttributes().GetResult().GetPayloads())
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED:
			r.Status = "failed"
			r.Failure = ev.GetWorkflowExecutionFailedEventAttributes().GetFailure().GetMessage()
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT:
			r.Status = strings.ToLower(strings.TrimPrefix(ev.GetEventType().String(), "WorkflowExecution"))
		}
	}
	if r.Status == "" {
		r.Status = "running"
	}
	r.Steps = make([]postmortemStep, 0, len(order))
	for _, id := range order {
		s := steps[id]
		s.OffsetS = s.Scheduled.Sub(r.Started).Seconds()
		if !s.end.IsZero() {
			s.DurationMS = float64(s.end.Sub(s.Scheduled).Microseconds()) / 1000
		}
		r.Steps = append(r.Steps, *s)
	}
	return r
}

// markdown writes the report as `baton postmortem` prints it.
func (r postmortemReport) markdown(w io.Writer) {
	fmt.Fprintf(w, "# Postmortem: %s\n\n", r.Workflow)
	fmt.Fprintf(w, "- started %s, last event %s (%s), status **%s**\n", r.Started.Format(time.RFC3339Nano), r.Last.Format(time.RFC3339Nano), r.Last.Sub(r.Started).Round(time.Millisecond), r.Status)
	if r.StartedBy != "" {
		fmt.Fprintf(w, "- started by baton %s\n", r.StartedBy)
	}
	fmt.Fprintf(w, "- %d events\n\n", r.Events)
	fmt.Fprintln(w, "| # | step | summary | started (+s) | duration | attempts | outcome |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|")
	for i, s := range r.Steps {
		dur := "-"
		if !s.end.IsZero() {
			dur = s.end.Sub(s.Scheduled).Round(time.Millisecond).String()
		}
		fmt.Fprintf(w, "| %d | %s | %s | %.3f | %s | %d | %s |\n", i+1, s.Name, s.Summary, s.OffsetS, dur, s.Attempt,
			strings.ReplaceAll(s.Outcome, "|", "/"))
	}
	if len(r.Decisions) > 0 {
		fmt.Fprintln(w, "\n## Approval gate")
		for _, d := range r.Decisions {
			fmt.Fprintf(w, "- %s: **%s** by **%s** (saw epoch %d; Temporal client %q) %s\n", d.At.Format("15:04:05.000"), d.Update, d.By, d.Epoch, d.Identity, d.Reason)
		}
	}
	result := r.Failure
	switch {
	case r.Status == "completed":
		result = string(r.Result)
	case r.Status != "failed":
		result = "input: " + string(r.Input)
	}
	fmt.Fprintf(w, "\n## Result\n\n```\n%s\n```\n", result)
}

// rawJSON is the payloads' data (JSON, from the default converter) side by side, as one
// JSON value when there is one payload.
func rawJSON(ps []*commonpb.Payload) json.RawMessage {
	var parts []string
	for _, p := range ps {
		parts = append(parts, string(p.GetData()))
	}
	if len(parts) == 0 {
		return nil
	}
	if len(parts) == 1 && json.Valid([]byte(parts[0])) {
		return json.RawMessage(parts[0])
	}
	b, _ := json.Marshal(strings.Join(parts, " "))
	return b
}
