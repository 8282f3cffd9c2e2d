package start

import (
	"context"
	"testing"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/baton-db/baton/internal/version"
)

// Every start carries the starter's version in the memo (`baton postmortem` prints it).
func TestOptionsCarryTheStartersVersionInTheMemo(t *testing.T) {
	o := Options(WorkflowID("demo"), "baton", "planned", "demo", "planned switchover of demo")
	if got := o.Memo[MemoVersion]; got != version.Get().String() || got == "" {
		t.Fatalf("memo %v; want %s: %q", o.Memo, MemoVersion, version.Get().String())
	}
	if o.ID != "failover/demo" || o.TaskQueue != "baton" || !o.WorkflowExecutionErrorWhenAlreadyStarted {
		t.Fatalf("options: %+v", o)
	}
}

type recorder struct {
	Temporal
	opts []client.StartWorkflowOptions
}

func (r *recorder) ExecuteWorkflow(_ context.Context, o client.StartWorkflowOptions, _ any, _ ...any) (client.WorkflowRun, error) {
	r.opts = append(r.opts, o)
	return nil, nil
}

func (r *recorder) DescribeWorkflowExecution(context.Context, string, string) (*workflowservice.DescribeWorkflowExecutionResponse, error) {
	return &workflowservice.DescribeWorkflowExecutionResponse{}, nil
}

// The detector's and `baton failover`'s start, and the durability hooks', carry it too.
func TestStartsCarryTheMemo(t *testing.T) {
	r := &recorder{}
	s := Starter{Client: r, Queue: "baton"}
	if _, err := s.StartFailover(context.Background(), FailoverInput{Cluster: "demo"}, "failover"); err != nil {
		t.Fatal(err)
	}
	if err := s.StartDurabilityHooks(context.Background(), DurabilityInput{Cluster: "demo"}); err != nil {
		t.Fatal(err)
	}
	if len(r.opts) != 2 {
		t.Fatalf("%d starts", len(r.opts))
	}
	for _, o := range r.opts {
		if o.Memo[MemoVersion] != version.Get().String() {
			t.Errorf("%s: memo %v", o.ID, o.Memo)
		}
	}
}
