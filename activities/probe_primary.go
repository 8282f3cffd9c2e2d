package activities

import (
	"context"
	"fmt"

	"github.com/baton-db/baton/internal/flavor"
)

// ProbeResult says whether the old primary answered the workflow's own probe.
type ProbeResult struct {
	Answers bool
	Why     string
	// Reached: it answered, but is not a live primary (restarted, read-only). The failover
	// then fences it itself rather than revoking its lease first: its agent's fence stops
	// mysqld when commits are held, Baton's does not.
	Reached bool `json:",omitempty"`
}

// ProbePrimary asks the primary the plan replaces once more, on a fresh connection. The
// workflow runs it beside the relay-log wait (whose first move cuts the IO threads); if the
// primary answers, the failover ends and RestartReplication undoes that cut.
func (a *Activities) ProbePrimary(ctx context.Context, plan Plan) (ProbeResult, error) {
	_, f, err := a.cluster(plan.Cluster)
	if err != nil {
		return ProbeResult{}, err
	}
	if err := a.answers(ctx, f, plan.OldPrimary); err != nil {
		return ProbeResult{Why: fmt.Sprintf("primary %s does not answer (%v)", describe(plan.OldPrimary), err)}, nil
	}
	if why := a.notAPrimaryAnyMore(ctx, f, plan); why != "" {
		return ProbeResult{Reached: true, Why: fmt.Sprintf("primary %s answers, but %s: it was restarted, not a live primary", describe(plan.OldPrimary), why)}, nil
	}
	return ProbeResult{Answers: true, Why: fmt.Sprintf("primary %s answers again; nothing to fail over", describe(plan.OldPrimary))}, nil
}

// notAPrimaryAnyMore tells a primary that answers because it was restarted (by systemd,
// mysqld_safe, a human) from one that stalled and came back. A restarted node comes up
// read-only, and its crash recovery may have truncated transactions its replicas received:
// taking it back as it is would leave the replicas unable to follow it and its writes
// acknowledged by nobody. "" means it is a live primary.
func (a *Activities) notAPrimaryAnyMore(ctx context.Context, f flavor.Flavor, plan Plan) string {
	timeout := a.Config.Detector.ProbeTimeout
	c, err := a.freshClient(f, plan.OldPrimary, timeout, timeout)
	if err != nil {
		return ""
	}
	defer c.Close()
	if ro, _, err := c.ReadOnly(ctx); err == nil && ro {
		return "it is read-only"
	}
	raw, err := c.Executed(ctx)
	if err != nil {
		return ""
	}
	mine, err := f.ParseGTIDs(raw)
	if err != nil {
		return ""
	}
	for _, r := range plan.Replicas {
		if r.GTIDs == "" {
			continue
		}
		if theirs, err := f.ParseGTIDs(r.GTIDs); err == nil {
			if miss := flavor.Lacks(mine, theirs); miss != "" {
				return fmt.Sprintf("it lacks %s that %s holds", miss, r.Node.Name)
			}
		}
	}
	return ""
}
