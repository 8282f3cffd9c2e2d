package tests

import (
	"context"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/baton-db/baton/internal/topology"
	"github.com/baton-db/baton/workflows"
)

// The sandbox runs two clusters, demo and demo2, on the same HAProxy hosts (one frontend
// pair each): `baton status` shows both, and a zone outage fails both over at once.

func TestStatusShowsEveryCluster(t *testing.T) {
	demo, demo2 := readTopo(t), readTopoOf(t, "demo2")
	s := status(t)
	if len(s.Clusters) != 2 || s.Clusters[0].Cluster != "demo" || s.Clusters[1].Cluster != "demo2" {
		t.Fatalf("status shows %+v, want demo and demo2", s.Clusters)
	}
	for i, tp := range []topology.Topology{demo, demo2} {
		c := s.Clusters[i]
		if c.Epoch != tp.Epoch || len(c.Nodes) != 1+len(tp.Replicas) || c.Nodes[0].Name != tp.Primary.Name || c.Nodes[0].Role != "primary" {
			t.Fatalf("%s in status: %+v; Consul: primary %s epoch %d", tp.Cluster, c, tp.Primary.Name, tp.Epoch)
		}
	}
	// A problem on demo2 shows on demo2 only.
	r := demo2.Replicas[0]
	mustExecOn(t, r.Addr(), "STOP SLAVE SQL_THREAD")
	t.Cleanup(func() { mustExecOn(t, r.Addr(), "START SLAVE SQL_THREAD") })
	s = status(t)
	if p := problemsOf(s, "demo2"); !strings.Contains(p, "replica "+r.Name+" replication stopped (IO Yes, SQL running false)") {
		t.Fatalf("demo2's problems do not name the stopped SQL thread:\n%s", p)
	}
	if p := problemsOf(s, "demo"); strings.Contains(p, r.Name) {
		t.Fatalf("demo's problems name %s of demo2:\n%s", r.Name, p)
	}
	text := mustBaton(t, "status")
	for _, want := range []string{"CLUSTER  EPOCH  PRIMARY", "\ndemo ", "\ndemo2 ", "demo2:\n  - replica " + r.Name + " replication stopped"} {
		if !strings.Contains(text, want) {
			t.Fatalf("status text lacks %q:\n%s", want, text)
		}
	}
	// --watch refreshes until interrupted.
	ctx, cancel := context.WithTimeout(context.Background(), 2500*time.Millisecond)
	defer cancel()
	out, _ := exec.CommandContext(ctx, sandbox["BATON_BIN"], "--config", sandbox["BATON_CONFIG"], "status", "--watch", "--interval", "500ms").Output()
	if n := strings.Count(string(out), "\033[H\033[2J"); n < 2 {
		t.Fatalf("--watch refreshed %d times in 2.5 s:\n%s", n, out)
	}
}

// Zone a goes silent: demo's primary and its zone mate, and demo2's primary. Both clusters
// fail over at once to zone b, with every acknowledged write kept.
func TestZoneOutageFailsOverEveryCluster(t *testing.T) {
	row := fault(t, "zone a silent with both clusters' primaries in it (demo and demo2) under load")
	for _, c := range []string{"demo", "demo2"} {
		ageLastFailoverOf(t, c, time.Hour)
	}
	for _, c := range []string{"demo", "demo2"} {
		primaryInZone(t, c, "a")
	}
	demo, demo2 := readTopo(t), readTopoOf(t, "demo2")
	if demo.Primary.Zone != "a" || demo2.Primary.Zone != "a" {
		t.Fatalf("this case needs both primaries in zone a: demo %s (%s), demo2 %s (%s)", demo.Primary.Name, demo.Primary.Zone, demo2.Primary.Name, demo2.Primary.Zone)
	}
	var zone []topology.Node
	for _, tp := range []topology.Topology{demo, demo2} {
		for _, n := range append([]topology.Node{tp.Primary}, tp.Replicas...) {
			if n.Zone == "a" {
				zone = append(zone, n)
				t.Cleanup(func() { restartAndRejoinIn(t, tp.Cluster, n.Name, "") }) // last: after the link is back
			}
		}
	}
	l1 := startLoad(t, sandbox["LOCAL_WRITER_ADDR"], 200)
	l2 := startLoad(t, sandbox["DEMO2_LOCAL_WRITER_ADDR"], 200)
	time.Sleep(time.Second)
	var rules [][]string
	for _, n := range zone {
		rules = append(rules, []string{"INPUT", "-d", n.IPv4, "-j", "DROP"}, []string{"INPUT", "-s", n.IPv4, "-j", "DROP"})
	}
	unblock := cut(t, rules)
	stopZone := func() {
		for _, n := range zone {
			_ = syscall.Kill(nodePID(t, n.Name), syscall.SIGKILL)
		}
	}
	t.Cleanup(stopZone)
	cutAt := time.Now()
	var after1, after2 topology.Topology
	waitFor(t, 30*time.Second, func() bool {
		after1, after2 = readTopo(t), readTopoOf(t, "demo2")
		return after1.Primary.Name != demo.Primary.Name && after2.Primary.Name != demo2.Primary.Name
	})
	stopZone() // before the semi-sync timeout lets an isolated primary commit alone
	t.Logf("both clusters failed over %s after the cut: demo -> %s, demo2 -> %s", time.Since(cutAt).Round(time.Millisecond), after1.Primary.Name, after2.Primary.Name)
	for _, tp := range []topology.Topology{after1, after2} {
		if tp.Primary.Zone == "a" {
			t.Fatalf("%s promoted %s in the silent zone", tp.Cluster, tp.Primary.Name)
		}
		res := clusterResult(t, tp.Cluster)
		if res.Outcome != "succeeded" {
			t.Fatalf("%s: %+v", tp.Cluster, res)
		}
	}
	time.Sleep(2 * time.Second)
	unblock()
	l2.Stop()
	gap2, _ := l2.LongestGap()
	if n := len(l2.Acked()); n < 100 {
		t.Fatalf("demo2's load acked only %d writes", n)
	}
	row2 := &faultRow{}
	assertHealthyIn(t, "demo2", l2, row2, 0)
	fmt.Printf("METRIC zone_outage_two_clusters_demo2_outage=%s (0 of %d acked writes lost on any member)\n", gap2.Round(time.Millisecond), row2.acked)
	assertHealthy(t, l1, row)
	row.acked, row.lost = row.acked+row2.acked, row.lost+row2.lost
	outage(t, "zone_outage_two_clusters_demo_outage", l1)
	if !slices.ContainsFunc(after2.Evicted, func(e topology.Eviction) bool { return e.Node.Name == demo2.Primary.Name }) {
		t.Fatalf("demo2's old primary %s is not evicted", demo2.Primary.Name)
	}
}

func clusterResult(t *testing.T, cluster string) workflows.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var res workflows.Result
	if err := temporalClient(t).GetWorkflow(ctx, workflows.WorkflowID(cluster), "").Get(ctx, &res); err != nil {
		t.Fatalf("%s: %v (%+v)", cluster, err, res)
	}
	return res
}

// primaryInZone switches a cluster over to a replica in zone, unless its primary is there.
func primaryInZone(t *testing.T, cluster, zone string) {
	t.Helper()
	tp := readTopoOf(t, cluster)
	if tp.Primary.Zone == zone {
		return
	}
	for _, r := range tp.Replicas {
		if r.Zone == zone {
			if out, code := baton(t, "switchover", "--cluster", cluster, "--to", r.Name); code != 0 {
				t.Fatalf("switchover of %s to %s: %s", cluster, r.Name, out)
			}
			ageLastFailoverOf(t, cluster, time.Hour)
			return
		}
	}
	t.Fatalf("%s has no replica in zone %s", cluster, zone)
}
