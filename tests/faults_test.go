package tests

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.temporal.io/api/enums/v1"

	"github.com/baton-db/baton/internal/loadgen"
	"github.com/baton-db/baton/internal/topology"
	"github.com/baton-db/baton/workflows"
)

// faultRow is one line of the fault summary printed at the end of the run.
type faultRow struct {
	fault    string
	survived bool
	loaded   bool // a write load ran and its acked writes were counted
	acked    int
	lost     int    // acked writes missing on at least one live member
	note     string // what went wrong, or what was expected to (a refusal, a reported loss)
}

var (
	faultsMu sync.Mutex
	faults   []faultRow
	rowOf    = map[string]*faultRow{} // by test name, for notes from helpers and cleanups
	// rebuilds counts the nodes rebuilt after a refused rejoin, expected or not, or after
	// mysqld aborted in crash recovery (startNode).
	rebuilds atomic.Int64
)

// noteFault adds text to the running test's row, if it has one.
func noteFault(t *testing.T, text string) {
	faultsMu.Lock()
	defer faultsMu.Unlock()
	if r := rowOf[t.Name()]; r != nil {
		r.note = strings.TrimPrefix(r.note+"; "+text, "; ")
	}
}

// fault starts a row of the fault summary for the running test. The row is recorded when
// the test ends, passed or failed, so a failing case shows as a failed row with the
// acked-write figures measured before any verdict, never as a missing one.
func fault(t *testing.T, name string) *faultRow {
	r := &faultRow{fault: name}
	faultsMu.Lock()
	rowOf[t.Name()] = r
	faultsMu.Unlock()
	t.Cleanup(func() {
		r.survived = !t.Failed()
		recordFault(*r)
	})
	return r
}

func recordFault(r faultRow) {
	faultsMu.Lock()
	defer faultsMu.Unlock()
	faults = append(faults, r)
}

// faultSummary is the table: a row's figures are what was measured, and a row that ran
// no load says so rather than "0 lost".
func faultSummary() string {
	var b strings.Builder
	survived, lost, acked, loaded := 0, 0, 0, 0
	b.WriteString("| fault | survived | acked writes | acked writes lost (on any live member) | note |\n|---|---|---|---|---|\n")
	for _, f := range faults {
		a, l := "no load", "—"
		if f.loaded {
			a, l = fmt.Sprint(f.acked), fmt.Sprint(f.lost)
			loaded++
			lost += f.lost
			acked += f.acked
		}
		verdict := "yes"
		if !f.survived {
			verdict = "**FAILED**"
		} else {
			survived++
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", f.fault, verdict, a, l, strings.ReplaceAll(f.note, "|", "/"))
	}
	fmt.Fprintf(&b, "| **%d faults injected** (%d under load) | **%d survived, %d failed** | %d | **%d** | %d nodes rebuilt (a refused rejoin, or mysqld that could not recover from its crash) |\n", len(faults), loaded, survived, len(faults)-survived, acked, lost, rebuilds.Load())
	return b.String()
}

// printFaultSummary prints the table and, when BATON_FAULT_SUMMARY names a file, writes it
// there too (the test command writes docs/fault-summary.md, which BENCHMARKS.md links).
func printFaultSummary() {
	if len(faults) == 0 {
		return
	}
	table := faultSummary()
	fmt.Print("\nFAULT SUMMARY\n\n" + table + "\n")
	if path := os.Getenv("BATON_FAULT_SUMMARY"); path != "" {
		rev, _ := exec.Command("git", "-C", root, "rev-parse", "--short", "HEAD").Output()
		head := fmt.Sprintf("# Fault summary\n\nWritten by the test command (`deploy/test.sh`) at the end of its run: %s, commit %s.\n"+
			"Each row is one fault case; a failed case is a row marked FAILED with what was measured before\n"+
			"the verdict. Lost writes are acked writes missing on at least one live member (the primary\n"+
			"and every replica in Consul).\n\n", time.Now().UTC().Format("2006-01-02 15:04 MST"), strings.TrimSpace(string(rev)))
		if err := os.WriteFile(path, []byte(head+table), 0o644); err != nil {
			fmt.Println("tests: write the fault summary:", err)
		}
	}
}

// assertHealthy checks what every fault case must leave true: one writable primary with
// every other member replicating from it; Consul and every HAProxy agree; every acked write
// on every live member; the members' GTID sets agree both ways; the semi-sync flags follow
// the durability policy; no workflow left open. The acked and lost counts go into row
// (when given) as they are measured, before any verdict, so a failed case reports them too.
func assertHealthy(t *testing.T, l *loadgen.Load, row *faultRow) {
	t.Helper()
	assertHealthyLosing(t, l, row, 0)
}

// assertHealthyLosing is assertHealthy for a double failure in which the failover reported
// transactions it had to leave behind on a dead node: at most that many acked writes may be
// missing.
func assertHealthyLosing(t *testing.T, l *loadgen.Load, row *faultRow, reported int) {
	t.Helper()
	assertHealthyIn(t, "demo", l, row, reported)
}

func assertHealthyIn(t *testing.T, cluster string, l *loadgen.Load, row *faultRow, reported int) {
	t.Helper()
	tp := readTopoOf(t, cluster)
	if row == nil {
		row = &faultRow{}
	}
	if l != nil {
		ids, per, lost := lostOnMembers(tp, l, 15*time.Second)
		row.loaded, row.acked, row.lost = true, len(ids), len(lost)
		if len(lost) > reported {
			row.note = describeLost(per)
			t.Fatalf("%d of %d acked writes lost on a live member (the failover reported %d transactions left behind): %s", len(lost), len(ids), reported, row.note)
		}
		if len(lost) > 0 {
			row.note = fmt.Sprintf("%d writes were on the lost candidate only, as the failover reported", len(lost))
			t.Logf("%d of %d acked writes are on the dead candidate only, as the failover reported", len(lost), len(ids))
		}
	}
	waitRoutingOf(t, cluster, tp.Primary.ServerID, 15*time.Second)
	for _, addr := range nodesOf(cluster) {
		db := adminDB(addr)
		var ro bool
		err := db.QueryRow("SELECT @@read_only").Scan(&ro)
		db.Close()
		if err != nil && !evictedAddr(tp, addr) {
			t.Fatalf("read_only of %s: %v", addr, err)
		}
		isPrimary := addr == tp.Primary.Addr()
		if isPrimary && ro {
			t.Fatalf("primary %s is read-only", addr)
		}
		if err == nil && !isPrimary && !ro && !evictedAddr(tp, addr) {
			t.Fatalf("%s is writable but is not the primary: split brain", addr)
		}
	}
	for _, r := range tp.Replicas { // an IO thread may take a retry interval to reconnect after a cut
		var src, io, sql string
		deadline := time.Now().Add(10 * time.Second)
		for {
			if src, io, sql = replicationOf(t, r); src == tp.Primary.IPv4 && io == "Yes" && sql == "Yes" || time.Now().After(deadline) {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		if src != tp.Primary.IPv4 || io != "Yes" || sql != "Yes" {
			t.Fatalf("replica %s replicates from %q io=%s sql=%s; want %s with both threads running", r.Name, src, io, sql, tp.Primary.Name)
		}
	}
	if p := memberProblems(tp, clusterCfg.Acks, 15*time.Second); len(p) > 0 {
		row.note = strings.Join(p, "; ")
		t.Fatalf("members of %s disagree:\n  %s", cluster, strings.Join(p, "\n  "))
	}
	assertNoWorkflowOpen(t)
}

func evictedAddr(tp topology.Topology, addr string) bool {
	for _, e := range tp.Evicted {
		if e.Node.Addr() == addr {
			return true
		}
	}
	return false
}

// assertNoWorkflowOpen waits briefly for the cluster's switchover or failover to end: a
// case is over only when Baton is.
func assertNoWorkflowOpen(t *testing.T) {
	t.Helper()
	c := temporalClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, cluster := range []string{"demo", "demo2"} {
		for {
			d, err := c.DescribeWorkflowExecution(ctx, workflows.WorkflowID(cluster), "")
			if err != nil || d.GetWorkflowExecutionInfo().GetStatus() != enums.WORKFLOW_EXECUTION_STATUS_RUNNING {
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("workflow %s still open: %s", workflows.WorkflowID(cluster), d.GetWorkflowExecutionInfo().GetType().GetName())
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
}

// crashWorkerAfter arms the worker's crash hook: it SIGKILLs itself right after it has run
// the next activity of type step, before reporting the result. It returns a function that
// waits for the crash and starts a new worker.
// A command that ends before the crash (it was refused, say) fails the test with its output.
func crashWorkerAfter(t *testing.T, step string) (recover func(ended <-chan string)) {
	t.Helper()
	waitCrash := armCrash(t, step)
	return func(ended <-chan string) {
		t.Helper()
		waitCrash(ended)
		sandboxCmd(t, "start-worker")
	}
}

// armCrash writes step ("Type" or "before:Type") to the worker's crash hook and returns a
// function that waits until that worker has died.
func armCrash(t *testing.T, step string) (waitCrash func(ended <-chan string)) {
	t.Helper()
	pid := pidOf(t, "worker")
	file := filepath.Join(sandbox["SANDBOX_STATE"], "fault-crash")
	if err := os.WriteFile(file, []byte(step), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(file) })
	return func(ended <-chan string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for syscall.Kill(pid, 0) == nil {
			if time.Now().After(deadline) {
				t.Fatalf("the worker did not crash in %s within 30 s", step)
			}
			select {
			case out := <-ended:
				t.Fatalf("the command ended before the worker crashed in %s:\n%s", step, out)
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
}

// failoverHeldAtPublish kills the primary with the worker's crash hook armed for the start
// of PublishTopology: the unplanned failover promotes, then is held there with no worker
// until the caller starts one. The old primary is rejoined at cleanup.
func failoverHeldAtPublish(t *testing.T, before topology.Topology) {
	t.Helper()
	waitCrash := armCrash(t, "before:PublishTopology")
	signalNode(t, before.Primary.Name, syscall.SIGKILL)
	t.Cleanup(func() { restartAndRejoin(t, before.Primary.Name) })
	waitCrash(nil)
}

// waitSwitchoverReady waits until a dry run of a switchover passes its checks: after the
// previous fault the replicas may need a moment to catch up.
// waitSwitchoverReady waits until a dry run of the switchover passes; args (for example
// "--to", "node3") name the switchover that is about to run.
func waitSwitchoverReady(t *testing.T, args ...string) (plan string) {
	t.Helper()
	var out string
	deadline := time.Now().Add(30 * time.Second)
	for {
		var code int
		if out, code = baton(t, append([]string{"switchover", "--cluster", "demo", "--dry-run"}, args...)...); code == 0 {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("the cluster is not ready for a switchover:\n%s", out)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func TestWorkerCrashAtEveryPlannedStep(t *testing.T) {
	for _, step := range []string{"CheckPreconditions", "CatchUpReplicas", "DemotePrimary", "PromoteCandidate", "PublishTopology",
		"ReparentOldPrimary", "VerifyRouting", "RestartHeartbeats", "RecordResult"} {
		t.Run(step, func(t *testing.T) {
			row := fault(t, "worker SIGKILL during planned "+step)
			waitSwitchoverReady(t)
			before := readTopo(t)
			l := startLoad(t, sandbox["LOCAL_WRITER_ADDR"], 200)
			time.Sleep(500 * time.Millisecond)
			recoverWorker := crashWorkerAfter(t, step)
			done := make(chan string, 1)
			go func() { out, _ := baton(t, "switchover", "--cluster", "demo"); done <- out }()
			recoverWorker(done)
			out := <-done
			if !strings.Contains(out, "succeeded planned") {
				t.Fatalf("switchover did not complete after the worker crashed in %s:\n%s", step, out)
			}
			if tp := readTopo(t); tp.Primary.Name == before.Primary.Name || tp.Epoch != before.Epoch+1 {
				t.Fatalf("after the crash in %s: primary %s epoch %d (was %s %d): a step applied twice or not at all",
					step, tp.Primary.Name, tp.Epoch, before.Primary.Name, before.Epoch)
			}
			assertHealthy(t, l, row)
		})
	}
}

func TestWorkerCrashAtEveryUnplannedStep(t *testing.T) {
	for _, step := range []string{"ConfirmPrimaryDead", "ChooseCandidate", "ProbePrimary", "WaitRelayLog", "FenceOldPrimary", "StopOldPrimary", "PromoteCandidate",
		"PublishTopology", "ReparentReplica", "VerifyRouting", "RestartHeartbeats", "EvictNode", "RecordResult"} {
		t.Run(step, func(t *testing.T) {
			row := fault(t, "worker SIGKILL during unplanned "+step)
			ageLastFailover(t, time.Hour)
			before := readTopo(t)
			l := startLoad(t, sandbox["LOCAL_WRITER_ADDR"], 200)
			time.Sleep(500 * time.Millisecond)
			recoverWorker := crashWorkerAfter(t, step)
			signalNode(t, before.Primary.Name, syscall.SIGKILL)
			t.Cleanup(func() { restartAndRejoin(t, before.Primary.Name) })
			recoverWorker(nil)
			c := temporalClient(t)
			var res workflows.Result
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer cancel()
			if err := c.GetWorkflow(ctx, workflows.WorkflowID("demo"), "").Get(ctx, &res); err != nil || res.Outcome != "succeeded" {
				t.Fatalf("failover after the worker crashed in %s: %v %+v", step, err, res)
			}
			if tp := readTopo(t); tp.Epoch != before.Epoch+1 {
				t.Fatalf("epoch %d after one failover from %d: a step applied twice", tp.Epoch, before.Epoch)
			}
			assertHealthy(t, l, row)
		})
	}
}

func pidOf(t *testing.T, name string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(sandbox["SANDBOX_STATE"], "pids", name+".pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// The primary cut off from everyone (detector, replicas, HAProxies): a failover, and the
// isolated old primary receives no write through any HAProxy.
func TestPartitionedPrimaryIsReplacedWithoutSplitBrain(t *testing.T) {
	row := fault(t, "primary partitioned from everyone (iptables DROP)")
	ageLastFailover(t, time.Hour)
	before := readTopo(t)
	l := startLoad(t, sandbox["LOCAL_WRITER_ADDR"], 200)
	time.Sleep(time.Second)
	// The host itself still reaches its own server, as its agent does locally in production.
	p := before.Primary.IPv4
	t.Cleanup(func() { restartAndRejoin(t, before.Primary.Name) }) // registered first: runs after the unblock
	unblock := cut(t, [][]string{{"INPUT", "-d", p, "-j", "DROP"}, {"INPUT", "-s", p, "-j", "DROP"}, {"INPUT", "-s", p, "-d", p, "-j", "ACCEPT"}})
	cut := time.Now()
	after := waitNewPrimary(t, before.Primary.Name, 20*time.Second)
	fmt.Printf("METRIC partition_failover=%s (cut -> Consul names %s)\n", time.Since(cut).Round(time.Millisecond), after.Primary.Name)
	waitRouting(t, after.Primary.ServerID, 15*time.Second)
	// Every writer endpoint writes a marker: none may reach the old primary.
	marker := time.Now().UnixNano()
	for name, addr := range writers() {
		db := appDB(addr)
		var err error
		for try := 0; try < 20; try++ { // as a client would: reconnect and retry
			_, err = db.Exec("INSERT INTO app.writes (id, note) VALUES (?, ?)", marker, "marker "+name)
			if err == nil || strings.Contains(err.Error(), "Duplicate entry") { // an earlier try landed
				err = nil
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err != nil {
			t.Fatalf("write through %s: %v", name, err)
		}
		marker++
		db.Close()
	}
	// Look on the isolated node itself, over its Unix socket, while it still runs: a write
	// that reached it waits there for a semi-sync ack, uncommitted, and READ UNCOMMITTED
	// shows it too.
	// Its agent may have stopped it already (on the lease's revocation, with commits held):
	// then only the look after the restart counts.
	markers := fmt.Sprintf("SELECT COUNT(*) FROM app.writes WHERE note LIKE 'marker %%' AND id >= %d", marker-3)
	n, err := trySocketQuery(before.Primary.Name, "SET SESSION TRANSACTION ISOLATION LEVEL READ UNCOMMITTED; "+markers)
	switch {
	case err != nil && strings.Contains(err.Error(), "ERROR 2002"):
		t.Logf("%s's mysqld is not running (its agent stopped it): %v", before.Primary.Name, err)
	case err != nil:
		t.Fatalf("count markers on the isolated %s: %v", before.Primary.Name, err)
	case n != "0":
		t.Fatalf("split brain: %s writes reached the isolated old primary through HAProxy", n)
	}
	// Stop it before it could commit on its own (semi-sync timeout), heal the link, and look
	// again at what it kept, unless its crash recovery failed and it is now a copy of the
	// new primary (which holds the markers).
	_ = syscall.Kill(nodePID(t, before.Primary.Name), syscall.SIGKILL)
	unblock()
	if startNode(t, before.Primary.Name) {
		t.Logf("%s was rebuilt: only the look before the kill counts", before.Primary.Name)
	} else if n := socketQuery(t, before.Primary.Name, markers); n != "0" {
		t.Fatalf("split brain: %s writes reached the isolated old primary through HAProxy", n)
	}
	assertHealthy(t, l, row)
}

func TestConsulUnavailablePlannedSwitchoverRefuses(t *testing.T) {
	fault(t, "Consul unavailable during a planned switchover (refused)")
	before := snapshot(t)
	consul := pidOf(t, "consul")
	_ = syscall.Kill(consul, syscall.SIGSTOP)
	t.Cleanup(func() { _ = syscall.Kill(consul, syscall.SIGCONT) })
	out, code := baton(t, "switchover", "--cluster", "demo")
	_ = syscall.Kill(consul, syscall.SIGCONT)
	if code == 0 || !strings.Contains(strings.ToLower(out), "consul") {
		t.Fatalf("switchover with Consul down: exit %d\n%s", code, out)
	}
	t.Logf("refused: %s", lastLine(out))
	assertUnchanged(t, before)
}

// Consul stops answering just as an unplanned failover is about to publish (the worker dies
// at that step and Consul is frozen before a new worker starts). The failover holds at
// PublishTopology, retrying, and finishes on its own once Consul is back.
func TestConsulUnavailableDuringUnplannedPublish(t *testing.T) {
	row := fault(t, "Consul frozen during an unplanned failover's publish (held, then finished)")
	ageLastFailover(t, time.Hour)
	before := readTopo(t)
	l := startLoad(t, sandbox["LOCAL_WRITER_ADDR"], 200)
	time.Sleep(500 * time.Millisecond)
	failoverHeldAtPublish(t, before)
	consul := pidOf(t, "consul")
	_ = syscall.Kill(consul, syscall.SIGSTOP)
	t.Cleanup(func() { _ = syscall.Kill(consul, syscall.SIGCONT) })
	sandboxCmd(t, "start-worker")
	// The new worker takes the failover over once the lost workflow task times out (10 s); its
	// first, local round of the publish meets a frozen Consul for 10 s, then the activity
	// rounds begin, and each waits for Consul.
	waitAttempt(t, "PublishTopology", 1, 60*time.Second)
	c := temporalClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	v, err := c.QueryWorkflow(ctx, workflows.WorkflowID("demo"), "", workflows.QueryCurrentStep)
	var step string
	if err != nil || v.Get(&step) != nil || !strings.Contains(step, "publish topology") {
		t.Fatalf("with Consul frozen the failover should hold at publish topology, is at %q (%v)", step, err)
	}
	frozen := time.Now()
	_ = syscall.Kill(consul, syscall.SIGCONT)
	var res workflows.Result
	if err := c.GetWorkflow(ctx, workflows.WorkflowID("demo"), "").Get(ctx, &res); err != nil || res.Outcome != "succeeded" {
		t.Fatalf("failover after Consul came back: %v %+v", err, res)
	}
	t.Logf("held at %q while Consul was frozen; finished %s after it came back", step, time.Since(frozen).Round(100*time.Millisecond))
	if tp := readTopo(t); tp.Epoch != before.Epoch+1 || tp.Primary.Name == before.Primary.Name {
		t.Fatalf("after Consul came back: primary %s epoch %d (was %s %d)", tp.Primary.Name, tp.Epoch, before.Primary.Name, before.Epoch)
	}
	assertHealthy(t, l, row)
}

func TestUnplannedFailoverWithDeadConsulTemplateNamesTheHAProxy(t *testing.T) {
	row := fault(t, "consul-template dead on haproxy-b during an unplanned failover")
	ageLastFailover(t, time.Hour)
	before := readTopo(t)
	_ = syscall.Kill(pidOf(t, "consul-template-b"), syscall.SIGINT)
	t.Cleanup(func() { sandboxCmd(t, "up"); waitHAProxyChecks(t, true) })
	waitHAProxyChecks(t, false)
	start := time.Now()
	signalNode(t, before.Primary.Name, syscall.SIGKILL)
	t.Cleanup(func() { restartAndRejoin(t, before.Primary.Name) })
	after := waitNewPrimary(t, before.Primary.Name, 15*time.Second)
	c := temporalClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	err := c.GetWorkflow(ctx, workflows.WorkflowID("demo"), "").Get(ctx, nil)
	if err == nil || !strings.Contains(err.Error(), "haproxy-b") {
		t.Fatalf("the failover did not name haproxy-b as not converged: %v", err)
	}
	t.Logf("failover to %s proceeded; VerifyRouting reported: %v (after %s)", after.Primary.Name, err, time.Since(start).Round(time.Second))
	sandboxCmd(t, "up") // consul-template back: routing converges
	waitHAProxyChecks(t, true)
	assertHealthy(t, nil, row)
}

func TestTemporalServerRestartMidSwitchover(t *testing.T) {
	row := fault(t, "Temporal server restarted mid-switchover")
	before := readTopo(t)
	l := startLoad(t, sandbox["LOCAL_WRITER_ADDR"], 200)
	out, code := baton(t, "switchover", "--cluster", "demo", "--wait=false")
	if code != 0 {
		t.Fatal(out)
	}
	waitStepWhere(t, 10*time.Second, func(step string) bool { return step != "starting" && step != "check preconditions" })
	temporal := pidOf(t, "temporal")
	_ = syscall.Kill(temporal, syscall.SIGTERM)
	waitFor(t, 15*time.Second, func() bool { return syscall.Kill(temporal, 0) != nil })
	sandboxCmd(t, "up")
	c := temporalClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var res workflows.Result
	if err := c.GetWorkflow(ctx, workflows.WorkflowID("demo"), "").Get(ctx, &res); err != nil || res.Outcome != "succeeded" {
		t.Fatalf("switchover after the Temporal restart: %v %+v", err, res)
	}
	if tp := readTopo(t); tp.Primary.Name == before.Primary.Name {
		t.Fatal("the primary did not move")
	}
	assertHealthy(t, l, row)
}

// The Temporal server goes down in the middle of an unplanned failover (the worker dies as
// PublishTopology starts, so the failover is held there), and comes back with a new worker:
// the failover completes from where it was.
func TestTemporalServerRestartMidUnplannedFailover(t *testing.T) {
	row := fault(t, "Temporal server restarted mid-failover (unplanned, held at publish)")
	ageLastFailover(t, time.Hour)
	before := readTopo(t)
	l := startLoad(t, sandbox["LOCAL_WRITER_ADDR"], 200)
	time.Sleep(500 * time.Millisecond)
	failoverHeldAtPublish(t, before)
	temporal := pidOf(t, "temporal")
	_ = syscall.Kill(temporal, syscall.SIGTERM)
	waitFor(t, 15*time.Second, func() bool { return syscall.Kill(temporal, 0) != nil })
	sandboxCmd(t, "start-temporal")
	sandboxCmd(t, "start-worker")
	c := temporalClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var res workflows.Result
	if err := c.GetWorkflow(ctx, workflows.WorkflowID("demo"), "").Get(ctx, &res); err != nil || res.Outcome != "succeeded" || res.Kind != "unplanned" {
		t.Fatalf("unplanned failover after the Temporal restart: %v %+v", err, res)
	}
	if tp := readTopo(t); tp.Epoch != before.Epoch+1 || tp.Primary.Name == before.Primary.Name {
		t.Fatalf("after the Temporal restart: primary %s epoch %d (was %s %d)", tp.Primary.Name, tp.Epoch, before.Primary.Name, before.Epoch)
	}
	assertHealthy(t, l, row)
}

func TestBadInputIsRefusedAndChangesNothing(t *testing.T) {
	row := fault(t, "bad input table")
	before := snapshot(t)
	dir := t.TempDir()
	badConfig := func(name, old, repl string) string {
		b, _ := os.ReadFile(sandbox["BATON_CONFIG"])
		p := filepath.Join(dir, name+".yaml")
		_ = os.WriteFile(p, []byte(strings.Replace(string(b), old, repl, 1)), 0o600)
		return p
	}
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"unknown cluster", []string{"switchover", "--cluster", "nope"}, `unknown cluster "nope"`},
		{"unknown candidate", []string{"switchover", "--cluster", "demo", "--to", "node9"}, "is not a member"},
		{"candidate is the primary", []string{"switchover", "--cluster", "demo", "--to", readTopo(t).Primary.Name}, "already the primary"},
		{"SQL in the cluster name", []string{"switchover", "--cluster", "demo'; DROP TABLE app.writes; --"}, "not a valid cluster name"},
		{"shell in the candidate", []string{"switchover", "--cluster", "demo", "--to", "$(touch /tmp/baton-pwned)"}, "is not a member"},
		{"SQL in the rejoin host", []string{"rejoin", "--cluster", "demo", "--host", "x' OR '1'='1"}, "not an evicted node"},
		{"malformed config key", []string{"--config", badConfig("badkey", "temporal:", "tempral:"), "status", "--cluster", "demo"}, "tempral"},
		{"negative timeout", []string{"--config", badConfig("neg", "probe_timeout: 400ms", "probe_timeout: -3s"), "status", "--cluster", "demo"}, "detector.probe_timeout"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, code := baton(t, c.args...)
			if code == 0 || !strings.Contains(out, c.want) {
				t.Fatalf("exit %d, want a refusal saying %q:\n%s", code, c.want, out)
			}
			t.Logf("refused: %s", lastLine(out))
		})
	}
	row.fault = fmt.Sprintf("bad input table (%d cases, all refused)", len(cases))
	if _, err := os.Stat("/tmp/baton-pwned"); err == nil {
		t.Fatal("a shell metacharacter in an argument was executed")
	}
	assertUnchanged(t, before)
}
