package workflows

import (
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/baton-db/baton/activities"
	"github.com/baton-db/baton/internal/topology"
)

// FailoverInput asks for an unplanned failover. It carries no secrets.
type FailoverInput struct {
	Cluster string
	// DeadPrimary is the node the detector saw die; empty means whatever Consul names.
	DeadPrimary string
	// Force skips maintenance and the anti-flap period (a human's `baton failover --force`).
	Force       bool
	RequestedBy string
	Evidence    string
	// DetectedAt is when the detector classified the primary as dead (zero for a human's
	// `baton failover`).
	DetectedAt time.Time `json:",omitempty"`
}

// UnplannedFailover replaces a dead primary, RUNBOOK §3. The critical path is confirm →
// choose → promote → publish; the rest runs after routing changed, before completion.
func UnplannedFailover(ctx workflow.Context, in FailoverInput) (Result, error) {
	f := &failover{in: in, t: newTracker(ctx), res: Result{Cluster: in.Cluster, Kind: "unplanned"}}
	_ = workflow.UpsertTypedSearchAttributes(ctx, SACluster.ValueSet(in.Cluster), SAKind.ValueSet("unplanned"))
	err := f.run(ctx)
	f.res.Steps = f.t.steps
	switch {
	case err != nil:
		setOutcome(ctx, &f.res, "failed")
		return f.res, err
	case !f.confirm.Proceed:
		setOutcome(ctx, &f.res, "no-op")
	default:
		setOutcome(ctx, &f.res, "succeeded")
	}
	return f.res, nil
}

type failover struct {
	in      FailoverInput
	t       *tracker
	res     Result
	confirm activities.ConfirmResult
	plan    activities.Plan
	probe   activities.ProbeResult
	// probeBeside: version 1 of "probe-beside-stop"; parallel: of "parallel-fence-and-verify".
	probeBeside, parallel bool
	fence                 activities.FenceResult
}

func (f *failover) run(ctx workflow.Context) error {
	// Version 1 probes the primary beside the relay-log wait instead of before choosing: on
	// a silent host the probe's timeout and the IO-thread stop overlap.
	f.probeBeside = workflow.GetVersion(ctx, "probe-beside-stop", workflow.DefaultVersion, 1) == 1
	if err := f.confirmPrimaryDead(ctx); err != nil || !f.confirm.Proceed {
		return err
	}
	if err := f.chooseCandidate(ctx); err != nil {
		return err
	}
	if f.probeBeside {
		if err := both(ctx, f.probeThenFence, f.waitRelayLog); err != nil {
			return err
		}
		if f.probe.Answers { // it stalled and came back: put replication back, change nothing
			f.confirm.Proceed, f.res.Reason = false, f.probe.Why
			return f.restartReplication(ctx)
		}
		if err := f.promoteCandidate(ctx); err != nil {
			return err
		}
	} else if err := f.waitFenceAndPromote(ctx); err != nil {
		return err
	}
	// Version 1 of this change reparents the other replicas while Consul is written and
	// routing verified: the new primary has a semi-sync replica by the time writes arrive.
	if workflow.GetVersion(ctx, "reparent-beside-publish", workflow.DefaultVersion, 1) == 1 {
		if err := both(ctx, f.reparentReplicas, f.publishAndVerify); err != nil {
			return err
		}
	} else if err := f.publishThenReparentAndVerify(ctx); err != nil {
		return err
	}
	if err := f.restartHeartbeats(ctx); err != nil {
		return err
	}
	if err := f.evictNode(ctx); err != nil {
		return err
	}
	return f.recordResult(ctx)
}

// waitFenceAndPromote is the order before "probe-beside-stop". Version 1 of
// "parallel-fence-and-verify" runs the best-effort fence beside the relay-log wait and the
// promotion (both end before the publish), and verifies routing while the replicas reparent.
func (f *failover) waitFenceAndPromote(ctx workflow.Context) error {
	f.parallel = workflow.GetVersion(ctx, "parallel-fence-and-verify", workflow.DefaultVersion, 1) == 1
	if f.parallel {
		if err := both(ctx, f.fenceOldPrimary, f.waitAndPromote); err != nil {
			return err
		}
	} else {
		if err := f.waitRelayLog(ctx); err != nil {
			return err
		}
		if err := f.fenceOldPrimary(ctx); err != nil {
			return err
		}
		if err := f.promoteCandidate(ctx); err != nil {
			return err
		}
	}
	return nil
}

// probeThenFence asks the old primary once more; if it still does not answer, it is fenced
// (best effort) in case it comes back.
func (f *failover) probeThenFence(ctx workflow.Context) error {
	err := f.t.do(ctx, "probe primary", func() error {
		return workflow.ExecuteLocalActivity(local(ctx, 5*time.Second), a.ProbePrimary, f.plan).Get(ctx, &f.probe)
	})
	if err != nil || f.probe.Answers {
		return err
	}
	return f.fenceOldPrimary(ctx)
}

func (f *failover) restartReplication(ctx workflow.Context) error {
	return f.t.do(ctx, "restart replication", func() error {
		return workflow.ExecuteActivity(summarize(quick(ctx), "replicas follow "+f.plan.OldPrimary.Name+" again"), a.RestartReplication, f.plan).Get(ctx, nil)
	})
}

func (f *failover) publishAndVerify(ctx workflow.Context) error {
	if err := f.publishTopology(ctx); err != nil {
		return err
	}
	return f.verifyRouting(ctx)
}

// publishThenReparentAndVerify is the order before "reparent-beside-publish".
func (f *failover) publishThenReparentAndVerify(ctx workflow.Context) error {
	if err := f.publishTopology(ctx); err != nil {
		return err
	}
	// Routing now moves to the new primary.
	if f.parallel {
		if err := both(ctx, f.reparentReplicas, f.verifyRouting); err != nil {
			return err
		}
	} else {
		if err := f.reparentReplicas(ctx); err != nil {
			return err
		}
		if err := f.verifyRouting(ctx); err != nil {
			return err
		}
	}
	return nil
}

func (f *failover) waitAndPromote(ctx workflow.Context) error {
	if err := f.waitRelayLog(ctx); err != nil {
		return err
	}
	return f.promoteCandidate(ctx)
}

// both runs two steps at once and waits for both; it returns their errors together.
func both(ctx workflow.Context, a, b func(workflow.Context) error) error {
	var errA error
	wg := workflow.NewWaitGroup(ctx)
	wg.Add(1)
	workflow.Go(ctx, func(gctx workflow.Context) {
		defer wg.Done()
		errA = a(gctx)
	})
	errB := b(ctx)
	wg.Wait(ctx)
	return errors.Join(errA, errB)
}

func (f *failover) confirmPrimaryDead(ctx workflow.Context) error {
	return f.t.do(ctx, "confirm primary dead", func() error {
		err := workflow.ExecuteLocalActivity(local(ctx, 5*time.Second), a.ConfirmPrimaryDead,
			activities.ConfirmInput{Cluster: f.in.Cluster, Primary: f.in.DeadPrimary, Force: f.in.Force, DeferProbe: f.probeBeside}).Get(ctx, &f.confirm)
		f.res.From, f.res.Reason = f.confirm.Primary.Name, f.confirm.Why
		workflow.GetLogger(ctx).Info("confirm", "cluster", f.in.Cluster, "proceed", f.confirm.Proceed, "why", f.confirm.Why)
		return err
	})
}

func (f *failover) chooseCandidate(ctx workflow.Context) error {
	return f.t.do(ctx, "choose candidate", func() error {
		err := workflow.ExecuteLocalActivity(local(ctx, 30*time.Second), a.ChooseCandidate, f.confirm).Get(ctx, &f.plan)
		if err != nil {
			return err
		}
		f.res.To, f.res.Reason = f.plan.Candidate.Name, f.plan.Reason
		workflow.SetCurrentDetails(ctx, fmt.Sprintf("**Unplanned failover** of %s: %s died -> %s at epoch %d\n\nCandidate: %s\n\nStarted by %s. %s",
			f.in.Cluster, f.plan.OldPrimary.Name, f.plan.Candidate.Name, f.plan.Epoch, f.plan.Reason, f.in.RequestedBy, f.in.Evidence))
		return workflow.UpsertTypedSearchAttributes(ctx,
			SAOldPrimary.ValueSet(f.plan.OldPrimary.Name), SANewPrimary.ValueSet(f.plan.Candidate.Name))
	})
}

func (f *failover) waitRelayLog(ctx workflow.Context) error {
	return f.t.do(ctx, "wait for relay log", func() error {
		return workflow.ExecuteActivity(summarize(waiting(ctx, 2*time.Minute), f.plan.Candidate.Name+" applies its relay log"), a.WaitRelayLog, f.plan).Get(ctx, nil)
	})
}

func (f *failover) fenceOldPrimary(ctx workflow.Context) error {
	return f.t.do(ctx, "fence old primary", func() error {
		err := workflow.ExecuteActivity(summarize(quick(ctx), "fence "+f.plan.OldPrimary.Name+" if it answers"), a.FenceOldPrimary, f.plan).Get(ctx, &f.fence)
		if f.fence.Answered {
			workflow.GetLogger(ctx).Warn("old primary answered during the failover; it is now read-only and will be evicted",
				"cluster", f.in.Cluster, "node", f.plan.OldPrimary.Name)
		}
		return err
	})
}

func (f *failover) promoteCandidate(ctx workflow.Context) error {
	return f.t.do(ctx, "promote candidate", func() error {
		return workflow.ExecuteActivity(summarize(quick(ctx), "promote "+f.plan.Candidate.Name), a.PromoteCandidate, activities.PromoteInput{Plan: f.plan}).Get(ctx, nil)
	})
}

func (f *failover) publishTopology(ctx workflow.Context) error {
	return f.t.do(ctx, "publish topology", func() error {
		in := activities.PublishInput{
			Cluster: f.in.Cluster, Epoch: f.plan.Epoch, EpochIndex: f.plan.EpochIndex,
			Primary: f.plan.Candidate, Replicas: f.plan.Others,
			Evict: []topology.Eviction{{Node: f.plan.OldPrimary, Reason: "primary died: " + f.confirm.Why}},
		}
		var out activities.PublishResult
		summary := "Consul: primary is " + f.plan.Candidate.Name + ", " + f.plan.OldPrimary.Name + " evicted"
		err := workflow.ExecuteActivity(summarize(publishing(ctx), summary), a.PublishTopology, in).Get(ctx, &out)
		// The candidate is promoted and the old primary fenced: there is no way back, and
		// no split brain while Consul still names the old one. Wait for Consul, however long.
		for err != nil && retryable(err) {
			workflow.GetLogger(ctx).Error("Consul does not accept the new topology; waiting for it", "error", err,
				"operator", fmt.Sprintf("%s is promoted and writable, %s is fenced; HAProxy still routes to %s, so writes fail "+
					"until Consul answers. Restore Consul: this failover then publishes and finishes on its own.",
					f.plan.Candidate.Name, f.plan.OldPrimary.Name, f.plan.OldPrimary.Name))
			f.t.note(ctx, "publish topology", "waiting for Consul")
			if serr := workflow.Sleep(ctx, consulRetryEvery); serr != nil {
				return serr
			}
			err = workflow.ExecuteActivity(summarize(publishing(ctx), summary+" (Consul was unreachable)"), a.PublishTopology, in).Get(ctx, &out)
		}
		f.res.Epoch = out.Epoch
		return err
	})
}

func (f *failover) reparentReplicas(ctx workflow.Context) error {
	return f.t.do(ctx, "reparent replicas", func() error {
		futures := make([]workflow.Future, len(f.plan.Others))
		for i, r := range f.plan.Others {
			futures[i] = workflow.ExecuteActivity(summarize(waiting(ctx, time.Minute), r.Name+" replicates from "+f.plan.Candidate.Name), a.ReparentReplica, activities.ReparentInput{
				Cluster: f.in.Cluster, Node: r, Primary: f.plan.Candidate})
		}
		for i, fu := range futures {
			if err := fu.Get(ctx, nil); err != nil {
				return fmt.Errorf("reparent %s: %w", f.plan.Others[i].Name, err)
			}
		}
		return nil
	})
}

func (f *failover) verifyRouting(ctx workflow.Context) error {
	return f.t.do(ctx, "verify routing", func() error {
		return workflow.ExecuteActivity(summarize(waiting(ctx, time.Minute), "every HAProxy reaches "+f.plan.Candidate.Name), a.VerifyRouting, activities.VerifyInput{
			Cluster: f.in.Cluster, Primary: f.plan.Candidate.Name, ServerID: f.plan.Candidate.ServerID}).Get(ctx, nil)
	})
}

func (f *failover) restartHeartbeats(ctx workflow.Context) error {
	return f.t.do(ctx, "restart heartbeats", func() error {
		return workflow.ExecuteActivity(summarize(waiting(ctx, time.Minute), "heartbeats fresh on "+f.plan.Candidate.Name), a.RestartHeartbeats, activities.HeartbeatInput{
			Cluster: f.in.Cluster, Primary: f.plan.Candidate, Replicas: f.plan.Others}).Get(ctx, nil)
	})
}

func (f *failover) evictNode(ctx workflow.Context) error {
	return f.t.do(ctx, "evict crashed node", func() error {
		return workflow.ExecuteActivity(summarize(quick(ctx), "record "+f.plan.OldPrimary.Name+" as evicted"), a.EvictNode, activities.EvictInput{
			Cluster: f.in.Cluster, Node: f.plan.OldPrimary, NewPrimary: f.plan.Candidate, Epoch: f.res.Epoch,
			Reason: "primary died: " + f.confirm.Why, GTIDs: f.fence.GTIDs}).Get(ctx, nil)
	})
}

func (f *failover) recordResult(ctx workflow.Context) error {
	return f.t.do(ctx, "record result", func() error {
		return workflow.ExecuteActivity(summarize(quick(ctx), "record the result"), a.RecordResult, f.in.Cluster, record(ctx, "unplanned", f.plan, f.res.Epoch, f.t)).Get(ctx, nil)
	})
}

// record is the Consul record of a finished switchover or failover.
func record(ctx workflow.Context, kind string, plan activities.Plan, epoch uint64, t *tracker) topology.Record {
	steps := map[string]string{}
	for _, st := range t.steps {
		steps[st.Name] = st.Duration.String()
	}
	return topology.Record{Kind: kind, WorkflowID: workflow.GetInfo(ctx).WorkflowExecution.ID,
		From: plan.OldPrimary.Name, To: plan.Candidate.Name, Epoch: epoch, Started: workflow.GetInfo(ctx).WorkflowStartTime,
		At: workflow.Now(ctx), Steps: steps}
}
