package activities

import (
	"context"
	"errors"
	"fmt"
	"strings"

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
	plan := Plan{Cluster: in.Cluster, OldPrimary: topo.Primary, Epoch: topo.Epoch, EpochIndex: topo.EpochIndex}

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
	primaryGTIDs, err := primary.Flavor.ParseGTIDs(primaryRaw)
	if err != nil {
		return plan, err
	}
	policy := Policy{Prefer: cc.Prefer, MustNot: cc.MustNot, Zone: topo.Primary.Zone}
	best, reports := ChooseCandidate(obs, policy)
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

	check := func(name string, ok bool, detail string) {
		plan.Checks = append(plan.Checks, Check{Name: name, OK: ok, Detail: detail})
	}
	// The candidate is a healthy replica of the current primary.
	cst, err := a.replicaStatus(ctx, in.Cluster, cand.Node)
	switch {
	case err != nil:
		check("candidate replicates from primary", false, fmt.Sprintf("cannot read %s: %v", describe(cand.Node), err))
	case cst == nil:
		check("candidate replicates from primary", false, cand.Node.Name+" is not a replica")
	case !replicatesFrom(cst.SourceHost, cst.SourcePort, topo.Primary):
		check("candidate replicates from primary", false, fmt.Sprintf("%s replicates from %s:%d, not from %s", cand.Node.Name, cst.SourceHost, cst.SourcePort, describe(topo.Primary)))
	case !cst.IOConnected() || !cst.SQLRunning:
		check("candidate replicates from primary", false, fmt.Sprintf("%s: IO thread %s, SQL thread running %v %s %s", cand.Node.Name, cst.IORunning, cst.SQLRunning, cst.IOError, cst.SQLError))
	default:
		check("candidate replicates from primary", true, fmt.Sprintf("%s: IO %s, SQL running", cand.Node.Name, cst.IORunning))
	}
	// No errant GTIDs on the candidate.
	if cand.GTIDs == nil {
		check("no errant GTIDs", false, "cannot read the candidate's executed GTIDs")
	} else if miss := primaryGTIDs.Missing(cand.GTIDs); miss != "" {
		check("no errant GTIDs", false, fmt.Sprintf("%s has transactions the primary lacks: %s; remove them (or inject empty transactions on the primary) before a switchover", cand.Node.Name, miss))
	} else {
		check("no errant GTIDs", true, cand.GTIDs.String())
	}
	// No DDL and no long DML on the primary.
	procs, err := primary.Processlist(ctx)
	if err != nil {
		check("no running DDL", false, err.Error())
		check("no long-running DML", false, err.Error())
	} else {
		var ddl, dml []string
		for _, p := range procs {
			if p.IsDDL() {
				ddl = append(ddl, fmt.Sprintf("id %d user %s %ds: %.80s", p.ID, p.User, int(p.Time.Seconds()), p.Info))
			}
			if p.LongDML(cc.LongDML) {
				dml = append(dml, fmt.Sprintf("id %d user %s trx %s: %.80s", p.ID, p.User, p.TrxAge.Round(1e6), p.Info))
			}
		}
		check("no running DDL", len(ddl) == 0, orNone(ddl, "wait for the schema change to finish"))
		check("no long-running DML", len(dml) == 0, orNone(dml, fmt.Sprintf("longer than %s; wait for it or end it", cc.LongDML)))
	}
	// Replica lag under the limit.
	switch {
	case cand.LagMS < 0:
		check("candidate lag under limit", false, fmt.Sprintf("no heartbeat row for %s: is its heartbeat agent running?", cand.Node.Name))
	case cand.LagMS > cc.MaxLag.Milliseconds():
		check("candidate lag under limit", false, fmt.Sprintf("%s lags %d ms, limit %s; wait for it to catch up", cand.Node.Name, cand.LagMS, cc.MaxLag))
	default:
		check("candidate lag under limit", true, fmt.Sprintf("%d ms", cand.LagMS))
	}
	// Consul and consul-template healthy on every remote HAProxy host.
	a.checkHAProxies(ctx, cc.HAProxies, check)

	plan.Approval = approval(cc, plan)
	var failed []string
	for _, c := range plan.Checks {
		if !c.OK {
			failed = append(failed, c.Name+": "+c.Detail)
		}
	}
	if len(failed) > 0 {
		return plan, nonRetryable(ErrPreconditionFailed, "switchover of %s to %s refused, nothing was changed; %d check(s) failed: %s",
			in.Cluster, cand.Node.Name, len(failed), strings.Join(failed, " | "))
	}
	return plan, nil
}

func (a *Activities) checkHAProxies(ctx context.Context, want []configHAProxy, check func(string, bool, string)) {
	hosts, err := a.Topo.HAProxies(ctx)
	if err != nil {
		check("HAProxy hosts healthy", false, fmt.Sprintf("%v; Consul must be up for a switchover", err))
		return
	}
	byID := map[string]bool{}
	var bad []string
	for _, h := range hosts {
		byID[h.ID] = true
		if len(h.Failing) > 0 {
			bad = append(bad, fmt.Sprintf("%s: %s", h.ID, strings.Join(h.Failing, ", ")))
		}
	}
	for _, w := range want {
		if !byID["haproxy-"+w.Name] {
			bad = append(bad, "haproxy-"+w.Name+" is not registered in Consul")
		}
	}
	check("HAProxy hosts healthy", len(bad) == 0, orNone(bad, "restart what is down on those hosts"))
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
	case cc.RequireApproval == "always":
		a.Required, a.Reason = true, "require_approval is always"
	case cc.RequireApproval == "cross_zone" && p.Candidate.Zone != p.OldPrimary.Zone:
		a.Required, a.Reason = true, fmt.Sprintf("the primary moves from zone %s to zone %s", p.OldPrimary.Zone, p.Candidate.Zone)
	}
	return a
}
