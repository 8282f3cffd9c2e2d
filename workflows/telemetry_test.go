package workflows

import (
	"slices"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/worker"

	"github.com/baton-db/baton/internal/telemetry"
)

// The tracing interceptor gives a span for the switchover and one per step.
func TestSwitchoverSpans(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tel := &telemetry.Telemetry{Tracer: sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))}
	i, err := tel.Interceptor()
	if err != nil {
		t.Fatal(err)
	}
	env := newEnv(t)
	env.SetWorkerOptions(worker.Options{Interceptors: []interceptor.WorkerInterceptor{i}})
	happy(env)
	env.ExecuteWorkflow(PlannedSwitchover, SwitchoverInput{Cluster: "demo"})
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range rec.Ended() {
		names = append(names, s.Name())
	}
	want := []string{"RunWorkflow:PlannedSwitchover", "StartActivity:CheckPreconditions", "StartActivity:DemotePrimary",
		"StartActivity:PromoteCandidate", "StartActivity:PublishTopology", "StartActivity:VerifyRouting"}
	for _, w := range want {
		if !slices.Contains(names, w) {
			t.Errorf("no span %q; spans: %v", w, names)
		}
	}
}
