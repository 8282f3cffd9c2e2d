package workflows

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"go.temporal.io/sdk/workflow"
)

// Update names of the approval gate.
const (
	UpdateApprove = "approve"
	UpdateAbort   = "abort"
)

// QueryPlan returns what a switchover waiting for approval would do (PlanView).
const QueryPlan = "plan"

// Decision is a human's answer at the approval gate. Its fields go into the history.
type Decision struct {
	By     string
	Epoch  uint64 // the epoch the approver saw: a changed epoch makes the plan stale
	Reason string
	// RunID and Candidate bind an approval to the run and the move that were reviewed: an
	// approval meant for one switchover never approves the next.
	RunID     string `json:",omitempty"`
	Candidate string `json:",omitempty"`
}

// PlanView is what an approver reviews.
type PlanView struct {
	RunID, From, To, Reason string
	Epoch                   uint64
	Waiting                 bool
}

// errAborted ends a switchover cleanly, with nothing changed.
type errAborted struct{ why string }

func (e errAborted) Error() string { return e.why }

// gate is the approval gate of a switchover: Updates are accepted only while it waits.
type gate struct {
	waiting  bool
	decision *Decision
	approved bool
}

func (s *switchover) registerGate(ctx workflow.Context) error {
	err := workflow.SetQueryHandler(ctx, QueryPlan, func() (PlanView, error) {
		return PlanView{RunID: workflow.GetInfo(ctx).WorkflowExecution.RunID, From: s.plan.OldPrimary.Name, To: s.plan.Candidate.Name,
			Reason: s.plan.Reason, Epoch: s.plan.Epoch, Waiting: s.gate.waiting}, nil
	})
	if err != nil {
		return err
	}
	validate := func(d Decision) error {
		switch {
		case !s.gate.waiting:
			return errors.New("this switchover is not waiting for approval")
		case d.By == "":
			return errors.New("say who you are (--as NAME)")
		case len(s.plan.Approval.Approvers) > 0 && !slices.Contains(s.plan.Approval.Approvers, d.By):
			return fmt.Errorf("unknown approver %q: approvers of %s are %s", d.By, s.in.Cluster, strings.Join(s.plan.Approval.Approvers, ", "))
		}
		return nil
	}
	err = workflow.SetUpdateHandlerWithOptions(ctx, UpdateApprove,
		func(ctx workflow.Context, d Decision) (string, error) {
			s.gate.decision, s.gate.approved = &d, true
			return fmt.Sprintf("approved by %s: %s -> %s", d.By, s.plan.OldPrimary.Name, s.plan.Candidate.Name), nil
		},
		workflow.UpdateHandlerOptions{Validator: func(ctx workflow.Context, d Decision) error {
			if err := validate(d); err != nil {
				return err
			}
			run := workflow.GetInfo(ctx).WorkflowExecution.RunID
			if d.RunID != run || d.Candidate != s.plan.Candidate.Name {
				return fmt.Errorf("this approval is for run %q moving to %q, but the switchover waiting is run %s moving %s -> %s: review it (baton approve shows it) and approve that",
					d.RunID, d.Candidate, run, s.plan.OldPrimary.Name, s.plan.Candidate.Name)
			}
			if d.Epoch != s.plan.Epoch {
				return fmt.Errorf("stale plan: it was made at epoch %d and the cluster is at epoch %d now; abort and plan again", s.plan.Epoch, d.Epoch)
			}
			return nil
		}})
	if err != nil {
		return err
	}
	return workflow.SetUpdateHandlerWithOptions(ctx, UpdateAbort,
		func(ctx workflow.Context, d Decision) (string, error) {
			s.gate.decision = &d
			return "aborted by " + d.By, nil
		},
		workflow.UpdateHandlerOptions{Validator: func(ctx workflow.Context, d Decision) error { return validate(d) }})
}

// awaitApproval holds the switchover before the demotion until a human approves, aborts,
// or the timeout passes. Nothing has been changed yet.
func (s *switchover) awaitApproval(ctx workflow.Context) error {
	if !s.plan.Approval.Required {
		return nil
	}
	return s.t.do(ctx, "waiting for approval", func() error {
		s.gate.waiting = true
		defer func() { s.gate.waiting = false }()
		workflow.SetCurrentDetails(ctx, fmt.Sprintf("**Waiting for approval** (%s): %s -> %s. Approve with `baton approve --cluster %s --as NAME`.",
			s.plan.Approval.Reason, s.plan.OldPrimary.Name, s.plan.Candidate.Name, s.in.Cluster))
		ok, err := workflow.AwaitWithTimeout(ctx, s.plan.Approval.Timeout, func() bool { return s.gate.decision != nil })
		switch {
		case err != nil:
			return err
		case !ok:
			return errAborted{fmt.Sprintf("no approval within %s; nothing was changed", s.plan.Approval.Timeout)}
		case !s.gate.approved:
			return errAborted{fmt.Sprintf("aborted by %s (%s); nothing was changed", s.gate.decision.By, s.gate.decision.Reason)}
		}
		s.res.ApprovedBy = s.gate.decision.By
		workflow.GetLogger(ctx).Info("approved", "cluster", s.in.Cluster, "approver", s.gate.decision.By, "epoch", s.plan.Epoch)
		return nil
	})
}
