package activities

import (
	"context"
	"fmt"
)

// ProbeResult says whether the old primary answered the workflow's own probe.
type ProbeResult struct {
	Answers bool
	Why     string
}

// ProbePrimary asks the primary the plan replaces once more, on a fresh connection. The
// workflow runs it beside the relay-log wait (whose first move, stopping the IO threads,
// can wait a second on a silent host); if the primary answers, the failover ends and
// RestartReplication undoes that stop.
func (a *Activities) ProbePrimary(ctx context.Context, plan Plan) (ProbeResult, error) {
	_, f, err := a.cluster(plan.Cluster)
	if err != nil {
		return ProbeResult{}, err
	}
	if err := a.answers(ctx, f, plan.OldPrimary); err != nil {
		return ProbeResult{Why: fmt.Sprintf("primary %s does not answer (%v)", describe(plan.OldPrimary), err)}, nil
	}
	return ProbeResult{Answers: true, Why: fmt.Sprintf("primary %s answers again; nothing to fail over", describe(plan.OldPrimary))}, nil
}
