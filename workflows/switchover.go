package workflows

import (
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/baton-db/baton/activities"
	"github.com/baton-db/baton/internal/config"
	"github.com/baton-db/baton/internal/start"
	"github.com/baton-db/baton/internal/topology"
)

// SwitchoverInput asks for a planned switchover. It carries no secrets.
type SwitchoverInput = start.SwitchoverInput

var a *activities.Activities

// PlannedSwitchover moves the primary role of a live cluster, docs/runbook.md §2.
func PlannedSwitchover(ctx workflow.Context, in SwitchoverInput) (Result, error) {
	s := &switchover{in: in, t: newTracker(ctx), res: Result{Cluster: in.Cluster, Kind: "planned"}}
	_ = workflow.UpsertTypedSearchAttributes(ctx, SACluster.ValueSet(in.Cluster), SAKind.ValueSet("planned"))
	if err := s.registerGate(ctx); err != nil {
		return s.res, err
	}
	err := s.run(ctx)
	s.res.Steps = s.t.steps
	var aborted errAborted
	var veto vetoed
	if errors.As(err, &veto) {
		s.res.Reason = veto.why
		setOutcome(ctx, &s.res, "vetoed")
		return s.res, nil
	}
	if errors.As(err, &aborted) {
		s.res.Reason = aborted.why
		setOutcome(ctx, &s.res, "aborted")
		return s.res, nil
	}
	if temporal.IsCanceledError(err) || errors.Is(ctx.Err(), workflow.ErrCanceled) {
		// Cancelled: a dead primary's failover preempts a switchover (undone above if it
		// had demoted), or a human cancelled it.
		dctx, _ := workflow.NewDisconnectedContext(ctx)
		s.res.Reason = "cancelled, by the unplanned failover of a dead primary or by a human: " + err.Error()
		setOutcome(dctx, &s.res, "preempted")
		return s.res, err
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
	if err := runHooks(ctx, s.t, s.plan.Hooks, config.PreSwitchover, s.event(), &s.res); err != nil {
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
	if err := s.recordResult(ctx); err != nil {
		return err
	}
	return runHooks(ctx, s.t, s.plan.Hooks, config.PostSwitchover, s.event(), &s.res)
}

// event is what the switchover's hooks receive.
func (s *switchover) event() activities.Event {
	epoch := s.plan.Epoch
	if s.res.Epoch != 0 {
		epoch = s.res.Epoch
	}
	return activities.Event{Cluster: s.in.Cluster, Kind: "planned", OldPrimary: s.plan.OldPrimary.Name, NewPrimary: s.plan.Candidate.Name,
		Epoch: epoch, Reason: s.plan.Reason, RequestedBy: s.in.RequestedBy}
}

func (s *switchover) checkPreconditions(ctx workflow.Context) error {
	if err := s.t.run(ctx, step{name: "check preconditions", opts: readFor(30 * time.Second), local: true,
		activity: a.CheckPreconditions, args: args(activities.CheckInput{Cluster: s.in.Cluster, Candidate: s.in.Candidate}), out: &s.plan}); err != nil {
		return err
	}
	s.res.From, s.res.To, s.res.Reason = s.plan.OldPrimary.Name, s.plan.Candidate.Name, s.plan.Reason
	s.res.PassedOver = passedOver(s.plan.Replicas)
	if s.in.RequireApproval && !s.plan.Approval.Required {
		s.plan.Approval.Required, s.plan.Approval.Reason = true, "requested by "+s.in.RequestedBy
	}
	workflow.SetCurrentDetails(ctx, fmt.Sprintf("**Planned switchover** of %s: %s -> %s at epoch %d\n\nCandidate: %s\n\nRequested by %s",
		s.in.Cluster, s.plan.OldPrimary.Name, s.plan.Candidate.Name, s.plan.Epoch, s.plan.Reason, s.in.RequestedBy))
	workflow.GetLogger(ctx).Info("plan", "cluster", s.in.Cluster, "candidate", s.plan.Candidate.Name,
		"epoch", s.plan.Epoch, "reason", s.plan.Reason)
	return workflow.UpsertTypedSearchAttributes(ctx,
		SAOldPrimary.ValueSet(s.plan.OldPrimary.Name), SANewPrimary.ValueSet(s.plan.Candidate.Name))
}

func (s *switchover) catchUpReplicas(ctx workflow.Context) error {
	return s.t.run(ctx, step{name: "catch up replicas", opts: waitingFor(2 * time.Minute), summary: "move replicas under " + s.plan.Candidate.Name,
		activity: a.CatchUpReplicas, args: args(s.plan)})
}

// The write-blocked steps run as local activities from version 1 of "local-cutover" on:
// no server round trip between the demotion and the Consul write.

func (s *switchover) demotePrimary(ctx workflow.Context) error {
	return s.t.run(ctx, step{name: "demote primary", opts: waitingFor(2 * time.Minute), local: s.localCutover, summary: "demote " + s.plan.OldPrimary.Name,
		activity: a.DemotePrimary, args: args(s.plan), out: &s.demote})
}

func (s *switchover) promoteCandidate(ctx workflow.Context) error {
	return s.t.run(ctx, step{name: "promote candidate", opts: quick, local: s.localCutover, summary: "promote " + s.plan.Candidate.Name,
		activity: a.PromoteCandidate, args: args(activities.PromoteInput{Plan: s.plan, GTIDs: s.demote.GTIDs})})
}

func (s *switchover) publishTopology(ctx workflow.Context) error {
	var out activities.PublishResult
	replicas := append([]topology.Node{s.plan.OldPrimary}, s.plan.Others...)
	err := s.t.run(ctx, step{name: "publish topology", opts: quick, local: s.localCutover, summary: "Consul: primary is " + s.plan.Candidate.Name,
		activity: a.PublishTopology, args: args(activities.PublishInput{Cluster: s.in.Cluster, Epoch: s.plan.Epoch, EpochIndex: s.plan.EpochIndex,
			Primary: s.plan.Candidate, Replicas: replicas}), out: &out})
	s.res.Epoch = out.Epoch
	return err
}

func (s *switchover) reparentOldPrimary(ctx workflow.Context) error {
	return s.t.run(ctx, step{name: "reparent old primary", opts: waitingFor(time.Minute), summary: s.plan.OldPrimary.Name + " replicates from " + s.plan.Candidate.Name,
		activity: a.ReparentOldPrimary, args: args(activities.ReparentInput{Cluster: s.in.Cluster, Node: s.plan.OldPrimary, Primary: s.plan.Candidate})})
}

func (s *switchover) verifyRouting(ctx workflow.Context) error {
	var out activities.VerifyResult
	err := s.t.run(ctx, step{name: "verify routing", opts: waitingFor(time.Minute), summary: "every HAProxy reaches " + s.plan.Candidate.Name,
		activity: a.VerifyRouting, args: args(activities.VerifyInput{Cluster: s.in.Cluster, Primary: s.plan.Candidate.Name, ServerID: s.plan.Candidate.ServerID,
			Fence: []topology.Node{s.plan.OldPrimary}}), out: &out})
	s.res.RoutingUnverified = unverified(out)
	return err
}

func (s *switchover) restartHeartbeats(ctx workflow.Context) error {
	replicas := append([]topology.Node{s.plan.OldPrimary}, s.plan.Others...)
	return s.t.run(ctx, step{name: "restart heartbeats", opts: waitingFor(time.Minute), summary: "heartbeats fresh on " + s.plan.Candidate.Name,
		activity: a.RestartHeartbeats, args: args(activities.HeartbeatInput{Cluster: s.in.Cluster, Primary: s.plan.Candidate, Replicas: replicas})})
}

func (s *switchover) recordResult(ctx workflow.Context) error {
	return s.t.run(ctx, step{name: "record result", opts: quick, local: s.localCutover, summary: "record the result",
		activity: a.RecordResult, args: args(s.in.Cluster, record(ctx, "planned", s.plan, s.res.Epoch, s.t))})
}

// undo reopens the old primary after a failure past the demotion. It runs on a
// disconnected context so that a cancelled workflow still undoes; its own failure is
// reported with the original one, never swallowed.
func (s *switchover) undo(ctx workflow.Context, cause error) error {
	dctx, _ := workflow.NewDisconnectedContext(ctx)
	var res activities.UndoResult
	err := s.t.run(dctx, step{name: "undo demotion", opts: func(ctx workflow.Context) workflow.Context { return options(ctx, 30*time.Second, 0, 5) },
		summary: "reopen " + s.plan.OldPrimary.Name, activity: a.UndoDemotePrimary, args: args(s.plan), out: &res})
	if err != nil {
		return errors.Join(wrapf(cause, "switchover of %s failed", s.in.Cluster),
			wrapf(err, "undo of the demotion of %s failed too; a human must open the primary Consul names", s.plan.OldPrimary.Name))
	}
	if res.CandidateFix != "" {
		return wrapf(cause, "switchover of %s failed and was undone (%s is primary again; %s)", s.in.Cluster, res.Reopened, res.CandidateFix)
	}
	return wrapf(cause, "switchover of %s failed and was undone (%s is primary again)", s.in.Cluster, res.Reopened)
}
