package workflows

import (
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/baton-db/baton/activities"
)

// AddCluster is `baton cluster add` on the worker, so that the CLI needs only Temporal: the
// worker's accounts prepare and read the servers, its token writes Consul. Started as
// add/<cluster> (start.AddClusterOptions), so a second add of the same name is refused while
// one runs; the seed is create-only, so an existing cluster is never overwritten. Its input
// and result carry names, addresses, zones, settings and who: never a secret.
//
//  1. settings: the worker's config file's section for the cluster, else the defaults with
//     frontends at the next free port pair on every remote HAProxy; then --flavor and --set,
//     validated before anything changes (BadSettings); a cluster Consul has is refused;
//  2. prepare (--init, --attach): the primary opened, the new servers made its replicas;
//  3. discover: the replicas found from the primary, every node checked (CannotOnboard);
//  4. seed: the topology at epoch 1, then the catalog entry (create-only).
//
// A dry run runs 1 and 3 only. activities.Local's AddClusterSteps is the same list, in one process
// (`baton cluster add --local`).
func AddCluster(ctx workflow.Context, in activities.AddClusterInput) (activities.AddClusterResult, error) {
	t := newTracker(ctx)
	out := activities.AddClusterResult{Cluster: in.Cluster, DryRun: in.DryRun}
	var ns activities.NewSettings
	if err := t.run(ctx, step{name: "settings", opts: operating, activity: a.NewClusterSettings, args: args(in), out: &ns,
		summary: "settings of " + in.Cluster + ": the file's section or the defaults, and --set"}); err != nil {
		return out, err
	}
	out.Settings, out.Flavor, out.HAProxies = ns.Settings, ns.Flavor, ns.HAProxies
	if in.Prepares() {
		var p activities.PrepareResult
		if err := t.run(ctx, step{name: "prepare", opts: once(time.Minute), activity: a.PrepareCluster, args: args(in.PrepareInput(ns)), out: &p,
			summary: "prepare the servers of " + in.Cluster + " (--init, --attach)"}); err != nil {
			return out, err
		}
		out.Prepared = &p
	}
	var d activities.Discovered
	if err := t.run(ctx, step{name: "discover", opts: once(45 * time.Second), activity: a.DiscoverCluster, args: args(in.DiscoverInput(ns, out.Prepared)), out: &d,
		summary: "discover " + in.Cluster + " from its primary " + in.Primary + " and check every node"}); err != nil {
		return out, err
	}
	out.Primary, out.Replicas = d.Primary, d.Replicas
	if in.DryRun {
		return out, nil
	}
	var sr activities.SeedResult
	if err := t.run(ctx, step{name: "seed", opts: operating, activity: a.SeedCluster, args: args(in.SeedInput(ns, d, workflow.Now(ctx))), out: &sr,
		summary: "seed " + in.Cluster + " in Consul at epoch 1 and enter it in the catalog"}); err != nil {
		return out, err
	}
	out.Seed = &sr
	return out, nil
}

// once is for a step that is not retried: its error is the answer, and the operator runs
// the command again.
func once(timeout time.Duration) func(workflow.Context) workflow.Context {
	return func(ctx workflow.Context) workflow.Context { return options(ctx, timeout, 0, 1) }
}
