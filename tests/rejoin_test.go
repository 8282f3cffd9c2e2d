package tests

import (
	"context"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/baton-db/baton/internal/flavor"
	"github.com/baton-db/baton/internal/topology"
	"github.com/baton-db/baton/tests/sandboxkit"
)

// executedOf reads a node's executed GTIDs, parsed.
func executedOf(t *testing.T, n topology.Node) flavor.GTIDSet {
	t.Helper()
	db := adminDB(n.Addr())
	defer db.Close()
	var raw string
	if err := db.QueryRow(flavor.MariaDB{}.Executed()).Scan(&raw); err != nil {
		t.Fatalf("%s: %v", n.Name, err)
	}
	s, err := flavor.MariaDB{}.ParseGTIDs(raw)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// A primary killed under load restarts without the transactions its crash recovery rolled
// back, though the replicas had them (they were in its binlog, waiting for the ack). The
// rejoin brings them back from the new primary instead of asking for a rebuild: for a big
// database a rebuild takes hours, and a crash is the commonest reason to rejoin.
func TestCrashedPrimaryRejoinsWithItsTruncatedTransactions(t *testing.T) {
	var old topology.Node
	var ids []int64
	for try := 1; ; try++ {
		ageLastFailover(t, time.Hour)
		before := readTopo(t)
		load := startLoad(t, sandbox["LOCAL_WRITER_ADDR"], 200)
		time.Sleep(1500 * time.Millisecond)
		signalNode(t, before.Primary.Name, syscall.SIGKILL)
		after := waitNewPrimary(t, before.Primary.Name, 15*time.Second)
		waitRouting(t, after.Primary.ServerID, 10*time.Second)
		time.Sleep(time.Second)
		load.Stop()
		ids = load.Acked()
		old = before.Primary
		sandboxCmd(t, "start-worker")
		assertNoWorkflowOpen(t)
		startNode(t, old.Name)
		miss := flavor.MissingOwn(executedOf(t, old), executedOf(t, after.Primary), old.ServerID)
		if miss != "" {
			t.Logf("try %d: %s restarted without %s, which %s has", try, old.Name, miss, after.Primary.Name)
			break
		}
		// The crash cut nothing off this time: an ordinary rejoin, and again.
		if out, code := baton(t, "rejoin", "--cluster", "demo", "--host", old.Name); code != 0 {
			t.Fatalf("rejoin %s: %s", old.Name, out)
		}
		if try == 4 {
			t.Fatal("four kill -9s under load and no crash recovery truncated anything: the case is not reproduced")
		}
	}
	out, code := baton(t, "rejoin", "--cluster", "demo", "--host", old.Name)
	if code != 0 {
		t.Cleanup(func() { restartAndRejoin(t, old.Name) })
		t.Fatalf("rejoin of %s after its crash recovery truncated transactions: exit %d\n%s", old.Name, code, out)
	}
	now := readTopo(t)
	if _, ok := now.Find(old.Name); !ok || now.Primary.Name == old.Name {
		t.Fatalf("%s is not a replica after the rejoin: %+v", old.Name, now)
	}
	if miss := missing(t, old.Addr(), ids, 10*time.Second); len(miss) > 0 {
		t.Fatalf("%d acked writes missing on the rejoined %s, e.g. %v", len(miss), old.Name, miss[:min(5, len(miss))])
	}
	// It holds what the primary holds, no more and no less, under its own server_id.
	deadline := time.Now().Add(10 * time.Second)
	for {
		mine, theirs := executedOf(t, old), executedOf(t, now.Primary)
		if mine.Missing(theirs) == "" && theirs.Missing(mine) == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s (%s) and the primary %s (%s) differ", old.Name, mine, now.Primary.Name, theirs)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if got := checksum(t, old); got != checksum(t, now.Primary) {
		t.Fatalf("app.writes differs between %s and the primary %s", old.Name, now.Primary.Name)
	}
	db := adminDB(old.Addr())
	defer db.Close()
	var sid uint32
	if err := db.QueryRow("SELECT @@GLOBAL.server_id").Scan(&sid); err != nil || sid != old.ServerID {
		t.Fatalf("%s runs with server_id %d (%v), want its own %d", old.Name, sid, err, old.ServerID)
	}
	running := false
	for _, n := range snapshot(t).Nodes {
		running = running || (strings.HasPrefix(n, old.Addr()+" ") && strings.Contains(n, " io=Yes sql=Yes"))
	}
	if !running {
		t.Fatalf("%s does not run both replication threads: %v", old.Name, snapshot(t).Nodes)
	}
	// And it is a candidate again, also to the worker, whose connections to it may date from
	// the borrowed server_id: its lag is measured (its own heartbeat row).
	waitSwitchoverReady(t, "--to", old.Name)
	if out, code := baton(t, "switchover", "--cluster", "demo", "--to", old.Name); code != 0 {
		t.Fatalf("switchover to the rejoined %s: exit %d\n%s", old.Name, code, out)
	}
	ageLastFailover(t, time.Hour)
}

func checksum(t *testing.T, n topology.Node) string {
	t.Helper()
	db := adminDB(n.Addr())
	defer db.Close()
	var table, sum string
	if err := db.QueryRow("CHECKSUM TABLE app.writes").Scan(&table, &sum); err != nil {
		t.Fatalf("%s: %v", n.Name, err)
	}
	return strings.TrimSpace(sum)
}

// A rejoining node replicates before it is a member again, and while it is not a member it
// cannot be a candidate: a write that only it acknowledged would be lost, unreported, if
// the primary died then. So it acknowledges nothing until it is readmitted. The worker is
// killed inside the rejoin, between the re-point and the readmission, and the node is
// read there: replicating, not a member, not acknowledging. The rejoin then finishes, and
// only then does it acknowledge.
func TestRejoiningNodeAcknowledgesOnlyOnceReadmitted(t *testing.T) {
	row := fault(t, "worker SIGKILL inside a rejoin, between re-point and readmission (the node acknowledges nothing until readmitted)")
	// The rejoining node must be one the durability policy lets acknowledge (under cross_zone,
	// one in another zone than the new primary): the primary is first moved to the node
	// alone in its zone, then killed, so that the failover promotes in the other zone.
	before := readTopo(t)
	lone := ""
	for _, n := range sandboxkit.Members(before) {
		same := 0
		for _, m := range sandboxkit.Members(before) {
			if m.Zone == n.Zone {
				same++
			}
		}
		if same == 1 {
			lone = n.Name
		}
	}
	if lone == "" {
		t.Fatalf("no node is alone in its zone: %+v", before)
	}
	if before.Primary.Name != lone {
		waitSwitchoverReady(t, "--to", lone)
		if out, code := baton(t, "switchover", "--cluster", "demo", "--to", lone); code != 0 {
			t.Fatalf("switchover to %s: exit %d\n%s", lone, code, out)
		}
		before = readTopo(t)
	}
	ageLastFailover(t, time.Hour)
	old := before.Primary
	signalNode(t, old.Name, syscall.SIGKILL)
	after := waitNewPrimary(t, old.Name, 15*time.Second)
	waitRouting(t, after.Primary.ServerID, 10*time.Second)
	if !clusterCfg.Acks(after.Primary.Zone, old.Zone) {
		t.Fatalf("the durability policy does not let %s (zone %s) acknowledge %s (zone %s): the case proves nothing", old.Name, old.Zone, after.Primary.Name, after.Primary.Zone)
	}
	sandboxCmd(t, "start-worker")
	assertNoWorkflowOpen(t)
	startNode(t, old.Name)
	l := startLoad(t, sandbox["LOCAL_WRITER_ADDR"], 100)

	waitCrash := armCrash(t, "at:RejoinNode:pointed")
	t.Cleanup(func() { sandboxCmd(t, "start-worker") })
	done := make(chan string, 1)
	go func() { out, _ := baton(t, "rejoin", "--cluster", "demo", "--host", old.Name); done <- out }()
	waitCrash(done)

	// Half-way: it follows the primary, Consul does not list it, and it does not acknowledge.
	st := replicaState(t, old)
	if st.source != after.Primary.Addr() {
		t.Fatalf("killed inside the rejoin, yet %s replicates from %q, not the primary %s", old.Name, st.source, after.Primary.Addr())
	}
	if tp := readTopo(t); slices.ContainsFunc(tp.Replicas, func(n topology.Node) bool { return n.Name == old.Name }) {
		t.Fatalf("%s is a member before its rejoin readmitted it", old.Name)
	}
	if st.acks {
		t.Errorf("%s acknowledges the primary's commits while it is not a member (it cannot be a candidate): writes only it acknowledged would be lost", old.Name)
	}

	sandboxCmd(t, "start-worker")
	if out := <-done; !strings.Contains(out, "is a replica of demo again") {
		t.Fatalf("the rejoin did not finish after the worker came back:\n%s", out)
	}
	if tp := readTopo(t); !slices.ContainsFunc(tp.Replicas, func(n topology.Node) bool { return n.Name == old.Name }) {
		t.Fatalf("%s is not a member after its rejoin", old.Name)
	}
	if st = replicaState(t, old); !st.acks {
		t.Fatalf("%s is a member again but does not acknowledge, though the durability policy lets it", old.Name)
	}
	noteFault(t, old.Name+" replicated without acknowledging until readmitted, then acknowledged")
	assertHealthy(t, l, row)
}

type replicaSeen struct {
	source string // host:port it replicates from ("" if none)
	acks   bool   // its semi-sync replica side is on
}

func replicaState(t *testing.T, n topology.Node) replicaSeen {
	t.Helper()
	db := adminDB(n.Addr())
	defer db.Close()
	var s replicaSeen
	if err := db.QueryRow("SELECT @@GLOBAL.rpl_semi_sync_slave_enabled").Scan(&s.acks); err != nil {
		t.Fatalf("%s: %v", n.Name, err)
	}
	st, err := sandboxkit.ReplicaStatus(context.Background(), db)
	if err != nil {
		t.Fatalf("%s: %v", n.Name, err)
	}
	if st["Master_Host"] != "" {
		s.source = st["Master_Host"] + ":" + st["Master_Port"]
	}
	return s
}
