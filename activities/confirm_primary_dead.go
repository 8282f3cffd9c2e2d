package activities

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/baton-db/baton/internal/flavor"
	"github.com/baton-db/baton/internal/policy"
	"github.com/baton-db/baton/internal/topology"
)

// ConfirmInput asks whether Primary of Cluster is still the primary in Consul, and whether
// a failover may start.
type ConfirmInput struct {
	Cluster string
	Primary string // the node the detector saw die; empty: whatever Consul names
	// Force skips the maintenance flag and the anti-flap period (a human's decision).
	Force bool
	// DetectedAt is when the detector found the primary dead (zero: a human's failover,
	// counted from the confirmation).
	DetectedAt time.Time `json:",omitzero"`
}

// ConfirmResult says whether the failover goes on, and the topology it starts from.
type ConfirmResult struct {
	Cluster    string
	Proceed    bool
	Why        string
	Primary    topology.Node
	Replicas   []topology.Node
	Epoch      uint64
	EpochIndex uint64
	// Lost are candidates that stopped answering earlier in this failover (set by the
	// workflow when it chooses again): they are evicted with the old primary.
	Lost []topology.Node `json:",omitempty"`
	// LostGTIDs are the GTIDs each lost candidate was last seen to hold, by name.
	LostGTIDs map[string]string `json:",omitempty"`
	// Degraded is the primary's open durability degradation, if the detector recorded one:
	// writes it acknowledged since then may exist on it only.
	Degraded *topology.Degradation `json:",omitempty"`
	// Hooks are the cluster's configured hooks (names and timing only).
	Hooks []HookRef `json:",omitempty"`
	// Downtimed are the replicas a human took out of service, with why.
	Downtimed map[string]string `json:",omitempty"`
	// Promotion is each node's promotion rule (the config's, overridden at run time).
	Promotion map[string]string `json:",omitempty"`
	// Forced is a human's `--force`: the cluster's promotion limits (zone, lag) are lifted.
	Forced bool `json:",omitempty"`
	// FailedAt is when the primary was found dead: candidates' lag is measured to it.
	FailedAt time.Time `json:",omitzero"`
	// PrimaryGTIDs is what a primary fenced alive had executed (set by the workflow after
	// DemoteLivePrimary): the candidate must hold it all.
	PrimaryGTIDs string `json:",omitempty"`
}

// ConfirmPrimaryDead ends the failover as a no-op when Consul names another primary (a
// later detector arriving after another failover), or when the failover policy forbids it
// (maintenance, anti-flap) unless forced. Whether the primary still answers is asked by
// ProbePrimary, beside the relay-log wait.
func (a *Activities) ConfirmPrimaryDead(ctx context.Context, in ConfirmInput) (ConfirmResult, error) {
	cc, _, err := a.cluster(in.Cluster)
	if err != nil {
		return ConfirmResult{}, err
	}
	t, err := a.Topo.Read(ctx, in.Cluster)
	if errors.Is(err, topology.ErrUnknownCluster) {
		return ConfirmResult{}, nonRetryable(ErrUnknownCluster, "%v", err)
	}
	if err != nil {
		return ConfirmResult{}, err
	}
	res := ConfirmResult{Cluster: in.Cluster, Primary: t.Primary, Replicas: t.Replicas, Epoch: t.Epoch, EpochIndex: t.EpochIndex,
		Hooks: a.hooks(in.Cluster), Downtimed: downtimed(t, time.Now()), Forced: in.Force, FailedAt: in.DetectedAt,
		Promotion: promotionRules(cc.Prefer, cc.MustNot, t.Promotions)}
	if res.FailedAt.IsZero() {
		res.FailedAt = time.Now()
	}
	if d := t.Degraded; d != nil && d.Open() && d.Primary == t.Primary.Name {
		res.Degraded = d
	}
	if in.Primary != "" && in.Primary != t.Primary.Name {
		res.Why = fmt.Sprintf("Consul names %s as primary now, not %s: another failover already ran", t.Primary.Name, in.Primary)
		return res, nil
	}
	rec, err := a.recoveries(ctx, in.Force)
	if err != nil {
		return res, err
	}
	if ok, why := policy.Failover(t, rec, cc.AntiFlap, time.Now(), in.Force); !ok {
		res.Why = why
		return res, nil
	}
	if len(t.Replicas) == 0 {
		return res, nonRetryable(ErrNoReplicas, "primary %s of %s has no replicas to fail over to: if it is dead, restore it from backup", t.Primary.Name, in.Cluster)
	}
	res.Proceed = true
	res.Why = fmt.Sprintf("the detector found primary %s dead; it is probed again beside the relay-log wait", describe(t.Primary))
	return res, nil
}

// primaryAnswers asks the primary once, on a fresh connection, not the pool: the question
// is whether the server answers now. A primary that stalled just past the detector's
// threshold and answers again must not be failed over.
func (a *Activities) answers(ctx context.Context, f flavor.Flavor, n topology.Node) error {
	timeout := a.Config.Detector.ProbeTimeout
	c, err := a.freshClient(f, n, timeout, timeout)
	if err != nil {
		return err
	}
	defer c.Close()
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return c.Ping(pctx)
}

// lostOr returns ErrCandidateLost when the candidate no longer answers a fresh connection
// after a step on it failed, so the failover can choose again; otherwise err.
func (a *Activities) lostOr(ctx context.Context, plan Plan, err error) error {
	if err == nil {
		return nil
	}
	_, f, cerr := a.cluster(plan.Cluster)
	if cerr != nil {
		return err
	}
	if perr := a.answers(ctx, f, plan.Candidate); perr != nil {
		return nonRetryable(ErrCandidateLost, "candidate %s stopped answering during the failover (%v), after: %v",
			describe(plan.Candidate), perr, err)
	}
	return err
}
