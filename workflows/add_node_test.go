package workflows

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/baton-db/baton/activities"
	"github.com/baton-db/baton/internal/topology"
)

var (
	newNode6 = topology.Node{Name: "node6", IPv4: "127.0.1.6", Port: 3306, ServerID: 106, Zone: "a"}
	nodeIn   = activities.AddNodeInput{Cluster: "demo", Host: "node6", Addr: "127.0.1.6:3306", Zone: "a", By: "alice", Reason: "capacity"}
	nodePlan = activities.NewNodePlan{Cluster: "demo", Node: newNode6, Primary: node1, Epoch: 7, EpochIndex: 70,
		CatchUpTimeout: 10 * time.Second, MaxCatchUp: time.Hour}
)

func newNodeEnv() *testsuite.TestWorkflowEnvironment {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflow(AddNode)
	env.RegisterActivity(&activities.Activities{})
	return env
}

// nodeHappy registers a successful result for every step of a node add but those in skip.
func nodeHappy(env *testsuite.TestWorkflowEnvironment, plan activities.NewNodePlan, skip ...string) {
	ok := map[string]any{
		"CheckNewNode": plan,
		"AttachNode":   struct{}{},
		"WaitCaughtUp": activities.NodeCatchUp{Took: 3 * time.Second, Rounds: 1},
		"RegisterNode": activities.RegisterResult{Acks: plan.Acks},
		"RemoveNode":   "node3 is out of demo's reader pool and detached",
	}
	for name, res := range ok {
		if !slices.Contains(skip, name) {
			env.OnActivity(name, mock.Anything, mock.Anything).Return(res, nil)
		}
	}
}

// ranActivities records the type of every activity the run starts, in order.
func ranActivities(env *testsuite.TestWorkflowEnvironment) *[]string {
	var ran []string
	env.SetOnActivityStartedListener(func(info *activity.Info, _ context.Context, _ converter.EncodedValues) {
		ran = append(ran, info.ActivityType.Name)
	})
	return &ran
}

func nodeSteps(r NodeResult) []string {
	var out []string
	for _, s := range r.Steps {
		out = append(out, s.Name)
	}
	return out
}

func TestAddNodeRunsItsStepsInOrder(t *testing.T) {
	env := newNodeEnv()
	nodeHappy(env, nodePlan)
	env.ExecuteWorkflow(AddNode, nodeIn)
	var r NodeResult
	if err := env.GetWorkflowResult(&r); err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(nodeSteps(r), ", "), "check new node, attach, wait caught up, register"; got != want {
		t.Fatalf("steps %s, want %s", got, want)
	}
	if r.Node != newNode6 || r.Primary != "node1" || r.Acks || r.CatchUp != 3*time.Second || r.Outcome != "succeeded" || r.Replaced != "" {
		t.Fatalf("result %+v", r)
	}
	env.AssertNotCalled(t, "UndoAttach", mock.Anything, mock.Anything)
	env.AssertNotCalled(t, "RemoveNode", mock.Anything, mock.Anything)
}

// A replacement is one run: the new node is added first, the old one removed after, with
// who and why; force reaches the removal.
func TestReplaceNodeAddsThenRemoves(t *testing.T) {
	env := newNodeEnv()
	plan := nodePlan
	plan.Node.Zone, plan.Acks, plan.Replace = "b", true, &node2
	nodeHappy(env, plan, "RemoveNode")
	var removal activities.RemoveInput
	env.OnActivity(a.RemoveNode, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.RemoveInput) (string, error) {
			removal = in
			return "node2 is out", nil
		})
	in := nodeIn
	in.Replace, in.Zone, in.Force = "node2", "b", true
	env.ExecuteWorkflow(AddNode, in)
	var r NodeResult
	if err := env.GetWorkflowResult(&r); err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(nodeSteps(r), ", "), "check new node, attach, wait caught up, register, remove old node"; got != want {
		t.Fatalf("steps %s, want %s", got, want)
	}
	if removal.Host != "node2" || removal.By != "alice" || !removal.Force || !strings.Contains(removal.Reason, "replaced by node6: capacity") {
		t.Fatalf("removal %+v", removal)
	}
	if r.Replaced != "node2" || r.Removal != "node2 is out" || !r.Acks {
		t.Fatalf("result %+v", r)
	}
}

// A refused check changes nothing: no attach, no undo, and the refusal's own type.
func TestAddNodeRefusedByItsCheckChangesNothing(t *testing.T) {
	env := newNodeEnv()
	env.OnActivity(a.CheckNewNode, mock.Anything, mock.Anything).Return(activities.NewNodePlan{},
		temporal.NewNonRetryableApplicationError("node6 is already a member of demo", activities.ErrNodeRefused, nil))
	env.ExecuteWorkflow(AddNode, nodeIn)
	var app *temporal.ApplicationError
	if err := env.GetWorkflowError(); !errors.As(err, &app) || app.Type() != activities.ErrNodeRefused {
		t.Fatalf("error %v, want NodeRefused", err)
	}
	for _, step := range []string{"AttachNode", "WaitCaughtUp", "RegisterNode", "UndoAttach", "RemoveNode"} {
		env.AssertNotCalled(t, step, mock.Anything, mock.Anything)
	}
}

// A failure after the attach (a catch-up that cannot succeed, a registration refused by a
// changed epoch, the attach itself) is undone: the node detached and read-only, never
// registered; the error carries the step's words and type, and what became of the node.
func TestAddNodeUndoesAFailedAttach(t *testing.T) {
	for _, c := range []struct {
		failing, typ, msg string
		zero              any
		ran               string
	}{
		{"WaitCaughtUp", activities.ErrReplicationBroken, "node6 cannot replicate from node1: Got fatal error 1236. restore a backup of the primary node1 onto node6 first",
			activities.NodeCatchUp{}, "CheckNewNode, AttachNode, WaitCaughtUp, UndoAttach"},
		{"RegisterNode", activities.ErrEpochChanged, "the primary of demo changed while node6 caught up",
			activities.RegisterResult{}, "CheckNewNode, AttachNode, WaitCaughtUp, RegisterNode, UndoAttach"},
		{"AttachNode", activities.ErrReplicationBroken, "node6 cannot apply from node1",
			struct{}{}, "CheckNewNode, AttachNode, UndoAttach"},
	} {
		t.Run(c.failing, func(t *testing.T) {
			env := newNodeEnv()
			nodeHappy(env, nodePlan, c.failing)
			env.OnActivity(c.failing, mock.Anything, mock.Anything).Return(c.zero, temporal.NewNonRetryableApplicationError(c.msg, c.typ, nil))
			undone := 0
			env.OnActivity(a.UndoAttach, mock.Anything, mock.Anything).Return(
				func(_ context.Context, p activities.NewNodePlan) (activities.UndoAttachResult, error) {
					undone++
					if p.Node != newNode6 || p.Primary != node1 {
						t.Errorf("undo of %+v", p)
					}
					return activities.UndoAttachResult{Detached: true, Note: "node6 was detached (replication stopped and reset) and left read-only"}, nil
				})
			ran := ranActivities(env)
			env.ExecuteWorkflow(AddNode, nodeIn)
			err := env.GetWorkflowError()
			var app *temporal.ApplicationError
			if !errors.As(err, &app) || app.Type() != c.typ || !strings.Contains(app.Message(), c.msg) || !strings.Contains(app.Message(), "detached") {
				t.Fatalf("error %v; want a %s saying %q and that node6 was detached", err, c.typ, c.msg)
			}
			if app.Unwrap() != nil {
				t.Fatalf("the error keeps its cause, whose type could read as a refusal: %v", app.Unwrap())
			}
			if undone != 1 {
				t.Fatalf("undo ran %d times, want 1", undone)
			}
			if got := strings.Join(*ran, ", "); got != c.ran {
				t.Fatalf("steps %s, want %s", got, c.ran)
			}
		})
	}
}

// An undo that fails too is reported beside the first failure, never swallowed.
func TestAddNodeReportsAFailedUndo(t *testing.T) {
	env := newNodeEnv()
	nodeHappy(env, nodePlan, "WaitCaughtUp")
	env.OnActivity(a.WaitCaughtUp, mock.Anything, mock.Anything).Return(activities.NodeCatchUp{},
		temporal.NewNonRetryableApplicationError("node6 made no progress", activities.ErrNotCaughtUp, nil))
	env.OnActivity(a.UndoAttach, mock.Anything, mock.Anything).Return(activities.UndoAttachResult{},
		temporal.NewNonRetryableApplicationError("node6 does not answer", activities.ErrUnreachable, nil))
	env.ExecuteWorkflow(AddNode, nodeIn)
	err := env.GetWorkflowError()
	for _, want := range []string{"made no progress", "node6 does not answer", "by hand"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v lacks %q", err, want)
		}
	}
}

// A failover preempts a node add (it cancels the run): the attach is undone on a
// disconnected context, and the run ends cancelled, not failed.
func TestAddNodeCancelledIsUndone(t *testing.T) {
	env := newNodeEnv()
	nodeHappy(env, nodePlan, "WaitCaughtUp")
	env.OnActivity(a.WaitCaughtUp, mock.Anything, mock.Anything).After(5*time.Second).Return(activities.NodeCatchUp{Took: time.Second}, nil)
	undone := 0
	env.OnActivity(a.UndoAttach, mock.Anything, mock.Anything).Return(
		func(context.Context, activities.NewNodePlan) (activities.UndoAttachResult, error) {
			undone++
			return activities.UndoAttachResult{Detached: true, Note: "detached"}, nil
		})
	env.RegisterDelayedCallback(env.CancelWorkflow, time.Second)
	env.ExecuteWorkflow(AddNode, nodeIn)
	err := env.GetWorkflowError()
	var canceled *temporal.CanceledError
	if !errors.As(err, &canceled) {
		t.Fatalf("error %v; want cancelled", err)
	}
	if undone != 1 {
		t.Fatalf("undo ran %d times, want 1", undone)
	}
	env.AssertNotCalled(t, "RegisterNode", mock.Anything, mock.Anything)
}

// The new node is a member once registered: a removal of the old one that fails then is
// not undone, and is not reported as a refusal (that would say nothing changed).
func TestReplaceNodeWhoseRemovalFails(t *testing.T) {
	env := newNodeEnv()
	plan := nodePlan
	plan.Replace = &node3
	nodeHappy(env, plan, "RemoveNode")
	env.OnActivity(a.RemoveNode, mock.Anything, mock.Anything).Return("",
		temporal.NewNonRetryableApplicationError("node3 is the only replica of demo that may acknowledge", activities.ErrLastAcker, nil))
	in := nodeIn
	in.Replace = "node3"
	env.ExecuteWorkflow(AddNode, in)
	err := env.GetWorkflowError()
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || app.Type() != activities.ErrReplaceIncomplete || app.Unwrap() != nil ||
		!strings.Contains(app.Message(), "node6 was added to demo and is a member") || !strings.Contains(app.Message(), "only replica of demo") {
		t.Fatalf("error %v", err)
	}
	env.AssertNotCalled(t, "UndoAttach", mock.Anything, mock.Anything)
}
