package workflows

import "go.temporal.io/sdk/workflow"

// runBeforeProbeBesideStop is the failover's step order before version 1 of
// "probe-beside-stop": the probe of the primary was part of the confirmation, and the
// relay-log wait, the fence and the promotion ran one after another ("parallel-fence-and-
// verify" 1 ran the fence beside them), then the publish, then the reparenting
// ("reparent-beside-publish" 1 ran it beside the publish). It is kept, in this one place,
// so that recorded histories replay; every run started today takes run().
func (f *failover) runBeforeProbeBesideStop(ctx workflow.Context) error {
	if err := f.confirmPrimaryDead(ctx); err != nil || !f.confirm.Proceed {
		if err == nil {
			err = noOp{f.confirm.Why}
		}
		return err
	}
	if err := f.chooseCandidate(ctx); err != nil {
		return err
	}
	f.parallel = workflow.GetVersion(ctx, "parallel-fence-and-verify", workflow.DefaultVersion, 1) == 1
	if f.parallel {
		if err := both(ctx, f.fenceOldPrimary, f.waitAndPromote); err != nil {
			return err
		}
	} else {
		for _, s := range []func(workflow.Context) error{f.waitRelayLog, f.fenceOldPrimary, f.promoteCandidate} {
			if err := s(ctx); err != nil {
				return err
			}
		}
	}
	var err error
	if workflow.GetVersion(ctx, "reparent-beside-publish", workflow.DefaultVersion, 1) == 1 {
		err = both(ctx, f.reparentReplicas, f.publishAndVerify)
	} else {
		err = f.publishThenReparentAndVerify(ctx)
	}
	if err != nil {
		return err
	}
	for _, s := range []func(workflow.Context) error{f.restartHeartbeats, f.evictNode, f.recordResult} {
		if err := s(ctx); err != nil {
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

func (f *failover) publishThenReparentAndVerify(ctx workflow.Context) error {
	if err := f.publishTopology(ctx); err != nil {
		return err
	}
	if f.parallel {
		return both(ctx, f.reparentReplicas, f.verifyRouting)
	}
	if err := f.reparentReplicas(ctx); err != nil {
		return err
	}
	return f.verifyRouting(ctx)
}
