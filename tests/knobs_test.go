package tests

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/baton-db/baton/internal/flavor"
	"github.com/baton-db/baton/internal/topology"
)

// baton's exit statuses for "nothing was attempted" (usage) and "refused or nothing to do:
// nothing changed" (starter/exit.go).
const (
	exitUsage   = 2
	exitRefused = 3
)

// zoneMates splits a cluster's replicas into the primary's zone mate and the others.
func zoneMates(t *testing.T, tp topology.Topology) (mate, other topology.Node) {
	t.Helper()
	for _, r := range tp.Replicas {
		if r.Zone == tp.Primary.Zone {
			mate = r
		} else {
			other = r
		}
	}
	if mate.Name == "" || other.Name == "" {
		t.Fatalf("%s needs a replica in the primary's zone and one outside it: %+v", tp.Cluster, tp.Replicas)
	}
	return mate, other
}

// waitDetectorLine waits for a line of the detector's log (since log was opened) about
// cluster that contains every part, and returns it.
func waitDetectorLine(t *testing.T, log func() string, cluster string, limit time.Duration, parts ...string) string {
	t.Helper()
	var line string
	waitFor(t, limit, func() bool {
		for _, l := range linesFor(log(), cluster, parts[0]) {
			ok := true
			for _, p := range parts[1:] {
				ok = ok && strings.Contains(l, p)
			}
			if ok {
				line = l
				return true
			}
		}
		return false
	})
	return line
}

// With prevent_cross_zone_failover, a dead primary whose zone has no qualified replica is
// not replaced from another zone: the failover fails and the detector says why. A human's
// --force may cross.
func TestPreventCrossZoneFailoverKeepsThePrimaryInItsZone(t *testing.T) {
	primaryInZone(t, "demo", "a")
	withClusterSetting(t, "demo", "prevent_cross_zone_failover: true")
	row, before, load := underLoad(t, "primary killed, zone mate downtimed, prevent_cross_zone_failover (held, then forced)")
	mate, other := zoneMates(t, before)
	mustBaton(t, "downtime", "--host", mate.Name, "--for", "10m", "--reason", "disk swap", "--as", "alice")
	t.Cleanup(func() { baton(t, "downtime", "end", "--host", mate.Name) })
	assertDetectorWatching(t, "demo")
	log := detectorLogFrom(t)
	failedBefore := metricValue(t, sandbox["WORKER_METRICS_URL"], "baton_operations_ended_total", `cluster="demo"`, `kind="unplanned"`, `outcome="failed"`)
	signalNode(t, before.Primary.Name, syscall.SIGKILL)
	t.Cleanup(func() { restartAndRejoin(t, before.Primary.Name) })
	line := waitDetectorLine(t, log, "demo", 30*time.Second, "the failover failed", other.Name, "prevent_cross_zone_failover keeps the primary in zone "+before.Primary.Zone)
	t.Logf("detector: %s", line)
	// The failed failover is counted by cluster, for the BatonFailoverFailed alert.
	waitFor(t, 10*time.Second, func() bool {
		return metricValue(t, sandbox["WORKER_METRICS_URL"], "baton_operations_ended_total", `cluster="demo"`, `kind="unplanned"`, `outcome="failed"`) > failedBefore
	})
	if tp := readTopo(t); tp.Primary.Name != before.Primary.Name {
		t.Fatalf("Consul names %s: the primary moved to another zone although prevent_cross_zone_failover is set", tp.Primary.Name)
	}
	// A human decides to cross.
	mustBaton(t, "failover", "--cluster", "demo", "--force")
	after := waitNewPrimary(t, before.Primary.Name, 30*time.Second)
	if after.Primary.Name != other.Name {
		t.Fatalf("forced failover promoted %s; want %s, the only replica not downtimed", after.Primary.Name, other.Name)
	}
	assertHealthy(t, load, row)
}

// delayReplica makes a replica apply MASTER_DELAY seconds behind what it receives (its
// IO thread keeps receiving, so it still holds every write). undo puts it back.
func delayReplica(t *testing.T, n topology.Node, seconds int) (undo func()) {
	t.Helper()
	set := func(s int) {
		mustExecOn(t, n.Addr(), "STOP SLAVE", "CHANGE MASTER TO MASTER_DELAY = "+strconv.Itoa(s), "START SLAVE")
	}
	set(seconds)
	var once sync.Once
	undo = func() {
		once.Do(func() {
			// A node promoted meanwhile replicates from nobody: its promotion reset the delay.
			if src, _, _ := replicationOf(t, n); src != "" {
				set(0)
			}
		})
	}
	t.Cleanup(undo)
	return undo
}

// With max_lag_unplanned, a replica that applies far behind is not promoted although it
// holds every write and ranks first (the dead primary's zone mate): the other replica is,
// and nothing acknowledged is lost.
func TestMaxLagUnplannedPassesOverALaggingReplica(t *testing.T) {
	primaryInZone(t, "demo", "a")
	withClusterSetting(t, "demo", "max_lag_unplanned: 3s")
	row, before, load := underLoad(t, "primary killed, zone mate 6 s behind, max_lag_unplanned 3s")
	mate, other := zoneMates(t, before)
	undo := delayReplica(t, mate, 6)
	db := adminDB(mate.Addr())
	defer db.Close()
	// The zone mate's own heartbeat row must be older than the cap before the kill.
	waitFor(t, 20*time.Second, func() bool {
		var age float64
		err := db.QueryRowContext(context.Background(), `SELECT TIMESTAMPDIFF(MICROSECOND, STR_TO_DATE(ts, '%Y-%m-%dT%H:%i:%s.%f'), UTC_TIMESTAMP(6))/1e6
			FROM baton.heartbeat WHERE server_id = @@GLOBAL.server_id`).Scan(&age)
		return err == nil && age > 5
	})
	assertDetectorWatching(t, "demo")
	signalNode(t, before.Primary.Name, syscall.SIGKILL)
	t.Cleanup(func() { restartAndRejoin(t, before.Primary.Name) })
	after := waitNewPrimary(t, before.Primary.Name, 40*time.Second)
	res := lastFailover(t)
	if after.Primary.Name != other.Name || res.To != other.Name {
		t.Fatalf("promoted %s (result %s: %s); want %s: the zone mate %s lags 6 s, over max_lag_unplanned 3s", after.Primary.Name, res.To, res.Reason, other.Name, mate.Name)
	}
	undo()
	if p := strings.Join(res.PassedOver, "\n"); !strings.Contains(p, mate.Name+": excluded: ") || !strings.Contains(p, "behind the primary's failure, over max_lag_unplanned 3s") {
		t.Errorf("the result does not say why %s was passed over: %q", mate.Name, res.PassedOver)
	}
	if pm := mustBaton(t, "postmortem", "--workflow-id", "failover/demo"); !strings.Contains(pm, "over max_lag_unplanned 3s") {
		t.Errorf("the postmortem does not say it:\n%s", pm)
	}
	assertHealthy(t, load, row)
}

// A cluster's own recoveries switch holds that cluster's automatic failover (the detector
// says so, status shows it), and only that cluster's; enabling it lets the detector act.
func TestClusterRecoveriesSwitchHoldsOnlyThatCluster(t *testing.T) {
	ageLastFailoverOf(t, "demo2", time.Hour)
	before := readTopoOf(t, "demo2")
	mustBaton(t, "recoveries", "disable", "--cluster", "demo2", "--reason", "schema migration", "--as", "bob")
	t.Cleanup(func() { baton(t, "recoveries", "enable", "--cluster", "demo2") })
	if out := mustBaton(t, "status", "--cluster", "demo2"); !strings.Contains(out, "automatic recoveries: DISABLED for demo2 by bob") {
		t.Fatalf("status does not show demo2's switch:\n%s", out)
	}
	if s := status(t); s.Recoveries.Disabled {
		t.Fatalf("the global switch is off (%+v): the cluster's switch must not touch it", s.Recoveries)
	}
	assertDetectorWatching(t, "demo2")
	log := detectorLogFrom(t)
	signalNode(t, before.Primary.Name, syscall.SIGKILL)
	t.Cleanup(func() { restartAndRejoinIn(t, "demo2", before.Primary.Name, "") })
	waitDetectorLine(t, log, "demo2", 15*time.Second, "DeadPrimary: no failover: automatic recoveries are disabled for demo2 (by bob")
	time.Sleep(2 * time.Second)
	if tp := readTopoOf(t, "demo2"); tp.Primary.Name != before.Primary.Name {
		t.Fatalf("demo2 failed over to %s while its recoveries were disabled", tp.Primary.Name)
	}
	// The other cluster is not held: its dry run of a failover would proceed.
	if out := mustBaton(t, "failover", "--cluster", "demo", "--dry-run"); strings.Contains(out, "automatic recoveries are disabled") {
		t.Fatalf("demo is held by demo2's switch:\n%s", out)
	}
	mustBaton(t, "recoveries", "enable", "--cluster", "demo2", "--as", "bob")
	var after topology.Topology
	waitFor(t, 30*time.Second, func() bool { after = readTopoOf(t, "demo2"); return after.Primary.Name != before.Primary.Name })
	if res := clusterResult(t, "demo2"); res.Outcome != "succeeded" || res.To != after.Primary.Name {
		t.Fatalf("demo2's failover after the switch came back on: %+v", res)
	}
}

// A primary that answers is not failed over, even forced; with --primary-alive a human
// replaces it: it is fenced first (read-only, sessions ended), the candidate holds all it
// executed, and every acknowledged write is on every member. The load is heavy enough that
// a commit is nearly always waiting for its acknowledgement: the fence waits those out,
// and takes only commits held past a short grace for commits that cannot be acknowledged.
func TestForcedFailoverReplacesALivePrimaryAndLosesNothing(t *testing.T) {
	row, before, load := underLoadAt(t, "forced failover of a live primary (--primary-alive), load paced at 4,000 writes/s", 4000)
	assertDetectorWatching(t, "demo")
	if out, code := baton(t, "failover", "--cluster", "demo", "--force"); code != exitRefused || !strings.Contains(out, "no-op") {
		t.Fatalf("a forced failover of a primary that answers: exit %d, want %d (nothing changed):\n%s", code, exitRefused, out)
	}
	if tp := readTopo(t); tp.Primary.Name != before.Primary.Name {
		t.Fatalf("Consul names %s after a forced failover of a live primary without --primary-alive", tp.Primary.Name)
	}
	refuseCmd(t, "--primary-alive replaces a primary that still answers and needs --force", "failover", "--cluster", "demo", "--primary-alive")
	out := mustBaton(t, "failover", "--cluster", "demo", "--force", "--primary-alive")
	t.Cleanup(func() { restartAndRejoin(t, before.Primary.Name) })
	after := readTopo(t)
	if after.Primary.Name == before.Primary.Name {
		t.Fatalf("the live primary %s is still named by Consul:\n%s", before.Primary.Name, out)
	}
	if !evictedAddr(after, before.Primary.Addr()) {
		t.Fatalf("the replaced primary %s is not evicted: %+v", before.Primary.Name, after.Evicted)
	}
	old := adminDB(before.Primary.Addr())
	defer old.Close()
	var ro int
	var oldGTIDs string
	if err := old.QueryRow("SELECT @@GLOBAL.read_only, @@GLOBAL.gtid_binlog_state").Scan(&ro, &oldGTIDs); err != nil {
		t.Fatalf("the replaced primary does not answer (it was alive; it should be fenced, not stopped): %v", err)
	}
	if ro != 1 {
		t.Fatalf("the replaced primary %s is writable", before.Primary.Name)
	}
	assertHealthy(t, load, row)
	// Nothing it executed is missing on the new primary.
	nw := adminDB(after.Primary.Addr())
	defer nw.Close()
	var newGTIDs string
	if err := nw.QueryRow("SELECT @@GLOBAL.gtid_binlog_state").Scan(&newGTIDs); err != nil {
		t.Fatal(err)
	}
	og, err1 := flavor.MariaDB{}.ParseGTIDs(oldGTIDs)
	ng, err2 := flavor.MariaDB{}.ParseGTIDs(newGTIDs)
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	if miss := flavor.Lacks(ng, og); miss != "" {
		t.Fatalf("the new primary lacks %s that the replaced one executed", miss)
	}
}

// A promotion rule set at run time (`baton node set`, no file edit, no restart) steers the
// next choice: the dry run, status, and a failover under load all follow it.
func TestPromotionRuleSetAtRunTimeSteersTheFailover(t *testing.T) {
	primaryInZone(t, "demo", "a")
	row, before, load := underLoad(t, "primary killed, its zone mate set must_not at run time")
	mate, other := zoneMates(t, before)
	if plan := waitSwitchoverReady(t); !strings.Contains(plan, "candidate: "+mate.Name) {
		t.Fatalf("before the rule the zone mate %s should be the candidate:\n%s", mate.Name, plan)
	}
	mustBaton(t, "node", "set", "--host", mate.Name, "--promotion", "must_not", "--as", "alice")
	t.Cleanup(func() { baton(t, "node", "set", "--host", mate.Name, "--promotion", "neutral") })
	refuseCmd(t, `--promotion "sometimes"`, "node", "set", "--host", mate.Name, "--promotion", "sometimes")
	// (the other-zone candidate may lag a moment behind the limit under load: wait for it)
	if plan := waitSwitchoverReady(t); !strings.Contains(plan, "candidate: "+other.Name) || !strings.Contains(plan, "excluded: listed in must_not") {
		t.Fatalf("after `node set --promotion must_not` the dry run still picks %s:\n%s", mate.Name, plan)
	}
	found := false
	for _, c := range status(t).Clusters {
		for _, n := range c.Nodes {
			found = found || c.Cluster == "demo" && n.Name == mate.Name && n.Promotion == "must_not"
		}
	}
	if !found {
		t.Fatalf("status does not show %s's rule", mate.Name)
	}
	assertDetectorWatching(t, "demo")
	signalNode(t, before.Primary.Name, syscall.SIGKILL)
	t.Cleanup(func() { restartAndRejoin(t, before.Primary.Name) })
	after := waitNewPrimary(t, before.Primary.Name, 30*time.Second)
	res := lastFailover(t)
	if after.Primary.Name != other.Name {
		t.Fatalf("the failover promoted %s, which is must_not; want %s", after.Primary.Name, other.Name)
	}
	if p := strings.Join(res.PassedOver, "\n"); !strings.Contains(p, mate.Name+": excluded: listed in must_not") {
		t.Errorf("the result does not say why %s was passed over: %q", mate.Name, res.PassedOver)
	}
	assertHealthy(t, load, row)
}

// The primary dies with its last transactions on a zone mate that is must_not, and not on
// the other-zone replica, whose receiving was stopped (the race a kill -9 under load wins
// now and then: the async mate has an event the acker has not received yet). The candidate
// is not refused for lacking them: it catches up from the mate, then is promoted, and every
// acknowledged write is on every member, the mate's last transactions too.
func TestCandidateCatchesUpFromAMustNotReplicaThatHoldsMore(t *testing.T) {
	primaryInZone(t, "demo", "a")
	row, before, load := underLoad(t, "primary killed, the must_not zone mate holds more than the candidate (caught up from it)")
	mate, other := zoneMates(t, before)
	mustBaton(t, "node", "set", "--host", mate.Name, "--promotion", "must_not", "--as", "alice")
	t.Cleanup(func() { baton(t, "node", "set", "--host", mate.Name, "--promotion", "neutral") })
	assertDetectorWatching(t, "demo")
	mustExecOn(t, other.Addr(), "STOP SLAVE IO_THREAD")
	// Commits now wait for other's acknowledgement; their events reach the mate all the same.
	ahead := ""
	waitFor(t, 10*time.Second, func() bool {
		m, o := gtidsOf(t, mate.Addr()), gtidsOf(t, other.Addr())
		ahead = flavor.Lacks(o, m)
		return ahead != ""
	})
	signalNode(t, before.Primary.Name, syscall.SIGKILL)
	t.Cleanup(func() { restartAndRejoin(t, before.Primary.Name) })
	after := waitNewPrimary(t, before.Primary.Name, 30*time.Second)
	res := lastFailover(t)
	if after.Primary.Name != other.Name {
		t.Fatalf("the failover promoted %s; want %s", after.Primary.Name, other.Name)
	}
	if !strings.Contains(res.Reason, "catches up from "+mate.Name) || len(res.LeftOut) != 0 {
		t.Errorf("the result does not say %s caught up from %s (it lacked %s), or leaves something out: %+v", other.Name, mate.Name, ahead, res)
	}
	assertHealthy(t, load, row)
}

// gtidsOf is what the server at addr executed.
func gtidsOf(t *testing.T, addr string) flavor.GTIDSet {
	t.Helper()
	db := adminDB(addr)
	defer db.Close()
	var raw string
	if err := db.QueryRow("SELECT @@GLOBAL.gtid_current_pos").Scan(&raw); err != nil {
		t.Fatal(err)
	}
	g, err := flavor.MariaDB{}.ParseGTIDs(raw)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// node remove under load: the primary and the last replica that may acknowledge are
// refused; a replica leaves the reader pool of every HAProxy host, stops replicating and
// stays read-only; `baton rejoin` takes it back, and every acknowledged write is on every
// member.
func TestNodeRemoveDrainsAndDetachesAReplicaUnderLoad(t *testing.T) {
	primaryInZone(t, "demo", "a")
	row, before, load := underLoad(t, "replica removed under load, then rejoined")
	mate, other := zoneMates(t, before)
	refuseCmd(t, "is the primary of demo: switch over first", "node", "remove", "--cluster", "demo", "--host", before.Primary.Name, "--reason", "x")
	refuseCmd(t, "is the only replica of demo that may acknowledge", "node", "remove", "--cluster", "demo", "--host", other.Name, "--reason", "x")
	inPool := func() []string {
		var in []string
		for _, h := range []string{"haproxy-a", "haproxy-b"} {
			b, err := os.ReadFile(filepath.Join(sandbox["SANDBOX_STATE"], h, "haproxy.cfg"))
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(b), "server "+mate.Name+"_") {
				in = append(in, h)
			}
		}
		return in
	}
	if in := inPool(); len(in) != 2 {
		t.Fatalf("%s is in the reader pool of %v only before its removal", mate.Name, in)
	}
	out := mustBaton(t, "node", "remove", "--cluster", "demo", "--host", mate.Name, "--reason", "decommission", "--as", "alice")
	t.Logf("%s", lastLine(out))
	t.Cleanup(func() {
		if tp := readTopo(t); evictedAddr(tp, mate.Addr()) {
			baton(t, "rejoin", "--cluster", "demo", "--host", mate.Name)
		}
	})
	tp := readTopo(t)
	if _, member := tp.Find(mate.Name); member || !evictedAddr(tp, mate.Addr()) {
		t.Fatalf("%s is still a member after its removal (evicted: %+v)", mate.Name, tp.Evicted)
	}
	waitFor(t, 10*time.Second, func() bool { return len(inPool()) == 0 })
	if src, io, _ := replicationOf(t, mate); src != "" {
		t.Fatalf("%s still replicates from %s (IO %s) after its removal", mate.Name, src, io)
	}
	db := adminDB(mate.Addr())
	defer db.Close()
	var ro int
	if err := db.QueryRow("SELECT @@GLOBAL.read_only").Scan(&ro); err != nil || ro != 1 {
		t.Fatalf("the removed %s: read_only %d (%v)", mate.Name, ro, err)
	}
	mustBaton(t, "rejoin", "--cluster", "demo", "--host", mate.Name)
	waitFor(t, 10*time.Second, func() bool { return len(inPool()) == 2 })
	assertHealthy(t, load, row)
}

// metricValue is the value of the first sample of name at url whose labels include every
// one given (0 when there is none).
func metricValue(t *testing.T, url, name string, labels ...string) float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("scrape %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, l := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(l, name+"{") {
			continue
		}
		ok := true
		for _, want := range labels {
			ok = ok && strings.Contains(l, want)
		}
		if f := strings.Fields(l); ok && len(f) >= 2 {
			v, _ := strconv.ParseFloat(f[len(f)-1], 64)
			return v
		}
	}
	return 0
}
