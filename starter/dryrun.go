package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"text/tabwriter"

	"go.temporal.io/sdk/temporal"

	"github.com/baton-db/baton/activities"
	"github.com/baton-db/baton/internal/config"
	"github.com/baton-db/baton/workflows"
)

// The dry runs run the read-only steps on the worker (the Inspect workflow), which holds
// the database accounts and the Consul token; they change nothing.
func dryRunSwitchover(ctx context.Context, cfg *config.Config, in activities.CheckInput, w io.Writer) error {
	c, err := dial(ctx, cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	res, err := inspect(ctx, cfg, c, workflows.InspectInput{What: workflows.InspectSwitchover, Cluster: in.Cluster, Candidate: in.Candidate})
	if err != nil {
		return err
	}
	plan, err := res.Switchover.Plan, refusalError(res.Switchover.Refusal)
	fmt.Fprintf(w, "DRY RUN: planned switchover of %s (nothing will be changed)\n\n", in.Cluster)
	printPlan(w, plan)
	fmt.Fprintln(w, "\nchecks:")
	for _, c := range plan.Checks {
		mark := "PASS"
		if !c.OK {
			mark = "FAIL"
		}
		fmt.Fprintf(w, "  %s  %-32s %s\n", mark, c.Name, c.Detail)
	}
	if plan.Approval.Required {
		fmt.Fprintf(w, "\napproval: required (%s) from one of %v, within %s\n", plan.Approval.Reason, plan.Approval.Approvers, plan.Approval.Timeout)
	}
	fmt.Fprintln(w, "\nsteps that would run:")
	steps := []string{"CheckPreconditions", "CatchUpReplicas", "DemotePrimary", "PromoteCandidate", "PublishTopology",
		"ReparentOldPrimary", "VerifyRouting", "RestartHeartbeats", "RecordResult"}
	if plan.Approval.Required {
		steps = append(steps[:1], append([]string{"(wait for approval)"}, steps[1:]...)...)
	}
	for i, s := range steps {
		fmt.Fprintf(w, "  %d. %s\n", i+1, s)
	}
	if err != nil {
		return fmt.Errorf("the switchover would be refused: %w", err)
	}
	return nil
}

func dryRunFailover(ctx context.Context, cfg *config.Config, cluster string, force, alive bool, w io.Writer) error {
	c, err := dial(ctx, cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	fmt.Fprintf(w, "DRY RUN: unplanned failover of %s (nothing will be changed)\n\n", cluster)
	res, err := inspect(ctx, cfg, c, workflows.InspectInput{What: workflows.InspectFailover, Cluster: cluster, Force: force, PrimaryAlive: alive})
	if err != nil {
		return err
	}
	f := res.Failover
	conf := f.Confirm
	fmt.Fprintf(w, "confirm: %s\n", conf.Why)
	if conf.Proceed && f.Probe != nil {
		// The workflow probes the primary beside the relay-log wait; a dry run asks now.
		probe := f.Probe
		fmt.Fprintf(w, "probe:   %s\n", probe.Why)
		if probe.Answers && alive {
			fmt.Fprintln(w, "  --primary-alive: it would be fenced first (read-only, sessions ended), the replicas given catchup_timeout to apply\n"+
				"  what it executed, and only a replica holding all of it promoted (else it is made writable again)")
		} else if probe.Answers {
			conf.Proceed = false
			fmt.Fprintln(w, "  replication would be restarted and nothing else changed")
		}
	}
	if !conf.Proceed {
		fmt.Fprintln(w, "  the failover would end here as a no-op; the candidate it would choose otherwise:")
	}
	plan, err := f.Candidate.Plan, refusalError(f.Candidate.Refusal)
	printPlan(w, plan)
	fmt.Fprintln(w, "\nsteps that would run:")
	for i, s := range []string{"ConfirmPrimaryDead", "ChooseCandidate", "WaitRelayLog (ProbePrimary beside it)", "FenceOldPrimary", "PromoteCandidate",
		"PublishTopology (evicting the old primary)", "ReparentReplica (each)", "VerifyRouting", "RestartHeartbeats", "EvictNode", "RecordResult"} {
		fmt.Fprintf(w, "  %d. %s\n", i+1, s)
	}
	return err
}

// refusalError is the error a preview carried in its result, with its type, so that
// exitCode maps it as it maps the step's own error.
func refusalError(r *activities.Refusal) error {
	if r == nil {
		return nil
	}
	if r.Type == "" {
		return errors.New(r.Message)
	}
	return temporal.NewNonRetryableApplicationError(r.Message, r.Type, nil)
}

func printPlan(w io.Writer, p activities.Plan) {
	fmt.Fprintf(w, "primary:   %s (%s), epoch %d\n", p.OldPrimary.Name, p.OldPrimary.Addr(), p.Epoch)
	if p.Candidate.Name != "" {
		fmt.Fprintf(w, "candidate: %s (%s): %s\n", p.Candidate.Name, p.Candidate.Addr(), p.Reason)
	}
	fmt.Fprintln(w, "\nreplicas:")
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  NODE\tIO\tSQL\tLAG\tGTIDS\tVERDICT")
	for _, r := range p.Replicas {
		lag := "unknown"
		if r.LagMS >= 0 {
			lag = fmt.Sprintf("%dms", r.LagMS)
		}
		fmt.Fprintf(tw, "  %s\t%s\t%v\t%s\t%s\t%s\n", r.Node.Name, r.IO, r.SQL, lag, r.GTIDs, r.Why)
	}
	_ = tw.Flush()
}

var stdout io.Writer = os.Stdout
