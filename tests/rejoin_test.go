package tests

import (
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/baton-db/baton/internal/flavor"
	"github.com/baton-db/baton/internal/topology"
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
		sandboxCmd(t, "start-node", old.Name)
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
