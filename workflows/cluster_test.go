package workflows

import (
	"context"
	"slices"
	"testing"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/baton-db/baton/activities"
	"github.com/baton-db/baton/internal/config"
	"github.com/baton-db/baton/internal/topology"
)

func newAddEnv() *testsuite.TestWorkflowEnvironment {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflow(AddCluster)
	env.RegisterActivity(&activities.Activities{})
	return env
}

var (
	addIn = activities.AddClusterInput{Cluster: "demo3", Primary: "127.0.1.6:3306", By: "alice", Init: true, Attach: []string{"127.0.1.7:3306"},
		Names: map[string]string{"127.0.1.6": "node6", "127.0.1.7": "node7"}, Zones: map[string]string{"127.0.1.6": "a", "127.0.1.7": "b"},
		Set: []string{"durability=cross_zone"}}
	addSettings = activities.NewSettings{Flavor: "mariadb", Settings: map[string]any{"flavor": "mariadb", "durability": "cross_zone"},
		HAProxies: []config.HAProxy{{Name: "a", Zone: "a", Writer: "127.0.2.1:3326", Reader: "127.0.2.1:3327"}}}
	node6 = topology.Node{Name: "node6", IPv4: "127.0.1.6", Port: 3306, Zone: "a", ServerID: 106}
	node7 = topology.Node{Name: "node7", IPv4: "127.0.1.7", Port: 3306, Zone: "b", ServerID: 107}
)

// The add runs its steps in order on the worker: the settings, the prepare (--init,
// --attach), the discovery, then the seed with the workflow's time and who added it.
func TestAddClusterRunsItsStepsInOrder(t *testing.T) {
	env := newAddEnv()
	var order []string
	note := func(name string) { order = append(order, name) }
	env.OnActivity("NewClusterSettings", mock.Anything, addIn).Return(func(context.Context, activities.AddClusterInput) (activities.NewSettings, error) {
		note("settings")
		return addSettings, nil
	}).Once()
	env.OnActivity("PrepareCluster", mock.Anything, addIn.PrepareInput(addSettings)).Return(func(context.Context, activities.PrepareClusterInput) (activities.PrepareResult, error) {
		note("prepare")
		return activities.PrepareResult{Primary: addIn.Primary, Opened: true, Attached: 1}, nil
	}).Once()
	var discover activities.DiscoverClusterInput
	env.OnActivity("DiscoverCluster", mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.DiscoverClusterInput) (activities.Discovered, error) {
		note("discover")
		discover = in
		return activities.Discovered{Flavor: "mariadb", Primary: node6, Replicas: []topology.Node{node7}}, nil
	}).Once()
	var seed activities.SeedClusterInput
	env.OnActivity("SeedCluster", mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.SeedClusterInput) (activities.SeedResult, error) {
		note("seed")
		seed = in
		return activities.SeedResult{Entered: true}, nil
	}).Once()
	env.ExecuteWorkflow(AddCluster, addIn)
	var r activities.AddClusterResult
	if err := env.GetWorkflowResult(&r); err != nil {
		t.Fatal(err)
	}
	env.AssertExpectations(t)
	if !slices.Equal(order, []string{"settings", "prepare", "discover", "seed"}) {
		t.Errorf("steps %v", order)
	}
	if discover.Prepared == nil || discover.Flavor != "mariadb" || discover.Names["127.0.1.7"] != "node7" {
		t.Errorf("discovery input %+v", discover)
	}
	if seed.By != "alice" || seed.At.IsZero() || seed.Primary != node6 || len(seed.Replicas) != 1 || seed.Settings["durability"] != "cross_zone" {
		t.Errorf("seed input %+v", seed)
	}
	if r.Seed == nil || !r.Seed.Entered || r.Prepared == nil || r.Primary != node6 || len(r.HAProxies) != 1 || r.Flavor != "mariadb" {
		t.Errorf("result %+v", r)
	}
}

// A dry run runs the settings and the discovery only; without --init or --attach nothing
// is prepared.
func TestAddClusterDryRunAndNoPrepare(t *testing.T) {
	for _, c := range []struct {
		name   string
		dryRun bool
	}{{"dry run", true}, {"no prepare", false}} {
		t.Run(c.name, func(t *testing.T) {
			env := newAddEnv()
			in := addIn
			in.DryRun = c.dryRun
			if !c.dryRun {
				in.Init, in.Attach = false, nil
			}
			env.OnActivity("NewClusterSettings", mock.Anything, in).Return(addSettings, nil).Once()
			env.OnActivity("DiscoverCluster", mock.Anything, mock.Anything).Return(activities.Discovered{Primary: node6, Replicas: []topology.Node{node7}}, nil).Once()
			if !c.dryRun {
				env.OnActivity("SeedCluster", mock.Anything, mock.Anything).Return(activities.SeedResult{Entered: true}, nil).Once()
			}
			env.ExecuteWorkflow(AddCluster, in)
			var r activities.AddClusterResult
			if err := env.GetWorkflowResult(&r); err != nil {
				t.Fatal(err)
			}
			env.AssertExpectations(t) // an unexpected step fails the mock
			if r.Prepared != nil || r.DryRun != c.dryRun || (r.Seed == nil) != c.dryRun {
				t.Errorf("result %+v", r)
			}
		})
	}
}

// A refusal ends the add with the step's error type (the CLI's exit code) and runs no later
// step: bad settings before anything changes, failed checks before the seed.
func TestAddClusterRefusalsStopIt(t *testing.T) {
	env := newAddEnv()
	env.OnActivity("NewClusterSettings", mock.Anything, mock.Anything).Return(activities.NewSettings{},
		temporal.NewNonRetryableApplicationError("durability: paxos", activities.ErrBadSettings, nil)).Once()
	env.ExecuteWorkflow(AddCluster, addIn)
	if err := env.GetWorkflowError(); !isType(err, activities.ErrBadSettings) {
		t.Errorf("bad settings: %v", err)
	}
	env.AssertExpectations(t)

	env = newAddEnv()
	in := addIn
	in.Init, in.Attach = false, nil
	env.OnActivity("NewClusterSettings", mock.Anything, mock.Anything).Return(addSettings, nil).Once()
	env.OnActivity("DiscoverCluster", mock.Anything, mock.Anything).Return(activities.Discovered{},
		temporal.NewNonRetryableApplicationError("read_only is ON", activities.ErrCannotOnboard, nil)).Once()
	env.ExecuteWorkflow(AddCluster, in)
	if err := env.GetWorkflowError(); !isType(err, activities.ErrCannotOnboard) {
		t.Errorf("failed checks: %v", err)
	}
	env.AssertExpectations(t)
}

func TestInspectClustersAndOperateRemoveCluster(t *testing.T) {
	env := newOperatorEnv()
	list := []activities.ClusterListEntry{{Cluster: "demo", Epoch: 3, Primary: "node1", Replicas: []string{"node2"}, InCatalog: true}}
	env.OnActivity("ListClusters", mock.Anything).Return(list, nil).Once()
	env.ExecuteWorkflow(Inspect, InspectInput{What: InspectClusters})
	var r InspectResult
	if err := env.GetWorkflowResult(&r); err != nil || len(r.Clusters) != 1 || r.Clusters[0].Primary != "node1" || !r.Clusters[0].InCatalog {
		t.Errorf("clusters = %+v, %v", r.Clusters, err)
	}

	env = newOperatorEnv()
	in := activities.RemoveClusterInput{Cluster: "demo", By: "alice"}
	env.OnActivity("RemoveCluster", mock.Anything, in).Return(activities.RemoveClusterResult{Cluster: "demo", InFile: true}, nil).Once()
	env.ExecuteWorkflow(Operate, OperateInput{RemoveCluster: &in})
	var o OperateResult
	if err := env.GetWorkflowResult(&o); err != nil || o.RemovedCluster == nil || !o.RemovedCluster.InFile {
		t.Errorf("remove = %+v, %v", o.RemovedCluster, err)
	}

	env = newOperatorEnv()
	env.OnActivity("RemoveCluster", mock.Anything, mock.Anything).Return(activities.RemoveClusterResult{},
		temporal.NewNonRetryableApplicationError("unknown cluster", activities.ErrUnknownCluster, nil)).Once()
	env.ExecuteWorkflow(Operate, OperateInput{RemoveCluster: &activities.RemoveClusterInput{Cluster: "nope"}})
	if err := env.GetWorkflowError(); !isType(err, activities.ErrUnknownCluster) {
		t.Errorf("remove of an unknown cluster: %v", err)
	}
	env.AssertExpectations(t) // a refusal is not retried
}
