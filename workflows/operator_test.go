package workflows

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/baton-db/baton/activities"
	"github.com/baton-db/baton/internal/topology"
)

func newOperatorEnv() *testsuite.TestWorkflowEnvironment {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflow(Inspect)
	env.RegisterWorkflow(Operate)
	env.RegisterActivity(&activities.Activities{})
	return env
}

func TestInspectStatus(t *testing.T) {
	env := newOperatorEnv()
	report := activities.StatusReport{At: time.Unix(1, 0).UTC(), Clusters: []activities.ClusterStatus{
		{Health: activities.Health{Cluster: "demo", Epoch: 3, Problems: []string{}}, WatchedBy: "detector-1"}}}
	env.OnActivity("Status", mock.Anything, activities.StatusInput{Cluster: "demo"}).Return(report, nil).Once()
	env.ExecuteWorkflow(Inspect, InspectInput{What: InspectStatus, Cluster: "demo"})
	var r InspectResult
	if err := env.GetWorkflowResult(&r); err != nil {
		t.Fatal(err)
	}
	if r.Status == nil || len(r.Status.Clusters) != 1 || r.Status.Clusters[0].WatchedBy != "detector-1" || r.Status.Clusters[0].Epoch != 3 {
		t.Errorf("status = %+v", r.Status)
	}
	env.AssertExpectations(t)
}

// The failover's dry run: a primary that answers ends it as a no-op (the candidate is
// previewed with Proceed false), unless --primary-alive; a primary that is not confirmed
// dead is not probed.
func TestInspectFailover(t *testing.T) {
	for _, c := range []struct {
		name           string
		proceed        bool
		answers, alive bool
		probed         bool
		previewProceed bool
	}{
		{"dead", true, false, false, true, true},
		{"answers", true, true, false, true, false},
		{"answers, primary alive", true, true, true, true, true},
		{"not confirmed", false, false, false, false, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			env := newOperatorEnv()
			conf := confirmed
			conf.Proceed = c.proceed
			env.OnActivity("ConfirmPrimaryDead", mock.Anything, activities.ConfirmInput{Cluster: "demo", Force: true}).Return(conf, nil).Once()
			if c.probed {
				env.OnActivity("ProbePrimary", mock.Anything, mock.Anything).Return(activities.ProbeResult{Answers: c.answers, Why: "probe"}, nil).Once()
			}
			var previewed activities.ConfirmResult
			env.OnActivity("PreviewFailoverCandidate", mock.Anything, mock.Anything).Return(
				func(_ context.Context, in activities.ConfirmResult) (activities.Preview, error) {
					previewed = in
					return activities.Preview{Plan: plan, Refusal: &activities.Refusal{Type: activities.ErrNoCandidate, Message: "none"}}, nil
				}).Once()
			env.ExecuteWorkflow(Inspect, InspectInput{What: InspectFailover, Cluster: "demo", Force: true, PrimaryAlive: c.alive})
			var r InspectResult
			if err := env.GetWorkflowResult(&r); err != nil {
				t.Fatal(err)
			}
			f := r.Failover
			if f == nil || f.Confirm.Proceed != c.proceed || (f.Probe != nil) != c.probed || f.Candidate.Refusal == nil || f.Candidate.Plan.Candidate.Name != plan.Candidate.Name {
				t.Errorf("preview = %+v", f)
			}
			if previewed.Proceed != c.previewProceed {
				t.Errorf("candidate previewed with Proceed %v, want %v", previewed.Proceed, c.previewProceed)
			}
			env.AssertExpectations(t)
		})
	}
}

// A refusal of a read step ends Inspect with the step's error type, which the CLI maps to
// its exit code.
func TestInspectKeepsTheStepsErrorType(t *testing.T) {
	env := newOperatorEnv()
	env.OnActivity("ConfirmPrimaryDead", mock.Anything, mock.Anything).Return(activities.ConfirmResult{},
		temporal.NewNonRetryableApplicationError("unknown cluster nope", activities.ErrUnknownCluster, nil)).Once()
	env.ExecuteWorkflow(Inspect, InspectInput{What: InspectFailover, Cluster: "nope"})
	if err := env.GetWorkflowError(); !isType(err, activities.ErrUnknownCluster) {
		t.Errorf("error = %v; want %s", err, activities.ErrUnknownCluster)
	}
	env = newOperatorEnv()
	env.ExecuteWorkflow(Inspect, InspectInput{What: "nonsense"})
	if err := env.GetWorkflowError(); !isType(err, activities.ErrBadConfig) {
		t.Errorf("unknown read: %v", err)
	}
}

func TestInspectSwitchoverRecoveriesEpoch(t *testing.T) {
	env := newOperatorEnv()
	env.OnActivity("PreviewSwitchover", mock.Anything, activities.CheckInput{Cluster: "demo", Candidate: "node3"}).Return(
		activities.Preview{Plan: plan, Refusal: &activities.Refusal{Type: activities.ErrPreconditionFailed, Message: "lag"}}, nil).Once()
	env.ExecuteWorkflow(Inspect, InspectInput{What: InspectSwitchover, Cluster: "demo", Candidate: "node3"})
	var r InspectResult
	if err := env.GetWorkflowResult(&r); err != nil || r.Switchover == nil || r.Switchover.Refusal.Type != activities.ErrPreconditionFailed {
		t.Errorf("switchover preview = %+v, %v", r.Switchover, err)
	}

	env = newOperatorEnv()
	env.OnActivity("ShowRecoveries", mock.Anything, "demo").Return(activities.RecoveriesView{Cluster: "demo", Enabled: true}, nil).Once()
	env.ExecuteWorkflow(Inspect, InspectInput{What: InspectRecoveries, Cluster: "demo"})
	r = InspectResult{}
	if err := env.GetWorkflowResult(&r); err != nil || r.Recoveries == nil || !r.Recoveries.Enabled {
		t.Errorf("recoveries = %+v, %v", r.Recoveries, err)
	}

	env = newOperatorEnv()
	env.OnActivity("CurrentEpoch", mock.Anything, "demo").Return(uint64(12), nil).Once()
	env.ExecuteWorkflow(Inspect, InspectInput{What: InspectEpoch, Cluster: "demo"})
	r = InspectResult{}
	if err := env.GetWorkflowResult(&r); err != nil || r.Epoch != 12 {
		t.Errorf("epoch = %d, %v", r.Epoch, err)
	}
}

func TestOperate(t *testing.T) {
	until := time.Unix(3600, 0).UTC()
	env := newOperatorEnv()
	dt := activities.DowntimeInput{NodeRef: activities.NodeRef{Host: "node2"}, For: time.Hour, Reason: "kernel", By: "alice"}
	env.OnActivity("SetDowntime", mock.Anything, dt).Return(activities.DowntimeResult{Cluster: "demo",
		Downtime: topology.Downtime{Node: "node2", By: "alice", Until: until}}, nil).Once()
	env.ExecuteWorkflow(Operate, OperateInput{Downtime: &dt})
	var r OperateResult
	if err := env.GetWorkflowResult(&r); err != nil || r.Downtime == nil || r.Downtime.Cluster != "demo" || !r.Downtime.Downtime.Until.Equal(until) {
		t.Errorf("downtime = %+v, %v", r.Downtime, err)
	}

	env = newOperatorEnv()
	env.OnActivity("EndDowntime", mock.Anything, activities.NodeRef{Host: "node2"}).Return("",
		temporal.NewNonRetryableApplicationError("node2 of demo has no downtime", activities.ErrNoDowntime, nil)).Once()
	env.ExecuteWorkflow(Operate, OperateInput{EndDowntime: &activities.NodeRef{Host: "node2"}})
	if err := env.GetWorkflowError(); !isType(err, activities.ErrNoDowntime) {
		t.Errorf("end of no downtime: %v; want %s", err, activities.ErrNoDowntime)
	}
	env.AssertExpectations(t) // a refusal is not retried

	env = newOperatorEnv()
	env.OnActivity("Acknowledge", mock.Anything, activities.AckInput{Cluster: "demo", By: "alice"}).Return(activities.AckResult{Already: true}, nil).Once()
	env.ExecuteWorkflow(Operate, OperateInput{Ack: &activities.AckInput{Cluster: "demo", By: "alice"}})
	r = OperateResult{}
	if err := env.GetWorkflowResult(&r); err != nil || r.Ack == nil || !r.Ack.Already {
		t.Errorf("ack = %+v, %v", r.Ack, err)
	}

	env = newOperatorEnv()
	in := activities.RecoveriesInput{Disabled: true, By: "bob", Reason: "DC"}
	env.OnActivity("SetRecoveries", mock.Anything, in).Return(activities.RecoveriesView{}, nil).Once()
	env.ExecuteWorkflow(Operate, OperateInput{Recoveries: &in})
	r = OperateResult{}
	if err := env.GetWorkflowResult(&r); err != nil || r.Recoveries == nil || r.Recoveries.Enabled {
		t.Errorf("recoveries = %+v, %v", r.Recoveries, err)
	}

	env = newOperatorEnv()
	pr := activities.PromotionInput{NodeRef: activities.NodeRef{Host: "node3"}, Rule: "prefer_not", By: "alice"}
	env.OnActivity("SetPromotion", mock.Anything, pr).Return(activities.PromotionResult{Cluster: "demo"}, nil).Once()
	env.ExecuteWorkflow(Operate, OperateInput{Promotion: &pr})
	r = OperateResult{}
	if err := env.GetWorkflowResult(&r); err != nil || r.Promotion == nil || r.Promotion.Cluster != "demo" {
		t.Errorf("promotion = %+v, %v", r.Promotion, err)
	}

	env = newOperatorEnv()
	env.ExecuteWorkflow(Operate, OperateInput{})
	if err := env.GetWorkflowError(); !isType(err, activities.ErrBadConfig) {
		t.Errorf("empty input: %v", err)
	}
}
