package workflows

import (
	"errors"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/baton-db/baton/activities"
)

// The operator's verbs as workflows, so that the CLI needs only Temporal: the worker holds
// the Consul token and the database accounts, and runs the reads and writes as activities.
// Inputs and results carry names, addresses, GTIDs and who did what, never a secret.

// What Inspect reads.
const (
	InspectStatus     = "status"     // `baton status`: StatusInput.Cluster, or every cluster
	InspectSwitchover = "switchover" // `baton switchover --dry-run`
	InspectFailover   = "failover"   // `baton failover --dry-run`
	InspectRecoveries = "recoveries" // `baton recoveries`
	InspectEpoch      = "epoch"      // the cluster's epoch, for `baton approve` and `abort`
	InspectCluster    = "cluster"    // `baton cluster show`: the catalog entry
	InspectClusters   = "clusters"   // `baton cluster list`: every cluster in Consul
)

// InspectInput asks Inspect for one read.
type InspectInput struct {
	What    string
	Cluster string
	// Candidate: the switchover's requested candidate (InspectSwitchover).
	Candidate string `json:",omitempty"`
	// Force and PrimaryAlive are the failover's flags (InspectFailover).
	Force        bool `json:",omitempty"`
	PrimaryAlive bool `json:",omitempty"`
}

// FailoverPreview is what `baton failover --dry-run` shows: the confirmation, the probe of
// the primary (when the confirmation would proceed), and the candidate.
type FailoverPreview struct {
	Confirm   activities.ConfirmResult
	Probe     *activities.ProbeResult `json:",omitempty"`
	Candidate activities.Preview
}

// InspectResult holds the one read asked for.
type InspectResult struct {
	Status     *activities.StatusReport   `json:",omitempty"`
	Switchover *activities.Preview        `json:",omitempty"`
	Failover   *FailoverPreview           `json:",omitempty"`
	Recoveries *activities.RecoveriesView `json:",omitempty"`
	Epoch      uint64                     `json:",omitempty"`
	Cluster    *activities.ClusterView    `json:",omitempty"`
	// Clusters is `baton cluster list`.
	Clusters []activities.ClusterListEntry `json:",omitempty"`
}

// reading is the activity options of the operator's reads: one attempt, its error is
// the answer (the operator asks again).
func reading(ctx workflow.Context) workflow.Context {
	return options(ctx, time.Minute, 0, 1)
}

// operating is the activity options of the operator's Consul writes: each is idempotent,
// so a lost attempt is retried.
func operating(ctx workflow.Context) workflow.Context {
	return options(ctx, 15*time.Second, 0, 3)
}

// Inspect runs one read of the operator's (status, a dry run, the recoveries switches, an
// epoch) on the worker. It changes nothing.
func Inspect(ctx workflow.Context, in InspectInput) (InspectResult, error) {
	ctx = reading(ctx)
	var out InspectResult
	switch in.What {
	case InspectStatus:
		var r activities.StatusReport
		err := workflow.ExecuteActivity(ctx, a.Status, activities.StatusInput{Cluster: in.Cluster}).Get(ctx, &r)
		out.Status = &r
		return out, err
	case InspectSwitchover:
		var p activities.Preview
		err := workflow.ExecuteActivity(ctx, a.PreviewSwitchover, activities.CheckInput{Cluster: in.Cluster, Candidate: in.Candidate}).Get(ctx, &p)
		out.Switchover = &p
		return out, err
	case InspectFailover:
		var f FailoverPreview
		err := previewFailover(ctx, in, &f)
		out.Failover = &f
		return out, err
	case InspectRecoveries:
		var v activities.RecoveriesView
		err := workflow.ExecuteActivity(ctx, a.ShowRecoveries, in.Cluster).Get(ctx, &v)
		out.Recoveries = &v
		return out, err
	case InspectEpoch:
		err := workflow.ExecuteActivity(ctx, a.CurrentEpoch, in.Cluster).Get(ctx, &out.Epoch)
		return out, err
	case InspectCluster:
		var v activities.ClusterView
		err := workflow.ExecuteActivity(ctx, a.ShowCluster, in.Cluster).Get(ctx, &v)
		out.Cluster = &v
		return out, err
	case InspectClusters:
		err := workflow.ExecuteActivity(ctx, a.ListClusters).Get(ctx, &out.Clusters)
		return out, err
	}
	return out, temporal.NewNonRetryableApplicationError("unknown read "+in.What, activities.ErrBadConfig, nil)
}

// previewFailover is the unplanned failover's read-only steps: ConfirmPrimaryDead, then
// ProbePrimary when it would proceed, then the candidate it would choose (a primary that
// answers ends the failover as a no-op unless PrimaryAlive; the candidate is shown anyway).
func previewFailover(ctx workflow.Context, in InspectInput, f *FailoverPreview) error {
	if err := workflow.ExecuteActivity(ctx, a.ConfirmPrimaryDead, activities.ConfirmInput{Cluster: in.Cluster, Force: in.Force}).Get(ctx, &f.Confirm); err != nil {
		return err
	}
	conf := f.Confirm
	if conf.Proceed {
		var p activities.ProbeResult
		if err := workflow.ExecuteActivity(ctx, a.ProbePrimary, activities.Plan{Cluster: in.Cluster, OldPrimary: conf.Primary}).Get(ctx, &p); err != nil {
			return err
		}
		f.Probe = &p
		if p.Answers && !in.PrimaryAlive {
			conf.Proceed = false
		}
	}
	return workflow.ExecuteActivity(ctx, a.PreviewFailoverCandidate, conf).Get(ctx, &f.Candidate)
}

// OperateInput asks Operate for one Consul write: exactly one field is set.
type OperateInput struct {
	Downtime    *activities.DowntimeInput   `json:",omitempty"`
	EndDowntime *activities.NodeRef         `json:",omitempty"`
	Ack         *activities.AckInput        `json:",omitempty"`
	Recoveries  *activities.RecoveriesInput `json:",omitempty"`
	Promotion   *activities.PromotionInput  `json:",omitempty"`
	// ClusterSettings is `baton cluster set`.
	ClusterSettings *activities.ClusterSettingsInput `json:",omitempty"`
	// RemoveCluster is `baton cluster remove`.
	RemoveCluster *activities.RemoveClusterInput `json:",omitempty"`
}

// OperateResult is the result of the write asked for.
type OperateResult struct {
	Downtime *activities.DowntimeResult `json:",omitempty"`
	// EndedDowntimeOf is the cluster of the node whose downtime ended.
	EndedDowntimeOf string                            `json:",omitempty"`
	Ack             *activities.AckResult             `json:",omitempty"`
	Recoveries      *activities.RecoveriesView        `json:",omitempty"`
	Promotion       *activities.PromotionResult       `json:",omitempty"`
	ClusterSettings *activities.ClusterSettingsResult `json:",omitempty"`
	RemovedCluster  *activities.RemoveClusterResult   `json:",omitempty"`
}

// Operate runs one of the operator's Consul writes (a downtime and its end, an
// acknowledgement, a recoveries switch, a node's promotion rule, a cluster's settings) on the worker, one activity per verb.
func Operate(ctx workflow.Context, in OperateInput) (OperateResult, error) {
	ctx = operating(ctx)
	var out OperateResult
	switch {
	case in.Downtime != nil:
		var r activities.DowntimeResult
		err := workflow.ExecuteActivity(ctx, a.SetDowntime, *in.Downtime).Get(ctx, &r)
		out.Downtime = &r
		return out, err
	case in.EndDowntime != nil:
		err := workflow.ExecuteActivity(ctx, a.EndDowntime, *in.EndDowntime).Get(ctx, &out.EndedDowntimeOf)
		return out, err
	case in.Ack != nil:
		var r activities.AckResult
		err := workflow.ExecuteActivity(ctx, a.Acknowledge, *in.Ack).Get(ctx, &r)
		out.Ack = &r
		return out, err
	case in.Recoveries != nil:
		var v activities.RecoveriesView
		err := workflow.ExecuteActivity(ctx, a.SetRecoveries, *in.Recoveries).Get(ctx, &v)
		out.Recoveries = &v
		return out, err
	case in.Promotion != nil:
		var r activities.PromotionResult
		err := workflow.ExecuteActivity(ctx, a.SetPromotion, *in.Promotion).Get(ctx, &r)
		out.Promotion = &r
		return out, err
	case in.ClusterSettings != nil:
		var r activities.ClusterSettingsResult
		err := workflow.ExecuteActivity(ctx, a.SetClusterSettings, *in.ClusterSettings).Get(ctx, &r)
		out.ClusterSettings = &r
		return out, err
	case in.RemoveCluster != nil:
		var r activities.RemoveClusterResult
		err := workflow.ExecuteActivity(ctx, a.RemoveCluster, *in.RemoveCluster).Get(ctx, &r)
		out.RemovedCluster = &r
		return out, err
	}
	return out, temporal.NewNonRetryableApplicationError("nothing to do: an Operate input sets one write", activities.ErrBadConfig, errors.New("empty OperateInput"))
}
