package main

import (
	"errors"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/temporal"

	"github.com/baton-db/baton/activities"
)

// The exit codes of baton, so a script can tell "refused, nothing changed" from "failed".
const (
	exitOK      = 0 // the verb did what it was asked
	exitFailed  = 1 // an operation started and did not succeed, or an unexpected error
	exitUsage   = 2 // bad flags or arguments, an invalid config: nothing was attempted
	exitRefused = 3 // a precondition or policy said no: nothing was changed
	exitUnknown = 4 // the outcome is unknown: the workflow may still be running
)

// exitError carries the exit code of an error; its message is the error's.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func withCode(code int, err error) error {
	if err == nil {
		return nil
	}
	return &exitError{code: code, err: err}
}

// refused marks err as a refusal: a precondition or policy said no, nothing was changed.
func refused(err error) error { return withCode(exitRefused, err) }

// usage marks err as a usage error: bad flags, arguments or config; nothing was attempted.
func usage(err error) error { return withCode(exitUsage, err) }

// failed marks err as a failure of an operation that started (the default of any error).
func failed(err error) error { return withCode(exitFailed, err) }

// unknownOutcome marks err as an outcome nobody knows yet: the workflow may go on.
func unknownOutcome(err error) error { return withCode(exitUnknown, err) }

// refusalTypes are the step error types (temporal.ApplicationError.Type) that a workflow
// raises before it changes anything: a refused switchover, rejoin or failover.
var refusalTypes = map[string]bool{
	activities.ErrUnknownCluster:     true,
	activities.ErrBadConfig:          true,
	activities.ErrUnknownNode:        true,
	activities.ErrUnknownCandidate:   true,
	activities.ErrCandidateIsPrimary: true,
	activities.ErrPreconditionFailed: true,
	activities.ErrNoReplicas:         true,
	activities.ErrNoCandidate:        true,
	activities.ErrNotEvicted:         true,
	activities.ErrErrantGTIDs:        true, // raised only by a rejoin's check, before it changes anything
	activities.ErrHookVetoed:         true,
	activities.ErrNodeIsPrimary:      true,
	activities.ErrLastAcker:          true,
	activities.ErrNoDowntime:         true, // the operator's verbs, run on the worker (activities/operator.go)
	activities.ErrNothingToAck:       true,
}

// usageTypes are the step error types that are a usage error (exit 2): the operator must
// say more (a node name found in several clusters: add --cluster).
var usageTypes = map[string]bool{
	activities.ErrAmbiguousNode: true,
}

// exitCode maps the error a verb returned to the process's exit code: the code an
// exitError carries (the outermost one), else 3 for a workflow's refusal (an
// ApplicationError of one of refusalTypes anywhere in the chain), else 1. (An
// ApplicationError of usageTypes is marked usage by remoteError.)
func exitCode(err error) int {
	if err == nil {
		return exitOK
	}
	var e *exitError
	if errors.As(err, &e) {
		return e.code
	}
	if isRefusal(err) {
		return exitRefused
	}
	return exitFailed
}

// isRefusal looks through the whole chain (a workflow's failure wraps the step's
// ActivityError, which wraps its ApplicationError) for a refusal's error type.
func isRefusal(err error) bool {
	for err != nil {
		var app *temporal.ApplicationError
		if errors.As(err, &app) {
			if refusalTypes[app.Type()] {
				return true
			}
			err = app.Unwrap()
			continue
		}
		return false
	}
	return false
}

// refusedIfRejected marks the error of a query or Update as a refusal when the server or
// the workflow answered no (nothing to approve, a gate that rejects), and as a failure
// when Temporal could not be asked at all.
func refusedIfRejected(err error) error {
	var app *temporal.ApplicationError
	var nf *serviceerror.NotFound
	var qf *serviceerror.QueryFailed
	var fp *serviceerror.FailedPrecondition
	var inv *serviceerror.InvalidArgument
	switch {
	case err == nil:
		return nil
	case errors.As(err, &app), errors.As(err, &nf), errors.As(err, &qf), errors.As(err, &fp), errors.As(err, &inv):
		return refused(err)
	}
	return failed(err)
}
