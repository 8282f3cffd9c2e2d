package tests

import (
	"strings"
	"testing"
)

// The sandbox itself is onboarded by `baton cluster add` (deploy/local/sandbox.sh onboard).
// Here: what it refuses, and the whole add, list, remove cycle on a scratch name.
func TestClusterAddDiscoversChecksAndSeeds(t *testing.T) {
	tp := readTopo(t)
	if len(tp.Replicas) == 0 {
		t.Fatalf("demo has no replica to onboard with: %+v", tp)
	}
	names, zones := []string{}, []string{}
	for _, n := range append(tp.Replicas, tp.Primary) {
		names = append(names, n.IPv4+"="+n.Name)
		zones = append(zones, n.IPv4+"="+n.Zone)
	}
	args := func(cluster, primary string) []string {
		return []string{"cluster", "add", "--name", cluster, "--primary", primary, "--names", strings.Join(names, ","), "--zones", strings.Join(zones, ",")}
	}
	// An existing cluster is never overwritten.
	refuseCmd(t, "cluster already in Consul", args("demo", tp.Primary.Addr())...)
	// A replica given as the primary: every problem at once, nothing written.
	out, code := baton(t, args("scratch", tp.Replicas[0].Addr())...)
	if code == 0 || !strings.Contains(out, "read_only is ON; the primary must be writable") || !strings.Contains(out, "lists no replicas") ||
		!strings.Contains(out, "nothing was written") {
		t.Fatalf("adding a replica as primary: exit %d\n%s", code, out)
	}
	if strings.Contains(mustBaton(t, "cluster", "list"), "scratch") {
		t.Fatal("a refused add wrote to Consul")
	}
	// The real primary: both replicas found, checked and seeded at epoch 1.
	out = mustBaton(t, args("scratch", tp.Primary.Addr())...)
	t.Cleanup(func() { baton(t, "cluster", "remove", "--name", "scratch", "--yes") })
	for _, r := range tp.Replicas {
		if !strings.Contains(out, "replica "+r.Name+" ("+r.Addr()+", zone "+r.Zone) {
			t.Fatalf("add did not discover %s:\n%s", r.Name, out)
		}
	}
	list := mustBaton(t, "cluster", "list")
	if !strings.Contains(list, "scratch") || !strings.Contains(list, tp.Primary.Name+" ("+tp.Primary.Addr()+")") {
		t.Fatalf("cluster list:\n%s", list)
	}
	refuseCmd(t, "Add --yes to confirm", "cluster", "remove", "--name", "scratch")
	mustBaton(t, "cluster", "remove", "--name", "scratch", "--yes")
	if strings.Contains(mustBaton(t, "cluster", "list"), "scratch") {
		t.Fatal("scratch is still listed after its removal")
	}
}
