package tests

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/baton-db/baton/internal/topology"
)

// zoneRoles returns, for a primary in zone a, its zone mate (not an acker under
// cross_zone) and the other-zone replica (the only acker).
func zoneRoles(t *testing.T) (tp topology.Topology, mate, acker topology.Node) {
	t.Helper()
	waitSwitchoverReady(t)
	primaryInZone(t, "demo", "a")
	tp = readTopo(t)
	for _, r := range tp.Replicas {
		switch {
		case r.Zone == tp.Primary.Zone && mate.Name == "":
			mate = r
		case r.Zone != tp.Primary.Zone && acker.Name == "":
			acker = r
		}
	}
	if mate.Name == "" || acker.Name == "" || !clusterCfg.Acks(tp.Primary.Zone, acker.Zone) || clusterCfg.Acks(tp.Primary.Zone, mate.Zone) {
		t.Fatalf("this case needs a zone mate that does not ack and another zone's replica that does: %+v", tp)
	}
	return tp, mate, acker
}

// holdGlobalReadLock takes FLUSH TABLES WITH READ LOCK on n, as a backup tool does on a
// replica: its SQL thread stops applying, its IO thread goes on receiving (and acking).
func holdGlobalReadLock(t *testing.T, n topology.Node) (release func()) {
	t.Helper()
	db := adminDB(n.Addr())
	conn, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(context.Background(), "FLUSH TABLES WITH READ LOCK"); err != nil {
		t.Fatal(err)
	}
	done := false
	release = func() {
		if !done {
			done = true
			_, _ = conn.ExecContext(context.Background(), "UNLOCK TABLES")
			conn.Close()
			db.Close()
		}
	}
	t.Cleanup(release)
	return release
}

// The only acker under cross_zone received (and acknowledged) the last writes, but a
// backup's read lock holds its SQL thread; the zone mate stopped receiving before the crash
// but applied everything it had. Ranking by executed GTIDs promoted the zone mate and
// re-pointed the acker, discarding its relay log: acked writes lost on every survivor. The
// acker holds more, so it is the candidate; its relay log is applied once the backup ends.
func TestAckerHeldByABackupLockIsTheCandidate(t *testing.T) {
	_, mate, acker := zoneRoles(t)
	row, before, l := underLoad(t, "cross_zone: the acker's SQL thread held by a backup's FLUSH TABLES WITH READ LOCK, the zone mate stopped receiving, primary killed")
	release := holdGlobalReadLock(t, acker)
	time.Sleep(time.Second)
	mustExecOn(t, mate.Addr(), "STOP SLAVE IO_THREAD")
	t.Cleanup(func() { // should the case stop early, it receives again
		if readTopo(t).Primary.Name != mate.Name {
			db := adminDB(mate.Addr())
			defer db.Close()
			_, _ = db.Exec("START SLAVE IO_THREAD")
		}
	})
	time.Sleep(2 * time.Second)
	signalNode(t, before.Primary.Name, syscall.SIGKILL)
	t.Cleanup(func() { restartAndRejoin(t, before.Primary.Name) })
	time.Sleep(4 * time.Second) // the backup ends within catchup_timeout
	release()
	after := waitNewPrimary(t, before.Primary.Name, 30*time.Second)
	res := lastFailover(t)
	t.Logf("failover: %s -> %s, %s; left out %v", res.From, res.To, res.Reason, res.LeftOut)
	if after.Primary.Name != acker.Name {
		t.Errorf("promoted %s; want %s, which received (and acked) the most", after.Primary.Name, acker.Name)
	}
	assertHealthy(t, l, row)
}
