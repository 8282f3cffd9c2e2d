package activities

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/baton-db/baton/internal/flavor"
	"github.com/baton-db/baton/internal/topology"
)

// ConfirmInput asks whether Primary of Cluster is still the primary in Consul and still dead.
type ConfirmInput struct {
	Cluster string
	Primary string // the node the detector saw die; empty: whatever Consul names
	// Force skips the maintenance flag and the anti-flap period (a human's decision).
	Force bool
	// DeferProbe leaves the probe of the primary to ProbePrimary, which the workflow runs
	// beside the relay-log wait.
	DeferProbe bool `json:",omitempty"`
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
}

// ConfirmPrimaryDead ends the failover as a no-op when Consul names another primary (a
// later detector arriving after another failover), the cluster is in maintenance or inside
// its anti-flap period (unless forced), or the primary answers.
func (a *Activities) ConfirmPrimaryDead(ctx context.Context, in ConfirmInput) (ConfirmResult, error) {
	cc, f, err := a.cluster(in.Cluster)
	if err != nil {
		return ConfirmResult{}, err
	}
	t, err := a.Topo.Read(ctx, in.Cluster)
	if errors.Is(err, topology.ErrUnknownCluster) {
		return ConfirmResult{}, nonRetryable("UnknownCluster", "%v", err)
	}
	if err != nil {
		return ConfirmResult{}, err
	}
	res := ConfirmResult{Cluster: in.Cluster, Primary: t.Primary, Replicas: t.Replicas, Epoch: t.Epoch, EpochIndex: t.EpochIndex}
	switch {
	case in.Primary != "" && in.Primary != t.Primary.Name:
		res.Why = fmt.Sprintf("Consul names %s as primary now, not %s: another failover already ran", t.Primary.Name, in.Primary)
		return res, nil
	case t.Maintenance && !in.Force:
		res.Why = fmt.Sprintf("cluster %s is in maintenance; use `baton failover --force` to fail over anyway", in.Cluster)
		return res, nil
	case t.LastFailover != nil && time.Since(t.LastFailover.At) < cc.AntiFlap && !in.Force:
		res.Why = fmt.Sprintf("the last failover of %s was %s ago, inside the anti-flap period of %s; use `baton failover --force` to fail over anyway",
			in.Cluster, time.Since(t.LastFailover.At).Round(time.Second), cc.AntiFlap)
		return res, nil
	}
	if len(t.Replicas) == 0 {
		return res, nonRetryable("NoReplicas", "primary %s of %s has no replicas to fail over to: if it is dead, restore it from backup", t.Primary.Name, in.Cluster)
	}
	if in.DeferProbe {
		res.Proceed = true
		res.Why = fmt.Sprintf("the detector found primary %s dead; it is probed again beside the relay-log wait", describe(t.Primary))
		return res, nil
	}
	if err := a.primaryAnswers(ctx, f, t.Primary); err != nil {
		res.Proceed = true
		res.Why = fmt.Sprintf("primary %s does not answer (%v)", describe(t.Primary), err)
		return res, nil
	}
	res.Why = fmt.Sprintf("primary %s answers; nothing to fail over", describe(t.Primary))
	return res, nil
}

// primaryAnswers asks the primary once, on a fresh connection, not the pool: the question
// is whether the server answers now. The detector already waited out its probes, so one
// attempt is enough. It is asked even when the detector's verdict is milliseconds old: a
// primary that stalled just past the detector's threshold and answers again must not be
// failed over.
func (a *Activities) primaryAnswers(ctx context.Context, f flavor.Flavor, n topology.Node) error {
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
