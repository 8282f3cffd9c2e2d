package activities

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/baton-db/baton/internal/config"
	"github.com/baton-db/baton/internal/topology"
)

// CheckInput asks for a planned switchover of Cluster, to Candidate if it is set.
type CheckInput struct {
	Cluster   string
	Candidate string // node name or host:port; empty lets Baton choose
}

// CheckPreconditions runs every pre-failover check of docs/runbook.md §2.1 and returns the plan.
// It reports all failing checks at once, as one non-retryable error; nothing is changed.
func (a *Activities) CheckPreconditions(ctx context.Context, in CheckInput) (Plan, error) {
	cc, _, err := a.cluster(in.Cluster)
	if err != nil {
		return Plan{}, err
	}
	topo, err := a.Topo.Read(ctx, in.Cluster)
	if errors.Is(err, topology.ErrUnknownCluster) {
		return Plan{}, nonRetryable(ErrUnknownCluster, "%v; seed the topology in Consul first", err)
	}
	if err != nil {
		return Plan{}, err
	}
	plan := Plan{Cluster: in.Cluster, OldPrimary: topo.Primary, Epoch: topo.Epoch, EpochIndex: topo.EpochIndex, Hooks: a.hooks(in.Cluster)}

	if in.Candidate != "" {
		n, ok := topo.Find(in.Candidate)
		switch {
		case !ok:
			return plan, nonRetryable(ErrUnknownCandidate,
				"candidate %q is not a member of cluster %s (primary %s, replicas %s); pick one of the replicas",
				in.Candidate, in.Cluster, topo.Primary.Name, names(topo.Replicas))
		case n.Name == topo.Primary.Name:
			return plan, nonRetryable(ErrCandidateIsPrimary,
				"candidate %s is already the primary of %s; pick one of the replicas %s", n.Name, in.Cluster, names(topo.Replicas))
		}
	}
	if len(topo.Replicas) == 0 {
		return plan, nonRetryable(ErrNoReplicas, "cluster %s has no replicas in Consul; add one before a switchover", in.Cluster)
	}

	obs := make([]Observed, len(topo.Replicas))
	for i, r := range topo.Replicas {
		obs[i] = a.observe(ctx, in.Cluster, r)
		heartbeat(ctx, "observed "+r.Name)
	}
	// The primary is read after the replicas: it is always ahead, so a transaction the
	// replicas have and it lacks is truly errant, never a write that raced the reads.
	primary, err := a.mysql(in.Cluster, topo.Primary)
	if err != nil {
		return plan, err
	}
	primaryRaw, err := primary.Executed(ctx)
	if err != nil {
		return plan, fmt.Errorf("primary %s: %w", describe(topo.Primary), err)
	}
	primaryGTIDs, err := primary.Dialect().ParseGTIDs(primaryRaw)
	if err != nil {
		return plan, err
	}
	down := downtimed(topo, time.Now())
	policy := Policy{Zone: topo.Primary.Zone, Downtimed: down}.withRules(promotionRules(cc.Prefer, cc.MustNot, topo.Promotions))
	best, reports := rankCandidates(obs, policy)
	plan.Replicas = reports
	ci := best
	if in.Candidate != "" {
		for i, r := range topo.Replicas {
			if r.Name == in.Candidate || r.Addr() == in.Candidate {
				ci = i
				plan.Reason = "requested by the operator"
			}
		}
	}
	if ci < 0 {
		var why []string
		for _, r := range reports {
			why = append(why, r.Node.Name+": "+r.Why)
		}
		return plan, nonRetryable(ErrNoCandidate, "no replica of %s qualifies as candidate: %s", in.Cluster, strings.Join(why, "; "))
	}
	cand := obs[ci]
	plan.Candidate = cand.Node
	if plan.Reason == "" {
		plan.Reason = reports[ci].Why
	}
	for i, r := range topo.Replicas {
		if i != ci {
			plan.Others = append(plan.Others, r)
		}
	}

	cst, cerr := a.replicaStatus(ctx, in.Cluster, cand.Node)
	procs, perr := primary.Processlist(ctx)
	hosts, herr := a.Topo.HAProxies(ctx)
	plan.Checks = []Check{
		checkReplicates(cand.Node, topo.Primary, cst, cerr),
		checkErrant(cand, primaryGTIDs),
		checkDDL(procs, perr),
		checkLongDML(procs, perr, cc.LongDML),
		checkLag(cand, cc.MaxLag),
		checkHAProxyHosts(hosts, herr, cc.HAProxies),
		checkDowntime(cand.Node, down),
	}
	plan.Approval = approval(cc, plan)
	if bad := failed(plan.Checks); len(bad) > 0 {
		var msgs []string
		for _, c := range bad {
			msgs = append(msgs, c.Name+": "+c.Detail)
		}
		// The failed checks also travel as the error's details, one entry each.
		return plan, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("switchover of %s to %s refused, nothing was changed; %d check(s) failed: %s",
				in.Cluster, cand.Node.Name, len(bad), strings.Join(msgs, " | ")), ErrPreconditionFailed, nil, bad)
	}
	return plan, nil
}

func orNone(items []string, fix string) string {
	if len(items) == 0 {
		return "none"
	}
	return strings.Join(items, "; ") + " (" + fix + ")"
}

func names(ns []topology.Node) string {
	var out []string
	for _, n := range ns {
		out = append(out, n.Name)
	}
	return strings.Join(out, ", ")
}

// approval applies the cluster's require_approval policy to a plan.
func approval(cc config.ClusterConfig, p Plan) Approval {
	a := Approval{Approvers: cc.Approvers, Timeout: cc.ApprovalTimeout}
	switch {
	case cc.RequireApproval == config.ApprovalAlways:
		a.Required, a.Reason = true, "require_approval is always"
	case cc.RequireApproval == config.ApprovalCrossZone && p.Candidate.Zone != p.OldPrimary.Zone:
		a.Required, a.Reason = true, fmt.Sprintf("the primary moves from zone %s to zone %s", p.OldPrimary.Zone, p.Candidate.Zone)
	}
	return a
}
