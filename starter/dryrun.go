package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"text/tabwriter"

	"github.com/baton-db/baton/activities"
	"github.com/baton-db/baton/internal/app"
	"github.com/baton-db/baton/internal/config"
)

// Runs the read-only steps in this process, not as a workflow: a dry run leaves no trace
// and changes nothing.
func dryRunSwitchover(ctx context.Context, cfg *config.Config, in activities.CheckInput, w io.Writer) error {
	topo, err := app.Topology(cfg)
	if err != nil {
		return err
	}
	a := activities.New(cfg, topo)
	defer activities.Close(a)
	plan, err := a.CheckPreconditions(ctx, in)
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
	topo, err := app.Topology(cfg)
	if err != nil {
		return err
	}
	a := activities.New(cfg, topo)
	defer activities.Close(a)
	fmt.Fprintf(w, "DRY RUN: unplanned failover of %s (nothing will be changed)\n\n", cluster)
	conf, err := a.ConfirmPrimaryDead(ctx, activities.ConfirmInput{Cluster: cluster, Force: force})
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "confirm: %s\n", conf.Why)
	if conf.Proceed {
		// The workflow probes the primary beside the relay-log wait; a dry run asks now.
		probe, perr := a.ProbePrimary(ctx, activities.Plan{Cluster: cluster, OldPrimary: conf.Primary})
		if perr != nil {
			return perr
		}
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
	plan, err := activities.PreviewCandidate(ctx, a, conf)
	printPlan(w, plan)
	fmt.Fprintln(w, "\nsteps that would run:")
	for i, s := range []string{"ConfirmPrimaryDead", "ChooseCandidate", "WaitRelayLog (ProbePrimary beside it)", "FenceOldPrimary", "PromoteCandidate",
		"PublishTopology (evicting the old primary)", "ReparentReplica (each)", "VerifyRouting", "RestartHeartbeats", "EvictNode", "RecordResult"} {
		fmt.Fprintf(w, "  %d. %s\n", i+1, s)
	}
	return err
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
