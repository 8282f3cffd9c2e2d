package main

import (
	"context"
	"errors"
	"fmt"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/baton-db/baton/internal/app"
	"github.com/baton-db/baton/internal/config"
	"github.com/baton-db/baton/internal/start"
	"github.com/baton-db/baton/workflows"
)

// The operator's reads and Consul writes run on the worker, as the Inspect and Operate
// workflows: the CLI needs only its Temporal connection (no secrets, no Consul token).

// dial connects to Temporal for one command; close the client.
func dial(ctx context.Context, cfg *config.Config) (client.Client, error) {
	return app.Client(ctx, cfg, quietLogger())
}

// inspect runs one read on the worker and returns its result.
func inspect(ctx context.Context, cfg *config.Config, c client.Client, in workflows.InspectInput) (workflows.InspectResult, error) {
	var out workflows.InspectResult
	summary := fmt.Sprintf("baton %s %s, by %s", in.What, in.Cluster, currentUser())
	err := runOperator(ctx, cfg, c, start.OperatorOptions("inspect", in.Cluster, cfg.Temporal.TaskQueue, summary), start.Inspect, in, &out)
	return out, err
}

// operate runs one Consul write on the worker and returns its result.
func operate(ctx context.Context, cfg *config.Config, c client.Client, cluster, summary string, in workflows.OperateInput) (workflows.OperateResult, error) {
	var out workflows.OperateResult
	err := runOperator(ctx, cfg, c, start.OperatorOptions("operate", cluster, cfg.Temporal.TaskQueue, summary), start.Operate, in, &out)
	return out, err
}

func runOperator(ctx context.Context, cfg *config.Config, c client.Client, opts client.StartWorkflowOptions, wf string, in, out any) error {
	run, err := c.ExecuteWorkflow(ctx, opts, wf, in)
	if err != nil {
		return fmt.Errorf("start %s on Temporal: %w", wf, err)
	}
	return remoteError(run.Get(ctx, out), cfg.Temporal.TaskQueue)
}

// remoteError is what a verb reports of its workflow's error: the step's own error (an
// ApplicationError: its message and its type, which exitCode maps), or, when no worker
// ran the workflow in time, that.
func remoteError(err error, queue string) error {
	if err == nil {
		return nil
	}
	var app *temporal.ApplicationError
	if errors.As(err, &app) {
		if usageTypes[app.Type()] {
			return usage(stepError{app})
		}
		return stepError{app}
	}
	var timeout *temporal.TimeoutError
	if errors.As(err, &timeout) {
		return failed(fmt.Errorf("no baton-worker answered within %s: is one running on task queue %q? (%w)", start.OperatorTimeout, queue, err))
	}
	return err
}

// stepError is a step's error as the operator reads it: its message alone. It unwraps to
// the ApplicationError, whose type exitCode maps.
type stepError struct{ app *temporal.ApplicationError }

func (e stepError) Error() string { return e.app.Message() }
func (e stepError) Unwrap() error { return e.app }
