package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/baton-db/baton/activities"
	"github.com/baton-db/baton/internal/topology"
	"github.com/baton-db/baton/workflows"
)

// direct runs the switchover's steps as plain function calls, in the workflow's order.
func direct(a *activities.Activities) (total, blocked time.Duration, err error) {
	ctx := context.Background()
	start := time.Now()
	plan, err := a.CheckPreconditions(ctx, activities.CheckInput{Cluster: "demo"})
	if err != nil {
		return 0, 0, err
	}
	if _, err = a.CatchUpReplicas(ctx, plan); err != nil {
		return 0, 0, err
	}
	demoteAt := time.Now()
	d, err := a.DemotePrimary(ctx, plan)
	if err != nil {
		return 0, 0, err
	}
	if _, err = a.PromoteCandidate(ctx, activities.PromoteInput{Plan: plan, GTIDs: d.GTIDs}); err != nil {
		return 0, 0, err
	}
	replicas := append([]topology.Node{plan.OldPrimary}, plan.Others...)
	pub, err := a.PublishTopology(ctx, activities.PublishInput{Cluster: "demo", Epoch: plan.Epoch, EpochIndex: plan.EpochIndex,
		Primary: plan.Candidate, Replicas: replicas})
	if err != nil {
		return 0, 0, err
	}
	blocked = time.Since(demoteAt)
	if _, err = a.ReparentOldPrimary(ctx, activities.ReparentInput{Cluster: "demo", Node: plan.OldPrimary, Primary: plan.Candidate}); err != nil {
		return 0, 0, err
	}
	if _, err = a.VerifyRouting(ctx, activities.VerifyInput{Cluster: "demo", Primary: plan.Candidate.Name,
		ServerID: plan.Candidate.ServerID, Fence: []topology.Node{plan.OldPrimary}}); err != nil {
		return 0, 0, err
	}
	if _, err = a.RestartHeartbeats(ctx, activities.HeartbeatInput{Cluster: "demo", Primary: plan.Candidate, Replicas: replicas}); err != nil {
		return 0, 0, err
	}
	_, err = a.RecordResult(ctx, "demo", topology.Record{Kind: "planned", From: plan.OldPrimary.Name, To: plan.Candidate.Name,
		Epoch: pub.Epoch, Started: start, At: time.Now()})
	return time.Since(start), blocked, err
}

// viaWorkflow runs the same switchover as the workflow, timed from the client.
func viaWorkflow() (total, blocked time.Duration, err error) {
	start := time.Now()
	run, err := tc.ExecuteWorkflow(context.Background(), client.StartWorkflowOptions{
		WorkflowTaskTimeout: workflows.TaskTimeout,
		ID:                  workflows.WorkflowID("demo"), TaskQueue: cfg.Temporal.TaskQueue,
		WorkflowIDConflictPolicy: enums.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
	}, workflows.PlannedSwitchover, workflows.SwitchoverInput{Cluster: "demo", RequestedBy: "bench"})
	if err != nil {
		return 0, 0, err
	}
	var r workflows.Result
	if err := run.Get(context.Background(), &r); err != nil {
		return 0, 0, err
	}
	total = time.Since(start)
	blocked = stepEnd(r, "publish topology").Sub(stepStart(r, "demote primary"))
	return total, blocked, nil
}

// directOnce runs the plain calls with connections of their own.
func directOnce() (total, blocked time.Duration, err error) {
	a := activities.New(cfg, store)
	defer activities.Local{Activities: a}.Close()
	return direct(a)
}

func stepStart(r workflows.Result, name string) time.Time {
	for _, s := range r.Steps {
		if s.Name == name {
			return s.Start
		}
	}
	return time.Time{}
}

func benchOverhead(pairs int) {
	var dTotal, wTotal, dBlocked, wBlocked stats
	for i := 0; i < pairs; i++ {
		time.Sleep(time.Second)
		// Connections of their own each time: the workflow's demotion ends the client
		// sessions on the node it demotes, these included, and a plain call is not retried.
		t, b, err := directOnce()
		if err != nil {
			// A plain call is not retried inside; a session ended under it ("invalid
			// connection") fails it before it changed anything. Said, then tried once more.
			fmt.Fprintf(os.Stderr, "overhead pair %d: direct switchover failed (%v); once more with new connections\n", i+1, err)
			time.Sleep(time.Second)
			t, b, err = directOnce()
		}
		if err != nil {
			fatal("direct switchover: %v", err)
		}
		dTotal, dBlocked = append(dTotal, t), append(dBlocked, b)
		time.Sleep(time.Second)
		t, b, err = viaWorkflow()
		if err != nil {
			fatal("workflow switchover: %v", err)
		}
		wTotal, wBlocked = append(wTotal, t), append(wBlocked, b)
		fmt.Fprintf(os.Stderr, "overhead pair %d: direct %s (blocked %s), workflow %s (blocked %s)\n", i+1,
			dTotal[i].Round(time.Millisecond), dBlocked[i].Round(time.Millisecond), t.Round(time.Millisecond), b.Round(time.Millisecond))
	}
	med := func(s stats) time.Duration { c := append(stats(nil), s...); return median(c) }
	fmt.Printf("## Temporal overhead of a switchover\n\nThe same steps, as plain function calls in one process and as the `PlannedSwitchover` workflow on the worker, alternately (%d each).\n\n", pairs)
	fmt.Printf("| figure | plain calls (p50) | workflow (p50) | overhead | ratio |\n|---|---|---|---|---|\n")
	for _, row := range []struct {
		name string
		d, w stats
	}{{"whole switchover", dTotal, wTotal}, {"write-blocked stretch (demote → publish)", dBlocked, wBlocked}} {
		d, w := med(row.d), med(row.w)
		fmt.Printf("| %s | %s | %s | %s | %.2f |\n", row.name, d.Round(time.Millisecond), w.Round(time.Millisecond),
			(w - d).Round(time.Millisecond), float64(w)/float64(d))
	}
	fmt.Println()
}

func median(s stats) time.Duration {
	if len(s) == 0 {
		return 0
	}
	c := append(stats(nil), s...)
	for i := range c {
		for j := i + 1; j < len(c); j++ {
			if c[j] < c[i] {
				c[i], c[j] = c[j], c[i]
			}
		}
	}
	return c[len(c)/2]
}
