package workflows

// Helpers every workflow uses: running two steps side by side, reading an activity's error,
// and the Consul record of a finished operation.

import (
	"errors"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/baton-db/baton/activities"
	"github.com/baton-db/baton/internal/topology"
)

// both runs two steps at once and waits for both; it returns their errors together.
func both(ctx workflow.Context, a, b func(workflow.Context) error) error {
	var errA error
	wg := workflow.NewWaitGroup(ctx)
	wg.Add(1)
	workflow.Go(ctx, func(gctx workflow.Context) {
		defer wg.Done()
		errA = a(gctx)
	})
	errB := b(ctx)
	wg.Wait(ctx)
	return errors.Join(errA, errB)
}

// isType reports whether err carries an activity error of the given type.
func isType(err error, typ string) bool {
	var app *temporal.ApplicationError
	return errors.As(err, &app) && app.Type() == typ
}

// rootCause is the innermost message of an activity error, for a one-line report.
func rootCause(err error) string {
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err.Error()
		}
		err = next
	}
}

// record is the Consul record of a switchover or failover: At is when its topology was
// published, the start of the anti-flap period.
func record(ctx workflow.Context, kind string, plan activities.Plan, epoch uint64, t *tracker) topology.Record {
	steps := map[string]string{}
	for _, st := range t.steps {
		steps[st.Name] = st.Duration.String()
	}
	return topology.Record{Kind: kind, WorkflowID: workflow.GetInfo(ctx).WorkflowExecution.ID,
		From: plan.OldPrimary.Name, To: plan.Candidate.Name, Epoch: epoch, Started: workflow.GetInfo(ctx).WorkflowStartTime,
		At: workflow.Now(ctx), Steps: steps}
}

// unverified says, for the result, which endpoints a routing check could not reach.
func unverified(v activities.VerifyResult) []string {
	var out []string
	for _, u := range v.Unreachable {
		out = append(out, u+": unreachable from the worker, routing not verified")
	}
	return out
}
