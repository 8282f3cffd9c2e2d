package workflows

import (
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/baton-db/baton/activities"
	"github.com/baton-db/baton/internal/topology"
)

// SwitchoverInput asks for a planned switchover. It carries no secrets.
type SwitchoverInput struct {
	Cluster     string
	Candidate   string // node name or host:port; empty lets Baton choose
	RequestedBy string
	// RequireApproval asks for the approval gate whatever the cluster's policy.
	RequireApproval bool
}

var a *activities.Activities

// PlannedSwitchover moves the primary role of a live cluster, RUNBOOK §2.
func PlannedSwitchover(ctx workflow.Context, in SwitchoverInput) (Result, error) {
	s := &switchover{in: in, t: newTracker(ctx), res: Result{Cluster: in.Cluster, Kind: "planned"}}
	_ = workflow.UpsertTypedSearchAttributes(ctx, SACluster.ValueSet(in.Cluster), SAKind.ValueSet("planned"))
	if err := s.registerGate(ctx); err != nil {
		return s.res, err
	}
	err := s.run(ctx)
	s.res.Steps = s.t.steps
	var aborted errAborted
	if errors.As(err, &aborted) {
		s.res.Reason = aborted.why
		setOutcome(ctx, &s.res, "aborted")
		return s.res, nil
	}
	if err != nil {
		setOutcome(ctx, &s.res, "failed")
		return s.res, err
	}
	setOutcome(ctx, &s.res, "succeeded")
	return s.res, nil
}

type switchover struct {
	in     SwitchoverInput
	t      *tracker
	res    Result
	plan   activities.Plan
	gate   gate
	demote activities.DemoteResult
	// localCutover (version 1) runs the write-blocked steps and the final record as local
	// activities, with no server round trip between the demotion and the Consul write, and
	// verifies routing while the old primary is reparented.
	localCutover bool
}

func (s *switchover) run(ctx workflow.Context) error {
	if err := s.checkPreconditions(ctx); err != nil {
		return err
	}
	if err := s.awaitApproval(ctx); err != nil {
		return err
	}
	if err := s.catchUpReplicas(ctx); err != nil {
		return err
	}
	// Writes are blocked from the demotion until routing reaches the new primary:
	// only the essential steps run in between.
	s.localCutover = workflow.GetVersion(ctx, "local-cutover", workflow.DefaultVersion, 1) == 1
	if err := s.demotePrimary(ctx); err != nil {
		return s.undo(ctx, err)
	}
	if err := s.promoteCandidate(ctx); err != nil {
		return s.undo(ctx, err)
	}
	if err := s.publishTopology(ctx); err != nil {
		return s.undo(ctx, err)
	}
	// Routing now moves to the new primary; the rest finishes the job before completing.
	if s.localCutover {
		if err := both(ctx, s.reparentOldPrimary, s.verifyRouting); err != nil {
			return err
		}
	} else {
		if err := s.reparentOldPrimary(ctx); err != nil {
			return err
		}
		if err := s.verifyRouting(ctx); err != nil {
			return err
		}
	}
	if err := s.restartHeartbeats(ctx); err != nil {
		return err
	}
	return s.recordResult(ctx)
}

func (s *switchover) checkPreconditions(ctx workflow.Context) error {
	return s.t.do(ctx, "check preconditions", func() error {
		err := workflow.ExecuteLocalActivity(local(ctx, 30*time.Second), a.CheckPreconditions,
			activities.CheckInput{Cluster: s.in.Cluster, Candidate: s.in.Candidate}).Get(ctx, &s.plan)
		if err != nil {
			return err
		}
		s.res.From, s.res.To, s.res.Reason = s.plan.OldPrimary.Name, s.plan.Candidate.Name, s.plan.Reason
		if s.in.RequireApproval && !s.plan.Approval.Required {
			s.plan.Approval.Required, s.plan.Approval.Reason = true, "requested by "+s.in.RequestedBy
		}
		workflow.SetCurrentDetails(ctx, fmt.Sprintf("**Planned switchover** of %s: %s -> %s at epoch %d\n\nCandidate: %s\n\nRequested by %s",
			s.in.Cluster, s.plan.OldPrimary.Name, s.plan.Candidate.Name, s.plan.Epoch, s.plan.Reason, s.in.RequestedBy))
		workflow.GetLogger(ctx).Info("plan", "cluster", s.in.Cluster, "candidate", s.plan.Candidate.Name,
			"epoch", s.plan.Epoch, "reason", s.plan.Reason)
		return workflow.UpsertTypedSearchAttributes(ctx,
			SAOldPrimary.ValueSet(s.plan.OldPrimary.Name), SANewPrimary.ValueSet(s.plan.Candidate.Name))
	})
}

func (s *switchover) catchUpReplicas(ctx workflow.Context) error {
	return s.t.do(ctx, "catch up replicas", func() error {
		return workflow.ExecuteActivity(summarize(waiting(ctx, 2*time.Minute), "move replicas under "+s.plan.Candidate.Name), a.CatchUpReplicas, s.plan).Get(ctx, nil)
	})
}

func (s *switchover) demotePrimary(ctx workflow.Context) error {
	return s.t.do(ctx, "demote primary", func() error {
		return s.cutover(ctx, waiting(ctx, 2*time.Minute), "demote "+s.plan.OldPrimary.Name, a.DemotePrimary, s.plan).Get(ctx, &s.demote)
	})
}

func (s *switchover) promoteCandidate(ctx workflow.Context) error {
	return s.t.do(ctx, "promote candidate", func() error {
		return s.cutover(ctx, quick(ctx), "promote "+s.plan.Candidate.Name, a.PromoteCandidate,
			activities.PromoteInput{Plan: s.plan, GTIDs: s.demote.GTIDs}).Get(ctx, nil)
	})
}

func (s *switchover) publishTopology(ctx workflow.Context) error {
	return s.t.do(ctx, "publish topology", func() error {
		var out activities.PublishResult
		replicas := append([]topology.Node{s.plan.OldPrimary}, s.plan.Others...)
		err := s.cutover(ctx, quick(ctx), "Consul: primary is "+s.plan.Candidate.Name, a.PublishTopology, activities.PublishInput{
			Cluster: s.in.Cluster, Epoch: s.plan.Epoch, EpochIndex: s.plan.EpochIndex,
			Primary: s.plan.Candidate, Replicas: replicas,
		}).Get(ctx, &out)
		s.res.Epoch = out.Epoch
		return err
	})
}

func (s *switchover) reparentOldPrimary(ctx workflow.Context) error {
	return s.t.do(ctx, "reparent old primary", func() error {
		return workflow.ExecuteActivity(summarize(waiting(ctx, time.Minute), s.plan.OldPrimary.Name+" replicates from "+s.plan.Candidate.Name), a.ReparentOldPrimary, activities.ReparentInput{
			Cluster: s.in.Cluster, Node: s.plan.OldPrimary, Primary: s.plan.Candidate}).Get(ctx, nil)
	})
}

func (s *switchover) verifyRouting(ctx workflow.Context) error {
	return s.t.do(ctx, "verify routing", func() error {
		return workflow.ExecuteActivity(summarize(waiting(ctx, time.Minute), "every HAProxy reaches "+s.plan.Candidate.Name), a.VerifyRouting, activities.VerifyInput{
			Cluster: s.in.Cluster, Primary: s.plan.Candidate.Name, ServerID: s.plan.Candidate.ServerID,
			Fence: []topology.Node{s.plan.OldPrimary}}).Get(ctx, nil)
	})
}

func (s *switchover) restartHeartbeats(ctx workflow.Context) error {
	return s.t.do(ctx, "restart heartbeats", func() error {
		replicas := append([]topology.Node{s.plan.OldPrimary}, s.plan.Others...)
		return workflow.ExecuteActivity(summarize(waiting(ctx, time.Minute), "heartbeats fresh on "+s.plan.Candidate.Name), a.RestartHeartbeats, activities.HeartbeatInput{
			Cluster: s.in.Cluster, Primary: s.plan.Candidate, Replicas: replicas}).Get(ctx, nil)
	})
}

func (s *switchover) recordResult(ctx workflow.Context) error {
	return s.t.do(ctx, "record result", func() error {
		return s.cutover(ctx, quick(ctx), "record the result", a.RecordResult, s.in.Cluster, record(ctx, "planned", s.plan, s.res.Epoch, s.t)).Get(ctx, nil)
	})
}

// cutover runs a short step as a local activity (in this worker, recorded as a marker,
// retried like the others) from version 1 on, and as an activity with opts before.
func (s *switchover) cutover(ctx, opts workflow.Context, summary string, activity any, args ...any) workflow.Future {
	if !s.localCutover {
		return workflow.ExecuteActivity(summarize(opts, summary), activity, args...)
	}
	o := workflow.GetActivityOptions(opts)
	lo := workflow.LocalActivityOptions{StartToCloseTimeout: o.StartToCloseTimeout, RetryPolicy: o.RetryPolicy, Summary: summary,
		ScheduleToCloseTimeout: o.StartToCloseTimeout * time.Duration(o.RetryPolicy.MaximumAttempts)}
	return workflow.ExecuteLocalActivity(workflow.WithLocalActivityOptions(ctx, lo), activity, args...)
}

// undo reopens the old primary after a failure past the demotion. It runs on a
// disconnected context so that a cancelled workflow still undoes; its own failure is
// reported with the original one, never swallowed.
func (s *switchover) undo(ctx workflow.Context, cause error) error {
	dctx, _ := workflow.NewDisconnectedContext(ctx)
	var res activities.UndoResult
	err := s.t.do(dctx, "undo demotion", func() error {
		return workflow.ExecuteActivity(summarize(options(dctx, 30*time.Second, 0, 5), "reopen "+s.plan.OldPrimary.Name), a.UndoDemotePrimary, s.plan).Get(dctx, &res)
	})
	if err != nil {
		return errors.Join(wrapf(cause, "switchover of %s failed", s.in.Cluster),
			wrapf(err, "undo of the demotion of %s failed too; a human must open the primary Consul names", s.plan.OldPrimary.Name))
	}
	return wrapf(cause, "switchover of %s failed and was undone (%s is primary again)", s.in.Cluster, res.Reopened)
}
