package tests

import (
	"context"
	"fmt"
	"strings"
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

// The only acker under cross_zone keeps acknowledging while the zone mate stopped receiving;
// then the primary dies and the worker cannot reach the acker. The failover asks it again
// for unreachable_acker_wait, then promotes the zone mate and says, in the result (and so
// the history and the post hooks), that the acker may hold acknowledged writes. Every
// acked write is on the new primary or on the acker, and the acker's rejoin says the truth
// about its extra transactions. Before, this promoted in silence: 801 acked writes gone.
func TestUnreachableAckerIsReportedAsAPossibleHolderOfAckedWrites(t *testing.T) {
	_, mate, acker := zoneRoles(t)
	row, before, l := underLoad(t, "cross_zone: the zone mate stopped receiving, the primary killed, the only acker unreachable from the worker (promoted with the possible loss reported)")
	mustExecOn(t, mate.Addr(), "STOP SLAVE IO_THREAD")
	t.Cleanup(func() {
		if readTopo(t).Primary.Name != mate.Name {
			db := adminDB(mate.Addr())
			defer db.Close()
			_, _ = db.Exec("START SLAVE IO_THREAD")
		}
	})
	time.Sleep(3 * time.Second)
	unblock := cut(t, [][]string{{"INPUT", "-s", sandbox["WORKER_ADDR"], "-d", acker.IPv4, "-p", "tcp", "--dport", "3306", "-j", "DROP"}})
	assertCannotConnect(t, sandbox["WORKER_ADDR"], acker.Addr())
	signalNode(t, before.Primary.Name, syscall.SIGKILL)
	// The old primary holds what only the unreachable acker acknowledged: the reported loss.
	t.Cleanup(func() { restartAndRejoinExpecting(t, before.Primary.Name, "ErrantGTIDs") })
	after := waitNewPrimary(t, before.Primary.Name, 40*time.Second)
	res := lastFailover(t)
	t.Logf("failover: %s -> %s; left out %v", res.From, res.To, res.LeftOut)
	l.Stop()
	ids := l.Acked()
	onPrimary := missing(t, after.Primary.Addr(), ids, 10*time.Second)
	onAcker := missing(t, acker.Addr(), onPrimary, 10*time.Second) // the test reaches it; the worker does not
	row.loaded, row.acked, row.lost = true, len(ids), len(onAcker)
	row.note = fmt.Sprintf("%d acked writes only on the unreachable acker, reported", len(onPrimary))
	if len(onAcker) > 0 {
		t.Fatalf("%d acked writes are on neither the new primary nor the acker", len(onAcker))
	}
	reported := false
	for _, s := range res.LeftOut {
		reported = reported || strings.Contains(s, acker.Name) && strings.Contains(s, "may hold acknowledged writes")
	}
	if len(onPrimary) > 0 && !reported {
		t.Fatalf("%d acked writes are only on %s, and the failover's result does not say it may hold acknowledged writes: %v", len(onPrimary), acker.Name, res.LeftOut)
	}
	t.Logf("%d of %d acked writes are only on %s; the result says so", len(onPrimary), len(ids), acker.Name)
	unblock()
	out, code := baton(t, "rejoin", "--cluster", "demo", "--host", acker.Name)
	if len(onPrimary) > 0 && (code == 0 || !strings.Contains(out, "may be the only copy of acknowledged writes")) {
		t.Fatalf("the acker's rejoin (exit %d) does not say its extra transactions may be acknowledged writes:\n%s", code, out)
	}
	if code != 0 {
		restartAndRejoinExpecting(t, acker.Name, "ErrantGTIDs")
	}
}

// A primary killed and restarted at once (systemd, mysqld_safe) answers again, but read-only
// and perhaps without the transactions its crash recovery truncated, which its replicas
// hold: it is not a live primary, and the failover goes on. (The workflow's probe used to
// take any answer as "alive": the failover became a no-op and left a read-only primary.)
// The worker is stopped as the probe starts, so that the restart lands before it.
func TestPrimaryRestartedAtOnceIsStillFailedOver(t *testing.T) {
	row, before, l := underLoad(t, "primary killed and restarted at once (read-only, binlog truncated) under load: failed over")
	waitCrash := armCrash(t, "before:ProbePrimary")
	signalNode(t, before.Primary.Name, syscall.SIGKILL)
	t.Cleanup(func() { restartAndRejoin(t, before.Primary.Name) })
	waitCrash(nil)
	startNode(t, before.Primary.Name)
	db := adminDB(before.Primary.Addr())
	waitFor(t, 20*time.Second, func() bool { return db.Ping() == nil })
	db.Close()
	sandboxCmd(t, "start-worker")
	after := waitNewPrimary(t, before.Primary.Name, 30*time.Second)
	res := lastFailover(t)
	if res.Outcome != "succeeded" || res.To != after.Primary.Name {
		t.Fatalf("failover after a restart in place: %+v", res)
	}
	t.Logf("failover %s -> %s: %s", res.From, res.To, res.Reason)
	assertHealthy(t, l, row)
}
