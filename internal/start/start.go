// Package start owns how Baton's workflows are started: their IDs, ID policies, search
// attributes and inputs. It links no workflow or activity code, so the detector can start
// a failover without carrying the worker.
package start

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/baton-db/baton/internal/version"
)

// Workflow type names, as registered by the worker.
const (
	Switchover = "PlannedSwitchover"
	Failover   = "UnplannedFailover"
	Rejoin     = "RejoinNode"
	Remove     = "RemoveNode"
	Durability = "DurabilityChanged"
	// Inspect and Operate run the operator's reads (status, dry runs) and Consul writes
	// (downtime, ack, recoveries) on the worker, so the CLI needs only Temporal.
	Inspect = "Inspect"
	Operate = "Operate"
)

// TaskTimeout is the workflow task timeout every start uses. The write-blocked steps of a
// switchover run as local activities inside one workflow task: if the worker dies there,
// another takes over after this long (the server's default is 10 s).
const TaskTimeout = 3 * time.Second

// WorkflowID is the one ID per cluster that every switchover, failover and rejoin of it
// uses, so two of them never run at once.
func WorkflowID(cluster string) string { return "failover/" + cluster }

// Search attributes shown and filtered on in the Web UI.
var (
	SACluster    = temporal.NewSearchAttributeKeyKeyword("BatonCluster")
	SAKind       = temporal.NewSearchAttributeKeyKeyword("BatonKind")
	SAOldPrimary = temporal.NewSearchAttributeKeyKeyword("BatonOldPrimary")
	SANewPrimary = temporal.NewSearchAttributeKeyKeyword("BatonNewPrimary")
	SAStep       = temporal.NewSearchAttributeKeyKeyword("BatonStep")
	SAOutcome    = temporal.NewSearchAttributeKeyKeyword("BatonOutcome")
)

// SearchAttributes names every search attribute above (`baton setup` registers them).
func SearchAttributes() []string {
	return []string{SACluster.GetName(), SAKind.GetName(), SAOldPrimary.GetName(), SANewPrimary.GetName(), SAStep.GetName(), SAOutcome.GetName()}
}

// FailoverInput asks for an unplanned failover. It carries no secrets.
type FailoverInput struct {
	Cluster string
	// DeadPrimary is the node the detector saw die; empty means whatever Consul names.
	DeadPrimary string
	// Force skips maintenance and the anti-flap period (a human's `baton failover --force`).
	Force bool
	// PrimaryAlive (with Force) replaces a primary that still answers: it is fenced first,
	// and the candidate must hold everything it executed (`--primary-alive`).
	PrimaryAlive bool `json:",omitempty"`
	RequestedBy  string
	Evidence     string
	// DetectedAt is when the detector classified the primary as dead (zero for a human's
	// `baton failover`).
	DetectedAt time.Time `json:",omitempty"`
}

// SwitchoverInput asks for a planned switchover. It carries no secrets.
type SwitchoverInput struct {
	Cluster     string
	Candidate   string // node name or host:port; empty lets Baton choose
	RequestedBy string
	// RequireApproval asks for the approval gate whatever the cluster's policy.
	RequireApproval bool
}

// DurabilityInput reports a change of a cluster's durability (the detector's degraded
// record): its hooks run in DurabilityChanged. It carries no secrets.
type DurabilityInput struct {
	Cluster, Primary, Reason string
	Since                    time.Time
	// Until is set when the degradation ended (durability-restored).
	Until time.Time `json:",omitempty"`
}

// DurabilityWorkflowID is the ID of the hooks run for one degradation (its start or end):
// one run each, however many detectors report it.
func DurabilityWorkflowID(in DurabilityInput) string {
	id := fmt.Sprintf("durability/%s/%d", in.Cluster, in.Since.UnixMilli())
	if !in.Until.IsZero() {
		id += "/restored"
	}
	return id
}

// StartDurabilityHooks starts the hooks of a durability change; one that was already
// started (by this or another detector) is not started again.
func (s Starter) StartDurabilityHooks(ctx context.Context, in DurabilityInput) error {
	opts := Options(DurabilityWorkflowID(in), s.Queue, "durability", in.Cluster, "durability of "+in.Cluster+": "+in.Reason)
	opts.WorkflowIDReusePolicy = enums.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE
	_, err := s.Client.ExecuteWorkflow(ctx, opts, Durability, in)
	var already *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &already) {
		return nil
	}
	return err
}

// MemoVersion is the memo key that records which build of Baton (the CLI or the
// detector) started a workflow: `baton postmortem` prints it.
const MemoVersion = "baton_version"

// Options are the start options of one workflow of a cluster: the start fails when
// another workflow with the same ID is running, so the caller decides what happens then.
// The memo carries the starter's version (MemoVersion).
func Options(id, queue, kind, cluster, summary string) client.StartWorkflowOptions {
	return client.StartWorkflowOptions{
		Memo:                     map[string]any{MemoVersion: version.Get().String()},
		ID:                       id,
		TaskQueue:                queue,
		WorkflowTaskTimeout:      TaskTimeout,
		WorkflowIDConflictPolicy: enums.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		WorkflowIDReusePolicy:    enums.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		// Without this the SDK hands back the running workflow instead of an error.
		WorkflowExecutionErrorWhenAlreadyStarted: true,
		TypedSearchAttributes:                    temporal.NewSearchAttributes(SACluster.ValueSet(cluster), SAKind.ValueSet(kind)),
		StaticSummary:                            summary,
	}
}

// OperatorTimeout bounds an Inspect or Operate run: with no worker polling the task queue
// the CLI gets an error instead of waiting for ever.
const OperatorTimeout = 2 * time.Minute

// OperatorWorkflowID is the ID of one Inspect or Operate run: "<kind>/<cluster or all>/<uuid>".
// Each run has its own ID: reads and operator writes never wait for each other nor for
// the cluster's switchover or failover (whose ID is WorkflowID).
func OperatorWorkflowID(kind, cluster string) string {
	if cluster == "" {
		cluster = "all"
	}
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6], b[8] = b[6]&0x0f|0x40, b[8]&0x3f|0x80 // a version 4 UUID
	return fmt.Sprintf("%s/%s/%x-%x-%x-%x-%x", kind, cluster, b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// OperatorOptions are the start options of an Inspect or Operate run. It sets the kind
// search attribute ("inspect" or "operate") but not BatonCluster: `baton status` lists
// a cluster's open operation by BatonCluster, and must not list its own read.
func OperatorOptions(kind, cluster, queue, summary string) client.StartWorkflowOptions {
	o := Options(OperatorWorkflowID(kind, cluster), queue, kind, cluster, summary)
	o.TypedSearchAttributes = temporal.NewSearchAttributes(SAKind.ValueSet(kind))
	o.WorkflowIDReusePolicy = enums.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE
	o.WorkflowExecutionTimeout = OperatorTimeout
	return o
}

// Temporal is what starting needs from a Temporal client.
type Temporal interface {
	ExecuteWorkflow(ctx context.Context, options client.StartWorkflowOptions, workflow any, args ...any) (client.WorkflowRun, error)
	GetWorkflow(ctx context.Context, workflowID, runID string) client.WorkflowRun
	DescribeWorkflowExecution(ctx context.Context, workflowID, runID string) (*workflowservice.DescribeWorkflowExecutionResponse, error)
	CancelWorkflow(ctx context.Context, workflowID, runID string) error
	TerminateWorkflow(ctx context.Context, workflowID, runID, reason string, details ...any) error
}

// Starter starts Baton's workflows on one task queue.
type Starter struct {
	Client Temporal
	Queue  string
	// PreemptWait is how long a preempted switchover may take to end (its undo included)
	// before it is terminated. Zero means DefaultPreemptWait.
	PreemptWait time.Duration
}

// DefaultPreemptWait bounds what a switchover can add to a dead primary's outage.
const DefaultPreemptWait = 3 * time.Second

// Started says what StartFailover did.
type Started struct {
	Run client.WorkflowRun
	// Attached: a failover of the cluster was already running; Run is that one, and this
	// call's input (Force included) was not applied.
	Attached bool
	// Preempted names the switchover run that was cancelled to make way, if any.
	Preempted string
}

// ErrRunning is returned when another operation of the cluster runs and cannot be preempted.
var ErrRunning = errors.New("another operation of this cluster is running")

// StartFailover starts the unplanned failover of a cluster. A dead primary wins over a
// planned operation: a running switchover or rejoin of the cluster is cancelled (a
// switchover's undo runs, and both are in its history), and terminated if it has not ended
// within PreemptWait. A failover that already runs is attached to, and Started.Attached
// says so.
func (s Starter) StartFailover(ctx context.Context, in FailoverInput, summary string) (Started, error) {
	id := WorkflowID(in.Cluster)
	opts := Options(id, s.Queue, "unplanned", in.Cluster, summary)
	var out Started
	for range 3 {
		run, err := s.Client.ExecuteWorkflow(ctx, opts, Failover, in)
		var already *serviceerror.WorkflowExecutionAlreadyStarted
		if !errors.As(err, &already) {
			out.Run = run
			return out, err
		}
		typ, runID, err := s.running(ctx, id)
		if err != nil {
			return out, err
		}
		switch typ {
		case "":
			continue // it ended meanwhile
		case Failover:
			out.Run, out.Attached = s.Client.GetWorkflow(ctx, id, runID), true
			return out, nil
		case Switchover, Rejoin, Remove, AddNode:
			if err := s.preempt(ctx, id, runID, in); err != nil {
				return out, err
			}
			out.Preempted = runID
		default:
			return out, fmt.Errorf("%w: %s %s (run %s)", ErrRunning, typ, id, runID)
		}
	}
	return out, fmt.Errorf("could not start the failover of %s: %s keeps being started by someone else", in.Cluster, id)
}

// Busy reports whether a switchover, failover or rejoin of the cluster is open: it owns
// the cluster's replication and acknowledgement settings until it ends.
func (s Starter) Busy(ctx context.Context, cluster string) (bool, error) {
	typ, _, err := s.running(ctx, WorkflowID(cluster))
	return typ != "", err
}

// running returns the type and run ID of the open workflow with this ID ("" if none).
func (s Starter) running(ctx context.Context, id string) (string, string, error) {
	d, err := s.Client.DescribeWorkflowExecution(ctx, id, "")
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		return "", "", nil
	}
	if err != nil {
		return "", "", fmt.Errorf("describe %s: %w", id, err)
	}
	info := d.GetWorkflowExecutionInfo()
	if info.GetStatus() != enums.WORKFLOW_EXECUTION_STATUS_RUNNING {
		return "", "", nil
	}
	return info.GetType().GetName(), info.GetExecution().GetRunId(), nil
}

// preempt cancels a switchover and waits for it to end, or terminates it.
func (s Starter) preempt(ctx context.Context, id, runID string, in FailoverInput) error {
	wait := s.PreemptWait
	if wait == 0 {
		wait = DefaultPreemptWait
	}
	if err := s.Client.CancelWorkflow(ctx, id, runID); err != nil {
		return fmt.Errorf("cancel the switchover %s (run %s) to fail over: %w", id, runID, err)
	}
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	// It ends cancelled, undone or failed (its history says how); only the wait matters.
	_ = s.Client.GetWorkflow(wctx, id, runID).Get(wctx, nil)
	if wctx.Err() == nil || ctx.Err() != nil {
		return ctx.Err()
	}
	reason := fmt.Sprintf("preempted by the unplanned failover of %s (requested by %s): the switchover did not end within %s of its cancellation", in.Cluster, in.RequestedBy, wait)
	if err := s.Client.TerminateWorkflow(ctx, id, runID, reason); err != nil {
		var nf *serviceerror.NotFound
		if !errors.As(err, &nf) {
			return fmt.Errorf("terminate the switchover %s (run %s) to fail over: %w", id, runID, err)
		}
	}
	return nil
}
