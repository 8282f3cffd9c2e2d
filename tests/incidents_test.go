package tests

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.temporal.io/api/enums/v1"

	"github.com/baton-db/baton/internal/loadgen"
	"github.com/baton-db/baton/internal/topology"
	"github.com/baton-db/baton/workflows"
)

// Compound incidents: a dead primary gets its failover whatever else is going on.

// waitStep waits until the cluster's running workflow reports a current step containing want.
func waitStep(t *testing.T, want string, limit time.Duration) {
	t.Helper()
	waitStepWhere(t, limit, func(step string) bool { return strings.Contains(step, want) })
}

// waitStepWhere waits until the cluster's running workflow reports a current step that ok accepts.
func waitStepWhere(t *testing.T, limit time.Duration, ok func(step string) bool) {
	t.Helper()
	c := temporalClient(t)
	var step string
	waitFor(t, limit, func() bool {
		v, err := c.QueryWorkflow(context.Background(), workflows.WorkflowID("demo"), "", workflows.QueryCurrentStep)
		return err == nil && v.Get(&step) == nil && ok(step)
	})
}

// waitAttempt waits until the cluster's running workflow has activity typ started at attempt
// n or later (a retry picked up by a worker).
func waitAttempt(t *testing.T, typ string, n int32, limit time.Duration) {
	t.Helper()
	c := temporalClient(t)
	waitFor(t, limit, func() bool {
		d, err := c.DescribeWorkflowExecution(context.Background(), workflows.WorkflowID("demo"), "")
		if err != nil {
			return false
		}
		for _, a := range d.GetPendingActivities() {
			if a.GetActivityType().GetName() == typ && a.GetAttempt() >= n && a.GetState() == enums.PENDING_ACTIVITY_STATE_STARTED {
				return true
			}
		}
		return false
	})
}

// lastFailover waits for the newest run of the cluster's workflow to end and returns its result.
func lastFailover(t *testing.T) workflows.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var res workflows.Result
	if err := temporalClient(t).GetWorkflow(ctx, workflows.WorkflowID("demo"), "").Get(ctx, &res); err != nil {
		t.Fatalf("failover: %v (%+v)", err, res)
	}
	if res.Kind != "unplanned" || res.Outcome != "succeeded" {
		t.Fatalf("want a succeeded unplanned failover, got %+v", res)
	}
	return res
}

// outage reports the load's longest stretch without an acked write as a METRIC line.
func outage(t *testing.T, metric string, l interface {
	LongestGap() (time.Duration, time.Time)
}) time.Duration {
	gap, _ := l.LongestGap()
	fmt.Printf("METRIC %s=%s\n", metric, gap.Round(time.Millisecond))
	t.Logf("client outage %s", gap.Round(time.Millisecond))
	return gap
}

// lockTable holds table with LOCK TABLES ... WRITE on every node, from a session of its own,
// until the returned function (or the test's end) releases them.
func lockTable(t *testing.T, nodes []topology.Node, table string) (unlock func()) {
	t.Helper()
	var release []func()
	for _, n := range nodes {
		db := adminDB(n.Addr())
		conn, err := db.Conn(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.ExecContext(context.Background(), "LOCK TABLES "+table+" WRITE"); err != nil {
			t.Fatal(err)
		}
		release = append(release, func() { _, _ = conn.ExecContext(context.Background(), "UNLOCK TABLES"); conn.Close(); db.Close() })
	}
	var once sync.Once
	unlock = func() {
		once.Do(func() {
			for _, f := range release {
				f()
			}
		})
	}
	t.Cleanup(unlock)
	return unlock
}

// underLoad starts a fault case: its row in the summary, no anti-flap period in the way,
// and a pooled write load through the local writer for half a second already.
func underLoad(t *testing.T, name string) (*faultRow, topology.Topology, *loadgen.Load) {
	t.Helper()
	return underLoadAt(t, name, 200)
}

// underLoadAt is underLoad at rate writes a second.
func underLoadAt(t *testing.T, name string, rate int) (*faultRow, topology.Topology, *loadgen.Load) {
	t.Helper()
	row := fault(t, name)
	ageLastFailover(t, time.Hour)
	before := readTopo(t)
	l := startLoad(t, sandbox["LOCAL_WRITER_ADDR"], rate)
	time.Sleep(500 * time.Millisecond)
	return row, before, l
}

// switchoverAwaitingApproval starts a switchover that holds at its approval gate.
func switchoverAwaitingApproval(t *testing.T) {
	t.Helper()
	waitSwitchoverReady(t)
	if out, code := baton(t, "switchover", "--cluster", "demo", "--require-approval", "--wait=false"); code != 0 {
		t.Fatal(out)
	}
	waitStep(t, "waiting for approval", 20*time.Second)
}

func mustExecOn(t *testing.T, addr string, stmts ...string) {
	t.Helper()
	db := adminDB(addr)
	defer db.Close()
	mustExec(t, db, stmts...)
}

// The primary dies while a switchover waits for approval: the switchover is cancelled
// (preempted) and the failover runs at once, with nothing lost.
func TestDeadPrimaryPreemptsASwitchoverWaitingForApproval(t *testing.T) {
	row := fault(t, "primary killed while a switchover waits for approval (preempted)")
	ageLastFailover(t, time.Hour)
	switchoverAwaitingApproval(t)
	before := readTopo(t)
	c := temporalClient(t)
	d, err := c.DescribeWorkflowExecution(context.Background(), workflows.WorkflowID("demo"), "")
	if err != nil {
		t.Fatal(err)
	}
	switchover := d.GetWorkflowExecutionInfo().GetExecution().GetRunId()
	l := startLoad(t, sandbox["LOCAL_WRITER_ADDR"], 200)
	time.Sleep(500 * time.Millisecond)
	killed := time.Now()
	signalNode(t, before.Primary.Name, syscall.SIGKILL)
	t.Cleanup(func() { restartAndRejoin(t, before.Primary.Name) })
	after := waitNewPrimary(t, before.Primary.Name, 15*time.Second)
	t.Logf("Consul names %s %s after the kill", after.Primary.Name, time.Since(killed).Round(time.Millisecond))
	res := lastFailover(t)
	sd, err := c.DescribeWorkflowExecution(context.Background(), workflows.WorkflowID("demo"), switchover)
	if err != nil {
		t.Fatal(err)
	}
	if st := sd.GetWorkflowExecutionInfo().GetStatus(); st != enums.WORKFLOW_EXECUTION_STATUS_CANCELED {
		t.Fatalf("the switchover ended %s, want cancelled (preempted)", st)
	}
	if res.From != before.Primary.Name {
		t.Fatalf("failover from %s, want %s", res.From, before.Primary.Name)
	}
	time.Sleep(time.Second) // writes flow again before the load stops
	assertHealthy(t, l, row)
	outage(t, "preempt_outage", l)
}

// `baton failover --force` never attaches to a switchover silently: it preempts it. On a
// healthy primary the failover then ends as a no-op and nothing moves.
func TestForcedFailoverPreemptsAWaitingSwitchover(t *testing.T) {
	fault(t, "baton failover --force while a switchover waits for approval (preempted, primary alive: no-op)")
	ageLastFailover(t, time.Hour)
	switchoverAwaitingApproval(t)
	before := readTopo(t)
	out, code := baton(t, "failover", "--cluster", "demo", "--force")
	if !strings.Contains(out, "cancelled the running switchover") {
		t.Fatalf("exit %d; want the switchover preempted:\n%s", code, out)
	}
	if !strings.Contains(out, "no-op") {
		t.Fatalf("the primary answers: the forced failover should end as a no-op:\n%s", out)
	}
	if after := readTopo(t); after.Primary.Name != before.Primary.Name || after.Epoch != before.Epoch {
		t.Fatalf("the topology moved: %s epoch %d (was %s %d)", after.Primary.Name, after.Epoch, before.Primary.Name, before.Epoch)
	}
	waitFor(t, 10*time.Second, func() bool { return replicatingAll(t, before) })
	assertHealthy(t, nil, nil)
}

// replicatingAll reports whether every replica's IO and SQL threads run.
func replicatingAll(t *testing.T, tp topology.Topology) bool {
	for _, r := range tp.Replicas {
		db := adminDB(r.Addr())
		st := replicaStatus(t, db)
		db.Close()
		if st["Slave_IO_Running"] != "Yes" || st["Slave_SQL_Running"] != "Yes" {
			return false
		}
	}
	return true
}

func stepNames(r workflows.Result) []string {
	var out []string
	for _, s := range r.Steps {
		out = append(out, s.Name)
	}
	return out
}

// An operator stopped both replicas' SQL threads (no error), then the primary died: the
// relay logs hold every acked write, so the threads are started and the failover goes on.
func TestStoppedSQLThreadsDoNotBlockAFailover(t *testing.T) {
	row, before, l := underLoad(t, "primary killed while both replicas' SQL threads were stopped (no error)")
	for _, r := range before.Replicas {
		mustExecOn(t, r.Addr(), "STOP SLAVE SQL_THREAD")
		t.Cleanup(func() { db := adminDB(r.Addr()); _, _ = db.Exec("START SLAVE SQL_THREAD"); db.Close() })
	}
	time.Sleep(time.Second) // acked writes wait in the relay logs
	signalNode(t, before.Primary.Name, syscall.SIGKILL)
	t.Cleanup(func() { restartAndRejoin(t, before.Primary.Name) })
	waitNewPrimary(t, before.Primary.Name, 15*time.Second)
	lastFailover(t)
	time.Sleep(time.Second)
	assertHealthy(t, l, row)
	outage(t, "stopped_sql_outage", l)
}

// A candidate whose relay log takes longer than mysql.read_timeout (5 s) to apply is still
// promoted: catchup_timeout (10 s on the sandbox) bounds the wait, not the connection.
func TestRelayLogSlowerThanReadTimeoutIsStillPromoted(t *testing.T) {
	row, before, l := underLoad(t, "primary killed while the replicas' relay logs need 7 s to apply")
	// A session on each replica holds the load's table: its SQL thread waits for the lock.
	unlock := lockTable(t, before.Replicas, "app.writes")
	time.Sleep(500 * time.Millisecond)
	signalNode(t, before.Primary.Name, syscall.SIGKILL)
	t.Cleanup(func() { restartAndRejoin(t, before.Primary.Name) })
	time.AfterFunc(7*time.Second, unlock)
	waitNewPrimary(t, before.Primary.Name, 30*time.Second)
	res := lastFailover(t)
	for _, s := range res.Steps {
		if s.Name == "wait for relay log" {
			t.Logf("wait for relay log took %s", s.Duration)
		}
	}
	time.Sleep(time.Second)
	assertHealthy(t, l, row)
}

// The primary's zone goes silent whole (its host and its zone mate's, agents included):
// the failover promotes the other zone's replica, evicts the silent mate instead of waiting
// for it, and under cross_zone durability no acked write is lost.
func TestZoneOutageFailsOverToTheOtherZone(t *testing.T) {
	row := fault(t, "primary's zone silent (primary and zone mate iptables DROP) under load")
	ageLastFailover(t, time.Hour)
	before := readTopo(t)
	var mates []topology.Node
	for _, r := range before.Replicas {
		if r.Zone == before.Primary.Zone {
			mates = append(mates, r)
		}
	}
	if len(mates) == 0 {
		// Put the primary in the zone with two nodes first.
		var to string
		for _, r := range before.Replicas {
			for _, o := range before.Replicas {
				if o.Name != r.Name && o.Zone == r.Zone {
					to = r.Name
				}
			}
		}
		waitSwitchoverReady(t, "--to", to) // it may still be applying the last test's backlog
		if out, code := baton(t, "switchover", "--cluster", "demo", "--to", to); code != 0 {
			t.Fatal(out)
		}
		ageLastFailover(t, time.Hour)
		before = readTopo(t)
		mates = nil
		for _, r := range before.Replicas {
			if r.Zone == before.Primary.Zone {
				mates = append(mates, r)
			}
		}
	}
	zone := append([]topology.Node{before.Primary}, mates...)
	l := startLoad(t, sandbox["LOCAL_WRITER_ADDR"], 200)
	time.Sleep(time.Second)
	for _, n := range zone {
		t.Cleanup(func() { restartAndRejoin(t, n.Name) }) // last: after the link is back
	}
	var rules [][]string
	for _, n := range zone {
		rules = append(rules, []string{"INPUT", "-d", n.IPv4, "-j", "DROP"}, []string{"INPUT", "-s", n.IPv4, "-j", "DROP"})
	}
	unblock := cut(t, rules)
	stopZone := func() { // the silent hosts never come back as they were
		for _, n := range zone {
			_ = syscall.Kill(nodePID(t, n.Name), syscall.SIGKILL)
		}
	}
	t.Cleanup(stopZone)
	cutAt := time.Now()
	after := waitNewPrimary(t, before.Primary.Name, 30*time.Second)
	// Stopped before the semi-sync timeout (10 s) lets the isolated primary commit alone.
	stopZone()
	t.Logf("Consul names %s (zone %s) %s after the cut", after.Primary.Name, after.Primary.Zone, time.Since(cutAt).Round(time.Millisecond))
	if after.Primary.Zone == before.Primary.Zone {
		t.Fatalf("promoted %s in the silent zone %s", after.Primary.Name, after.Primary.Zone)
	}
	res := lastFailover(t)
	for _, m := range mates {
		if !slices.ContainsFunc(after.Evicted, func(e topology.Eviction) bool { return e.Node.Name == m.Name }) {
			t.Fatalf("the silent zone mate %s is not evicted: %+v", m.Name, after.Evicted)
		}
	}
	t.Logf("failover steps: %v", stepNames(res))
	time.Sleep(time.Second)
	unblock()
	assertHealthy(t, l, row)
	outage(t, "zone_outage_outage", l)
}

// The chosen candidate dies between the choice and its promotion: the failover chooses
// again among the live replicas.
func TestCandidateLostBeforePromotionIsReplaced(t *testing.T) {
	row, before, l := underLoad(t, "chosen candidate killed before its promotion (chosen again)")
	if len(before.Replicas) < 2 {
		t.Fatalf("this case needs two replicas; the cluster has %d (an earlier case left a node out)", len(before.Replicas))
	}
	waitCrash := armCrash(t, "before:PromoteCandidate")
	signalNode(t, before.Primary.Name, syscall.SIGKILL)
	// The old primary may hold what only the lost candidate acknowledged: the reported loss.
	t.Cleanup(func() { restartAndRejoinExpecting(t, before.Primary.Name, "ErrantGTIDs") })
	waitCrash(nil)
	t.Cleanup(func() { sandboxCmd(t, "start-worker") }) // before the rejoins, should the test fail here
	// The worker died with the plan made; the candidate dies too.
	candidate := searchAttribute(t, "BatonNewPrimary")
	if candidate == "" || candidate == before.Primary.Name {
		t.Fatalf("no candidate chosen yet: %q", candidate)
	}
	signalNode(t, candidate, syscall.SIGKILL)
	t.Cleanup(func() { restartAndRejoinExpecting(t, candidate, "ErrantGTIDs") }) // it may hold what nobody else received
	// The anti-flap record is written with the publish: check it while the run is held.
	sandboxCmd(t, "start-worker")
	after := waitNewPrimary(t, before.Primary.Name, 30*time.Second)
	if after.Primary.Name == candidate {
		t.Fatalf("the dead candidate %s was promoted", candidate)
	}
	res := lastFailover(t)
	if res.To != after.Primary.Name || !slices.ContainsFunc(after.Evicted, func(e topology.Eviction) bool { return e.Node.Name == candidate }) {
		t.Fatalf("failover to %s, evicted %+v; want %s evicted", res.To, after.Evicted, candidate)
	}
	// Both other nodes are dead: an acked write that only the lost candidate had received
	// is gone until it returns. The failover must say so; at most that many may be missing.
	time.Sleep(time.Second)
	assertHealthyLosing(t, l, row, leftBehindCount(t, res, after.Primary))
}

// The same double failure, made certain: the other replica stopped receiving before the
// crash, so the lost candidate surely held transactions the new primary lacks. The failover
// still promotes (the only live replica), and its result names what it left behind.
func TestLostCandidateTakesTransactionsWithItAndTheResultSaysSo(t *testing.T) {
	row, before, l := underLoad(t, "chosen candidate killed before its promotion, the other replica behind (loss reported)")
	if len(before.Replicas) < 2 {
		t.Fatalf("this case needs two replicas; the cluster has %d", len(before.Replicas))
	}
	behind := before.Replicas[1]
	mustExecOn(t, behind.Addr(), "STOP SLAVE IO_THREAD")
	t.Cleanup(func() { // last: should the case stop early, it receives again
		if readTopo(t).Primary.Name != behind.Name {
			db := adminDB(behind.Addr())
			defer db.Close()
			_, _ = db.Exec("START SLAVE IO_THREAD")
		}
	})
	time.Sleep(300 * time.Millisecond)
	waitCrash := armCrash(t, "before:PromoteCandidate")
	signalNode(t, before.Primary.Name, syscall.SIGKILL)
	// The old primary may hold what only the lost candidate acknowledged: the reported loss.
	t.Cleanup(func() { restartAndRejoinExpecting(t, before.Primary.Name, "ErrantGTIDs") })
	waitCrash(nil)
	t.Cleanup(func() { sandboxCmd(t, "start-worker") })
	candidate := searchAttribute(t, "BatonNewPrimary")
	if candidate != before.Replicas[0].Name {
		t.Fatalf("candidate %q; want %s, the replica that kept receiving", candidate, before.Replicas[0].Name)
	}
	signalNode(t, candidate, syscall.SIGKILL)
	t.Cleanup(func() { restartAndRejoinExpecting(t, candidate, "ErrantGTIDs") }) // it may hold what nobody else received
	sandboxCmd(t, "start-worker")
	after := waitNewPrimary(t, before.Primary.Name, 30*time.Second)
	if after.Primary.Name != behind.Name {
		t.Fatalf("promoted %s; want %s, the only live replica", after.Primary.Name, behind.Name)
	}
	res := lastFailover(t)
	n := leftBehindCount(t, res, after.Primary)
	if n == 0 {
		t.Fatalf("the failover promoted %s, which stopped receiving before the crash, and reported nothing left behind on %s: %v", behind.Name, candidate, res.LeftOut)
	}
	time.Sleep(time.Second)
	assertHealthyLosing(t, l, row, n)
}

// leftBehindCount counts the transactions a failover's result says a lost candidate took
// with it (MariaDB: per domain and server, the lost seq_no minus the new primary's).
func leftBehindCount(t *testing.T, res workflows.Result, primary topology.Node) int {
	t.Helper()
	have := map[string]int{}
	db := adminDB(primary.Addr())
	defer db.Close()
	var state string
	if err := db.QueryRow("SELECT @@GLOBAL.gtid_binlog_state").Scan(&state); err != nil {
		t.Fatal(err)
	}
	for _, g := range strings.Split(state, ",") {
		if i := strings.LastIndex(g, "-"); i > 0 {
			have[g[:i]], _ = strconv.Atoi(g[i+1:])
		}
	}
	n := 0
	for _, line := range res.LeftOut {
		if !strings.Contains(line, "the candidate lost earlier, held ") {
			continue
		}
		t.Logf("the failover reported: %s", line)
		held, _, _ := strings.Cut(strings.SplitN(line, " held ", 2)[1], ", which ")
		for _, g := range strings.Split(held, ",") {
			if i := strings.LastIndex(g, "-"); i > 0 {
				seq, _ := strconv.Atoi(g[i+1:])
				n += seq - have[g[:i]]
			}
		}
	}
	return n
}

// A failover held after its publish (no worker) has already started its anti-flap period
// and named the evicted node: nothing waits for the last step to record them.
func TestAntiFlapAndEvictionAreRecordedWithThePublish(t *testing.T) {
	fault(t, "worker lost right after the publish: anti-flap and eviction already recorded")
	ageLastFailover(t, time.Hour)
	before := readTopo(t)
	waitCrash := armCrash(t, "PublishTopology")
	signalNode(t, before.Primary.Name, syscall.SIGKILL)
	t.Cleanup(func() { restartAndRejoin(t, before.Primary.Name) })
	waitCrash(nil)
	t.Cleanup(func() { sandboxCmd(t, "start-worker") }) // before the rejoin, should the test fail here
	mid := readTopo(t)
	if mid.Epoch != before.Epoch+1 {
		t.Fatalf("epoch %d, want the publish (%d) done before the worker died", mid.Epoch, before.Epoch+1)
	}
	if mid.LastFailover == nil || mid.LastFailover.Epoch != mid.Epoch || time.Since(mid.LastFailover.At) > time.Minute {
		t.Fatalf("anti-flap not started with the publish: last_unplanned %+v", mid.LastFailover)
	}
	if !slices.ContainsFunc(mid.Evicted, func(e topology.Eviction) bool { return e.Node.Name == before.Primary.Name }) {
		t.Fatalf("the dead primary is not recorded as evicted: %+v", mid.Evicted)
	}
	sandboxCmd(t, "start-worker")
	lastFailover(t)
	assertHealthy(t, nil, nil)
}

// The detector and the replicas lose the primary while the worker still reaches it (the
// workflow's probe answers) and the candidate's relay-log wait fails: the failover ends
// without promoting, and every IO thread it stopped runs again.
func TestAFailoverThatPromotesNobodyRestartsReplication(t *testing.T) {
	fault(t, "probe answers and the relay-log wait fails: replication restarted")
	ageLastFailover(t, time.Hour)
	before := readTopo(t)
	unlock := lockTable(t, before.Replicas, "baton.heartbeat")
	time.Sleep(time.Second) // a heartbeat waits in each relay log
	since := time.Now()
	// Cut between addresses, as before: with the cut that cannot leak
	// (cutPrimaryOffFromAllButBaton) the primary falls back to asynchronous commits and, in
	// one fresh-clone run of three, its acker had not registered again 15 s after the cut
	// was lifted; that is issue 22's ground (partitions) and is left to it.
	var rules [][]string
	for _, peer := range append([]string{sandbox["DETECTOR_ADDR"]}, replicaAddrs(before)...) {
		rules = append(rules, []string{"INPUT", "-s", peer, "-d", before.Primary.IPv4, "-j", "DROP"},
			[]string{"INPUT", "-s", before.Primary.IPv4, "-d", peer, "-j", "DROP"})
	}
	unblock := cut(t, rules)
	var runs []string
	waitFor(t, 20*time.Second, func() bool { runs = failoverRuns(t, since); return len(runs) > 0 })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var res workflows.Result
	err := temporalClient(t).GetWorkflow(ctx, workflows.WorkflowID("demo"), runs[0]).Get(ctx, &res)
	unlock()
	unblock()
	if err != nil || res.Outcome != "no-op" {
		t.Fatalf("want a no-op (the primary answered): %v %+v", err, res)
	}
	if !slices.ContainsFunc(res.Steps, func(s workflows.StepRecord) bool { return s.Name == "wait for relay log" && s.Error != "" }) {
		t.Fatalf("the relay-log wait did not fail, so this case was not tested: %v", stepNames(res))
	}
	if after := readTopo(t); after.Primary.Name != before.Primary.Name || after.Epoch != before.Epoch {
		t.Fatalf("the topology moved: %s epoch %d", after.Primary.Name, after.Epoch)
	}
	waitFor(t, 10*time.Second, func() bool { return replicatingAll(t, before) })
	assertHealthy(t, nil, nil)
	waitSwitchoverReady(t) // the replicas have caught up on the heartbeats the lock held back
}

// replicaAddrs returns the replicas' IPv4 addresses.
func replicaAddrs(tp topology.Topology) []string {
	var out []string
	for _, r := range tp.Replicas {
		out = append(out, r.IPv4)
	}
	return out
}
