package tests

import (
	"context"
	"encoding/hex"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
)

// otlpReceiver is an OTLP/gRPC trace receiver: it keeps every span it is sent, by service.
type otlpReceiver struct {
	collectortrace.UnimplementedTraceServiceServer
	mu    sync.Mutex
	spans map[string][]*tracepb.Span // service.name -> spans
}

func (r *otlpReceiver) Export(_ context.Context, req *collectortrace.ExportTraceServiceRequest) (*collectortrace.ExportTraceServiceResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rs := range req.GetResourceSpans() {
		service := ""
		for _, a := range rs.GetResource().GetAttributes() {
			if a.GetKey() == "service.name" {
				service = a.GetValue().GetStringValue()
			}
		}
		for _, ss := range rs.GetScopeSpans() {
			r.spans[service] = append(r.spans[service], ss.GetSpans()...)
		}
	}
	return &collectortrace.ExportTraceServiceResponse{}, nil
}

func (r *otlpReceiver) byName(service string) map[string]*tracepb.Span {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]*tracepb.Span{}
	for _, s := range r.spans[service] {
		out[s.GetName()] = s
	}
	return out
}

// A switchover started by the CLI and run by a worker, both exporting to an OTLP receiver:
// one trace runs from the operator's command through the workflow to every step's activity.
func TestSwitchoverTraceReachesAnOTLPReceiver(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rec := &otlpReceiver{spans: map[string][]*tracepb.Span{}}
	srv := grpc.NewServer()
	collectortrace.RegisterTraceServiceServer(srv, rec)
	go func() { _ = srv.Serve(ln) }()
	defer srv.Stop()
	env := append(os.Environ(), "BATON_TELEMETRY_TRACES=otlp", "BATON_TELEMETRY_OTLP_ENDPOINT="+ln.Addr().String())

	// The sandbox's worker makes way for one that exports traces, and comes back after.
	stopWorker(t)
	t.Cleanup(func() { sandboxCmd(t, "start-worker") })
	logf, err := os.Create(filepath.Join(t.TempDir(), "worker.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	w := exec.Command(filepath.Join(sandbox["SANDBOX_STATE"], "bin", "baton-worker"), "--config", sandbox["BATON_CONFIG"])
	w.Env, w.Stdout, w.Stderr = env, logf, logf
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			_ = w.Process.Signal(syscall.SIGTERM)
			_ = w.Wait()
		}
	}
	defer stop()

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cli := exec.CommandContext(ctx, sandbox["BATON_BIN"], "--config", sandbox["BATON_CONFIG"], "switchover", "--cluster", "demo")
	cli.Env = env
	if out, err := cli.CombinedOutput(); err != nil {
		t.Fatalf("switchover: %v\n%s", err, out)
	}
	stop() // the worker flushes its spans as it exits

	cliSpans, workerSpans := rec.byName("baton-cli"), rec.byName("baton-worker")
	start, ok := cliSpans["StartWorkflow:PlannedSwitchover"]
	if !ok {
		t.Fatalf("the CLI exported no StartWorkflow:PlannedSwitchover span; it exported %v", keys(cliSpans))
	}
	trace := hex.EncodeToString(start.GetTraceId())
	for _, name := range []string{"RunWorkflow:PlannedSwitchover", "RunActivity:CatchUpReplicas", "RunActivity:DemotePrimary",
		"RunActivity:PromoteCandidate", "RunActivity:PublishTopology", "RunActivity:ReparentOldPrimary",
		"RunActivity:VerifyRouting", "RunActivity:RestartHeartbeats"} {
		s, ok := workerSpans[name]
		switch {
		case !ok:
			t.Errorf("the worker exported no %s span; it exported %v", name, keys(workerSpans))
		case hex.EncodeToString(s.GetTraceId()) != trace:
			t.Errorf("%s is in trace %x, not the CLI's %s", name, s.GetTraceId(), trace)
		case s.GetEndTimeUnixNano() < s.GetStartTimeUnixNano():
			t.Errorf("%s ends before it starts", name)
		}
	}
	t.Logf("trace %s: %d spans from the CLI, %d from the worker", trace, len(cliSpans), len(workerSpans))
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// stopWorker stops the sandbox's worker and waits until it has exited.
func stopWorker(t *testing.T) {
	t.Helper()
	pid := pidOf(t, "worker")
	_ = syscall.Kill(pid, syscall.SIGTERM)
	waitFor(t, 15*time.Second, func() bool { return syscall.Kill(pid, 0) != nil })
}
