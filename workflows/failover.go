package workflows

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/baton-db/baton/activities"
	"github.com/baton-db/baton/internal/config"
	"github.com/baton-db/baton/internal/start"
	"github.com/baton-db/baton/internal/topology"
)

// FailoverInput asks for an unplanned failover. It carries no secrets.
type FailoverInput = start.FailoverInput

// UnplannedFailover replaces a dead primary, docs/runbook.md §3.
func UnplannedFailover(ctx workflow.Context, in FailoverInput) (Result, error) {
	f := &failover{in: in, t: newTracker(ctx), res: Result{Cluster: in.Cluster, Kind: "unplanned"}}
	_ = workflow.UpsertTypedSearchAttributes(ctx, SACluster.ValueSet(in.Cluster), SAKind.ValueSet("unplanned"))
	var err error
	if workflow.GetVersion(ctx, "probe-beside-stop", workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		err = f.runBeforeProbeBesideStop(ctx) // failover_legacy.go
	} else {
		err = f.run(ctx)
	}
	var nop noOp
	var veto vetoed
	switch {
	case errors.As(err, &nop):
		f.res.Reason = nop.why
		setOutcome(ctx, &f.res, "no-op")
	case errors.As(err, &veto):
		f.res.Reason = veto.why
		f.postHooks(ctx, config.PostUnsuccessfulFailover, err)
		setOutcome(ctx, &f.res, "vetoed")
	case err != nil:
		f.postHooks(ctx, config.PostUnsuccessfulFailover, err)
		setOutcome(ctx, &f.res, "failed")
	default:
		f.postHooks(ctx, config.PostFailover, nil)
		setOutcome(ctx, &f.res, "succeeded")
	}
	f.res.Steps = f.t.steps
	if veto.why != "" || nop.why != "" {
		return f.res, nil
	}
	return f.res, err
}

// postHooks runs the hooks after a failover, on a disconnected context: a cancelled run
// still reports. Their failures are in the result; they change nothing.
func (f *failover) postHooks(ctx workflow.Context, p config.HookPoint, cause error) {
	if !hasHooks(f.confirm.Hooks, p) {
		return
	}
	dctx, _ := workflow.NewDisconnectedContext(ctx)
	ev := f.event()
	if cause != nil {
		ev.Error = rootCause(cause)
	}
	ev.HookProblems = strings.Join(f.res.HookProblems, "\n") // the pre-failover hooks passed over
	ev.LeftOut = strings.Join(f.res.LeftOut, "\n")
	_ = runHooks(dctx, f.t, f.confirm.Hooks, p, ev, &f.res)
}

// preHooks runs the pre-failover hooks once, beside the relay-log wait: a hook that
// hangs costs the failover no more than its timeout.
func (f *failover) preHooks(ctx workflow.Context) error {
	if f.preHooksRan {
		return nil
	}
	f.preHooksRan = true
	return runHooks(ctx, f.t, f.confirm.Hooks, config.PreFailover, f.event(), &f.res)
}

// event is what the failover's hooks receive.
func (f *failover) event() activities.Event {
	epoch := f.plan.Epoch
	if f.res.Epoch != 0 {
		epoch = f.res.Epoch
	}
	return activities.Event{Cluster: f.in.Cluster, Kind: "unplanned", OldPrimary: f.confirm.Primary.Name, NewPrimary: f.plan.Candidate.Name,
		Epoch: epoch, Reason: f.confirm.Why, RequestedBy: f.in.RequestedBy}
}

// run is the failover, step by step. The critical path is confirm → choose → wait for the
// relay log → promote → publish; the rest finishes the job before the run completes.
func (f *failover) run(ctx workflow.Context) error {
	// From version 1 of "local-publish" the publish's first round runs as a local activity:
	// no server round trip between the promotion and the Consul write. The promotion stays
	// an activity, recorded once done: a local one lost with its worker would run again, and
	// it reads Consul, which may be what is down.
	f.localPublish = workflow.GetVersion(ctx, "local-publish", workflow.DefaultVersion, 1) == 1
	// From version 1 of "lease" the failover promotes only once the old primary is known
	// to take no writes (stopOldPrimary).
	f.lease = workflow.GetVersion(ctx, "lease", workflow.DefaultVersion, 1) == 1
	// From version 1 of "stop-beside-fence" the lease is revoked beside the fence, once the
	// probe has found no answer, instead of after the relay-log wait (probeThenStop).
	f.stopBeside = f.lease && workflow.GetVersion(ctx, "stop-beside-fence", workflow.DefaultVersion, 1) == 1
	if err := f.confirmPrimaryDead(ctx); err != nil {
		return err
	}
	if !f.confirm.Proceed {
		return noOp{f.confirm.Why}
	}
	if f.in.PrimaryAlive {
		if err := f.demoteLivePrimary(ctx); err != nil {
			return f.reopenLivePrimary(ctx, err)
		}
	}
	if err := f.chooseAndPromote(ctx); err != nil {
		return f.reopenLivePrimary(ctx, err)
	}
	// Routing moves to the new primary while the other replicas follow it, so it has a
	// semi-sync replica by the time the first writes arrive.
	if err := both(ctx, f.reparentReplicas, f.publishAndVerify); err != nil {
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

// chooseAndPromote chooses a candidate, stops replication everywhere and waits for the
// candidate's relay log while the primary is probed once more, then promotes. A candidate
// lost on the way is replaced by the next best live replica. A failover that ends here has
// promoted nobody: it restarts the replication it stopped.
func (f *failover) chooseAndPromote(ctx workflow.Context) error {
	for {
		if err := f.chooseCandidate(ctx); err != nil {
			return f.abort(ctx, err)
		}
		wait := f.waitRelayLog
		if hasHooks(f.confirm.Hooks, config.PreFailover) && !f.preHooksRan {
			wait = func(ctx workflow.Context) error { return both(ctx, f.preHooks, f.waitRelayLog) }
		}
		probe := f.probeThenFence
		if f.stopBeside && f.stopped.How == "" {
			probe = f.probeThenStop
		}
		err := both(ctx, probe, wait)
		if f.probe.Answers { // it stalled and came back: put replication back, change nothing
			return f.abort(ctx, noOp{f.probe.Why})
		}
		if err == nil && f.lease && f.stopped.How == "" {
			err = f.stopOldPrimary(ctx)
		}
		if err == nil {
			err = f.promoteCandidate(ctx)
		}
		if err == nil {
			return nil
		}
		if !isType(err, activities.ErrCandidateLost) || len(f.live()) < 2 {
			return f.abort(ctx, err)
		}
		workflow.GetLogger(ctx).Warn("candidate lost during the failover; choosing again among the live replicas",
			"cluster", f.in.Cluster, "candidate", f.plan.Candidate.Name, "error", err)
		f.lost = append(f.lost, f.plan.Candidate)
		for _, r := range f.plan.Replicas {
			if r.Node.Name == f.plan.Candidate.Name && r.GTIDs != "" {
				if f.lostGTIDs == nil {
					f.lostGTIDs = map[string]string{}
				}
				f.lostGTIDs[r.Node.Name] = r.GTIDs
			}
		}
	}
}

// abort ends a failover that promoted nobody: the replicas follow the old primary again
// (it may come back), and the cause is returned with whatever the restart reports.
func (f *failover) abort(ctx workflow.Context, cause error) error {
	if f.plan.Candidate.Name == "" {
		return cause // nothing was stopped yet
	}
	dctx, _ := workflow.NewDisconnectedContext(ctx)
	if err := f.restartReplication(dctx); err != nil {
		return errors.Join(cause, err)
	}
	return cause
}

// noOp ends a failover that had nothing to do; it is an outcome, not a failure.
type noOp struct{ why string }

func (e noOp) Error() string { return e.why }

type failover struct {
	in      FailoverInput
	t       *tracker
	res     Result
	confirm activities.ConfirmResult
	plan    activities.Plan
	probe   activities.ProbeResult
	fence   activities.FenceResult
	stopped activities.StopResult
	// alive is what DemoteLivePrimary did to a primary that still answered.
	alive activities.DemoteLiveResult
	// lease: version 1 of "lease" (stopOldPrimary before the promotion).
	lease bool
	// stopBeside: version 1 of "stop-beside-fence".
	stopBeside bool
	// lost are candidates that died during this failover; lostGTIDs what each was last
	// seen to hold.
	lost      []topology.Node
	lostGTIDs map[string]string
	// notReparented are replicas that died after they were chosen to follow the candidate.
	notReparented []string
	// rec is the record published with the topology (the anti-flap period starts there).
	rec topology.Record
	// localPublish runs the publish's first round as a local activity.
	localPublish bool
	// parallel: version 1 of "parallel-fence-and-verify" (failover_legacy.go).
	parallel bool
	// preHooksRan: the pre-failover hooks ran (a second candidate does not run them again).
	preHooksRan bool
}

// live is the confirmed replica set less the candidates lost on the way.
func (f *failover) live() []topology.Node {
	return slices.DeleteFunc(slices.Clone(f.confirm.Replicas), func(n topology.Node) bool {
		return slices.ContainsFunc(f.lost, func(l topology.Node) bool { return l.Name == n.Name })
	})
}

func (f *failover) confirmPrimaryDead(ctx workflow.Context) error {
	err := f.t.run(ctx, step{name: "confirm primary dead", opts: readFor(5 * time.Second), local: true,
		activity: a.ConfirmPrimaryDead, args: args(activities.ConfirmInput{Cluster: f.in.Cluster, Primary: f.in.DeadPrimary, Force: f.in.Force, DetectedAt: f.in.DetectedAt}),
		out: &f.confirm})
	f.res.From, f.res.Reason = f.confirm.Primary.Name, f.confirm.Why
	workflow.GetLogger(ctx).Info("confirm", "cluster", f.in.Cluster, "proceed", f.confirm.Proceed, "why", f.confirm.Why)
	return err
}

// demoteLivePrimary fences a primary that still answers (`--primary-alive`) and waits for
// the replicas to apply what it executed; the candidate must then hold all of it.
func (f *failover) demoteLivePrimary(ctx workflow.Context) error {
	err := f.t.run(ctx, step{name: "demote live primary", opts: waitingFor(2 * time.Minute),
		summary:  "fence " + f.confirm.Primary.Name + ", which still answers, and let the replicas apply what it executed",
		activity: a.DemoteLivePrimary, args: args(f.liveInput()), out: &f.alive})
	f.confirm.PrimaryGTIDs = f.alive.GTIDs
	if f.alive.Answered {
		f.confirm.Why = fmt.Sprintf("%s answered and was fenced by a human's `--force --primary-alive` (%d sessions ended)", f.confirm.Primary.Name, f.alive.Ended)
	}
	return err
}

// reopenLivePrimary makes a primary fenced alive writable again when the failover ends
// without a promotion (and only while Consul names it and its lease stands).
func (f *failover) reopenLivePrimary(ctx workflow.Context, cause error) error {
	if !f.alive.Answered {
		return cause
	}
	dctx, _ := workflow.NewDisconnectedContext(ctx)
	var msg string
	if err := f.t.run(dctx, step{name: "reopen live primary", opts: quick, summary: "make " + f.confirm.Primary.Name + " writable again",
		activity: a.ReopenLivePrimary, args: args(f.liveInput()), out: &msg}); err != nil {
		return errors.Join(cause, err)
	}
	f.res.LeftOut = append(f.res.LeftOut, msg)
	return cause
}

func (f *failover) liveInput() activities.DemoteLiveInput {
	return activities.DemoteLiveInput{Cluster: f.in.Cluster, Primary: f.confirm.Primary, Replicas: f.confirm.Replicas}
}

func (f *failover) chooseCandidate(ctx workflow.Context) error {
	in := f.confirm
	in.Replicas, in.Lost, in.LostGTIDs = f.live(), f.lost, f.lostGTIDs
	if err := f.t.run(ctx, step{name: "choose candidate", opts: readFor(2 * time.Minute), local: true,
		activity: a.ChooseCandidate, args: args(in), out: &f.plan}); err != nil {
		return err
	}
	f.res.To, f.res.Reason, f.res.PassedOver = f.plan.Candidate.Name, f.plan.Reason, passedOver(f.plan.Replicas)
	f.res.LeftOut = append(f.res.LeftOut, f.plan.LeftBehind...)
	workflow.SetCurrentDetails(ctx, fmt.Sprintf("**Unplanned failover** of %s: %s died -> %s at epoch %d\n\nCandidate: %s\n\nStarted by %s. %s",
		f.in.Cluster, f.plan.OldPrimary.Name, f.plan.Candidate.Name, f.plan.Epoch, f.plan.Reason, f.in.RequestedBy, f.in.Evidence))
	return workflow.UpsertTypedSearchAttributes(ctx,
		SAOldPrimary.ValueSet(f.plan.OldPrimary.Name), SANewPrimary.ValueSet(f.plan.Candidate.Name))
}

// probeThenFence asks the old primary once more; if it still does not answer, it is fenced
// (best effort) in case it comes back.
func (f *failover) probeThenFence(ctx workflow.Context) error {
	err := f.t.run(ctx, step{name: "probe primary", opts: readFor(5 * time.Second), local: true,
		activity: a.ProbePrimary, args: args(f.plan), out: &f.probe})
	if err != nil || f.probe.Answers {
		return err
	}
	return f.fenceOldPrimary(ctx)
}

// probeThenStop is probeThenFence with the failover rule beside the fence when the probe
// reached nobody: a silent old primary's fence waits out its connect timeout, while its
// agent answers the lease's revocation sooner. A fence that finds it gone (refused) or fences it settles the rule
// itself, and the lease's step is then cancelled. StopOldPrimary waits for the candidate's
// IO thread to end before it counts the lease's expiry, so it needs no relay-log wait first.
func (f *failover) probeThenStop(ctx workflow.Context) error {
	err := f.t.run(ctx, step{name: "probe primary", opts: readFor(5 * time.Second), local: true,
		activity: a.ProbePrimary, args: args(f.plan), out: &f.probe})
	if err != nil || f.probe.Answers {
		return err
	}
	if f.probe.Reached { // it answers, read-only or restarted: fenced by Baton, its lease left alone
		return f.fenceOldPrimary(ctx)
	}
	sctx, cancel := workflow.WithCancel(ctx)
	defer cancel()
	fenced := false
	return both(ctx, func(ctx workflow.Context) error {
		err := f.fenceOldPrimary(ctx)
		fenced = true
		if activities.StoppedWithoutLease(f.fence) != "" {
			cancel()
		}
		return err
	}, func(ctx workflow.Context) error {
		return f.t.do(ctx, "stop old primary", func() error {
			o := workflow.GetActivityOptions(waitingFor(time.Minute)(sctx))
			o.Summary = f.plan.OldPrimary.Name + " takes no writes: its lease revoked and answered or expired, unless the fence settles it"
			var out activities.StopResult
			err := workflow.ExecuteActivity(workflow.WithActivityOptions(sctx, o), a.StopOldPrimary,
				activities.StopInput{Plan: f.plan}).Get(sctx, &out)
			if err != nil { // the fence may settle it yet (Consul down, and mysqld gone)
				_ = workflow.Await(ctx, func() bool { return fenced })
			}
			if how := activities.StoppedWithoutLease(f.fence); how != "" && (err != nil || out.How == "") {
				out, err = activities.StopResult{How: how}, nil // the fence settled it; the lease's wait was cancelled
			}
			f.stopped, f.res.OldPrimaryStopped = out, out.How
			return err
		})
	})
}

func (f *failover) waitRelayLog(ctx workflow.Context) error {
	return f.t.run(ctx, step{name: "wait for relay log", opts: waitingFor(2 * time.Minute),
		summary: f.plan.Candidate.Name + " applies its relay log", activity: a.WaitRelayLog, args: args(f.plan)})
}

func (f *failover) fenceOldPrimary(ctx workflow.Context) error {
	err := f.t.run(ctx, step{name: "fence old primary", opts: quick, summary: "fence " + f.plan.OldPrimary.Name + " if it answers",
		activity: a.FenceOldPrimary, args: args(f.plan), out: &f.fence})
	if f.fence.Answered {
		workflow.GetLogger(ctx).Warn("old primary answered during the failover; it is now read-only and will be evicted",
			"cluster", f.in.Cluster, "node", f.plan.OldPrimary.Name)
	}
	return err
}

// stopOldPrimary is the failover rule: nothing is promoted until the old primary is known
// to take no writes (refused, fenced by Baton, or fenced by its agent on the revocation of
// its lease or when it lapsed). It runs here, after the relay-log wait, only when
// probeThenStop did not run it beside the fence.
func (f *failover) stopOldPrimary(ctx workflow.Context) error {
	// From version 1 of "stop-from-fence" an old primary that the fence found gone (refused)
	// or fenced is known stopped here, without the activity's round trip: on a kill -9 that
	// step had nothing to revoke or wait for, and it sat on the critical path.
	if workflow.GetVersion(ctx, "stop-from-fence", workflow.DefaultVersion, 1) == 1 {
		if how := activities.StoppedWithoutLease(f.fence); how != "" {
			return f.t.do(ctx, "stop old primary", func() error {
				f.stopped, f.res.OldPrimaryStopped = activities.StopResult{How: how}, how
				return nil
			})
		}
	}
	err := f.t.run(ctx, step{name: "stop old primary", opts: waitingFor(time.Minute), summary: f.plan.OldPrimary.Name + " takes no writes: refused, fenced, or its lease revoked and answered or expired",
		activity: a.StopOldPrimary, args: args(activities.StopInput{Plan: f.plan, Fence: f.fence}), out: &f.stopped})
	f.res.OldPrimaryStopped = f.stopped.How
	return err
}

func (f *failover) restartReplication(ctx workflow.Context) error {
	return f.t.run(ctx, step{name: "restart replication", opts: quick, summary: "replicas follow " + f.plan.OldPrimary.Name + " again",
		activity: a.RestartReplication, args: args(f.plan)})
}

func (f *failover) promoteCandidate(ctx workflow.Context) error {
	return f.t.run(ctx, step{name: "promote candidate", opts: quick, summary: "promote " + f.plan.Candidate.Name,
		activity: a.PromoteCandidate, args: args(activities.PromoteInput{Plan: f.plan})})
}

func (f *failover) publishAndVerify(ctx workflow.Context) error {
	if err := f.publishTopology(ctx); err != nil {
		return err
	}
	return f.verifyRouting(ctx)
}

// publishTopology names the new primary in Consul, evicts the crashed node (and any
// replica found dead) and starts the anti-flap period, in one transaction. It runs its
// activity itself rather than through step: a first round local to the worker, then
// rounds on the server for as long as Consul refuses (the candidate is writable already).
func (f *failover) publishTopology(ctx workflow.Context) error {
	return f.t.do(ctx, "publish topology", func() error {
		evict := []topology.Eviction{{Node: f.plan.OldPrimary, Reason: "primary died: " + f.confirm.Why}}
		for _, n := range f.plan.Lost {
			evict = append(evict, topology.Eviction{Node: n, Reason: fmt.Sprintf("unreachable during the failover of %s to %s; bring it back with `baton rejoin`",
				f.in.Cluster, f.plan.Candidate.Name)})
		}
		f.rec = record(ctx, "unplanned", f.plan, f.plan.Epoch+1, f.t)
		in := activities.PublishInput{
			Cluster: f.in.Cluster, Epoch: f.plan.Epoch, EpochIndex: f.plan.EpochIndex,
			Primary: f.plan.Candidate, Replicas: f.plan.Others, Evict: evict, Record: &f.rec,
		}
		var out activities.PublishResult
		summary := "Consul: primary is " + f.plan.Candidate.Name + ", " + f.plan.OldPrimary.Name + " evicted"
		var err error
		if f.localPublish { // a Consul that does not answer within 10 s gets the slower rounds below
			err = workflow.ExecuteLocalActivity(publishingHere(ctx, summary), a.PublishTopology, in).Get(ctx, &out)
		}
		if !f.localPublish || err != nil && retryable(err) {
			err = workflow.ExecuteActivity(summarize(publishing(ctx), summary), a.PublishTopology, in).Get(ctx, &out)
		}
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

// reparentReplicas moves every live replica under the new primary. One that died since it
// was chosen is left out and reported, not waited for: the failover has already happened.
// It runs its activities itself rather than through step: one per replica at once, and a
// failure goes into the result (LeftOut) instead of failing the failover.
func (f *failover) reparentReplicas(ctx workflow.Context) error {
	return f.t.do(ctx, "reparent replicas", func() error {
		futures := make([]workflow.Future, len(f.plan.Others))
		for i, r := range f.plan.Others {
			futures[i] = workflow.ExecuteActivity(summarize(waitingFor(time.Minute)(ctx), r.Name+" replicates from "+f.plan.Candidate.Name), a.ReparentReplica,
				activities.ReparentInput{Cluster: f.in.Cluster, Node: r, Primary: f.plan.Candidate})
		}
		for i, fu := range futures {
			if err := fu.Get(ctx, nil); err != nil {
				r := f.plan.Others[i]
				workflow.GetLogger(ctx).Error("replica left out: it could not be reparented", "cluster", f.in.Cluster, "node", r.Name, "error", err)
				f.res.LeftOut = append(f.res.LeftOut, fmt.Sprintf("%s: not reparented (%v); once it answers, run `baton rejoin --cluster %s --host %s`",
					r.Name, rootCause(err), f.in.Cluster, r.Name))
				f.notReparented = append(f.notReparented, r.Name)
			}
		}
		return nil
	})
}

func (f *failover) verifyRouting(ctx workflow.Context) error {
	var out activities.VerifyResult
	err := f.t.run(ctx, step{name: "verify routing", opts: waitingFor(time.Minute), summary: "every HAProxy reaches " + f.plan.Candidate.Name,
		activity: a.VerifyRouting, args: args(activities.VerifyInput{Cluster: f.in.Cluster, Primary: f.plan.Candidate.Name, ServerID: f.plan.Candidate.ServerID}), out: &out})
	f.res.RoutingUnverified = unverified(out)
	return err
}

func (f *failover) restartHeartbeats(ctx workflow.Context) error {
	replicas := slices.DeleteFunc(slices.Clone(f.plan.Others), func(n topology.Node) bool { return slices.Contains(f.notReparented, n.Name) })
	return f.t.run(ctx, step{name: "restart heartbeats", opts: waitingFor(time.Minute), summary: "heartbeats fresh on " + f.plan.Candidate.Name,
		activity: a.RestartHeartbeats, args: args(activities.HeartbeatInput{Cluster: f.in.Cluster, Primary: f.plan.Candidate, Replicas: replicas})})
}

func (f *failover) evictNode(ctx workflow.Context) error {
	return f.t.run(ctx, step{name: "evict crashed node", opts: quick, summary: "record " + f.plan.OldPrimary.Name + " as evicted",
		activity: a.EvictNode, args: args(activities.EvictInput{Cluster: f.in.Cluster, Node: f.plan.OldPrimary, NewPrimary: f.plan.Candidate,
			Epoch: f.res.Epoch, Reason: "primary died: " + f.confirm.Why, GTIDs: f.fence.GTIDs})})
}

// recordResult completes the record published with the topology: its epoch and step timings.
func (f *failover) recordResult(ctx workflow.Context) error {
	rec := record(ctx, "unplanned", f.plan, f.res.Epoch, f.t)
	if !f.rec.At.IsZero() {
		rec.At = f.rec.At
	}
	return f.t.run(ctx, step{name: "record result", opts: quick, summary: "record the result",
		activity: a.RecordResult, args: args(f.in.Cluster, rec)})
}
