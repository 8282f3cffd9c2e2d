package tests

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/baton-db/baton/internal/loadgen"
	"github.com/baton-db/baton/internal/mysqladmin"
	"github.com/baton-db/baton/internal/topology"
)

// cutZoneOff cuts the primary's zone (the primary, its zone mate and that zone's HAProxy)
// from the other zone (its replica, that zone's HAProxy, the application's local HAProxy,
// the detector and the worker) both ways. Consul (127.0.0.1) answers both sides. The
// replicas' IO threads connect from 127.0.0.1, which names no zone, so every connection
// from 127.0.0.1 to the primary's MySQL port is cut as well: the zone mate stops
// replicating too (it is not an acker under cross_zone). It proves the cut holds.
func cutZoneOff(t *testing.T, primary, mate, other topology.Node) (unblock func()) {
	t.Helper()
	zoneA := []string{primary.IPv4, mate.IPv4, hostOf(sandbox["REMOTE_A_WRITER_ADDR"])}
	zoneB := []string{other.IPv4, hostOf(sandbox["REMOTE_B_WRITER_ADDR"]), hostOf(sandbox["LOCAL_WRITER_ADDR"]), sandbox["DETECTOR_ADDR"], sandbox["WORKER_ADDR"]}
	if primary.Zone != "a" {
		t.Fatalf("this case needs the primary in zone a, got %+v", primary)
	}
	var rules [][]string
	for _, a := range zoneA {
		for _, b := range zoneB {
			rules = append(rules, []string{"INPUT", "-s", a, "-d", b, "-j", "DROP"}, []string{"INPUT", "-s", b, "-d", a, "-j", "DROP"})
		}
	}
	port := fmt.Sprint(primary.Port)
	rules = append(rules,
		[]string{"INPUT", "-s", "127.0.0.1", "-d", primary.IPv4, "-p", "tcp", "--dport", port, "-j", "DROP"},
		[]string{"INPUT", "-s", primary.IPv4, "-d", "127.0.0.1", "-p", "tcp", "--sport", port, "-j", "DROP"})
	unblock = cut(t, rules)
	// The open paths first: each refused check waits out its timeout, and the failover may
	// have its agent stop the primary by then.
	assertCanConnect(t, primary.IPv4, primary.Addr()) // its own agent
	assertCanConnect(t, hostOf(sandbox["REMOTE_A_WRITER_ADDR"]), primary.Addr())
	assertCannotConnect(t, sandbox["DETECTOR_ADDR"], primary.Addr())
	assertCannotConnect(t, sandbox["WORKER_ADDR"], mate.Addr())
	assertCannotConnect(t, other.IPv4, primary.Addr())
	assertCannotConnect(t, "127.0.0.1", primary.Addr())
	return unblock
}

// The primary's zone is cut off from the other zone while Consul answers both sides, with
// one client on each side: the application's (local HAProxy, zone b) and one in zone a
// writing through zone a's HAProxy. The side that can act (zone b: the other-zone replica,
// the detector, the worker) must fail over, and the cut-off primary must acknowledge no
// write once the new primary exists. Before: no failover for the whole cut (the other-zone
// replica's IO thread kept saying Yes), while the old primary fell back to asynchronous
// replication and acknowledged writes that existed in its zone only.
func TestZonePartitionWithConsulReachableFailsOverToTheSideThatCanAct(t *testing.T) {
	_, mate, other := zoneRoles(t)
	row, before, app := underLoad(t, "primary's zone cut off, Consul answers both sides (two clients, one per side)")
	zoneClient := startLoad(t, sandbox["REMOTE_A_WRITER_ADDR"], 100)
	// An application host in zone a that holds connections to the primary itself, as a
	// client whose HAProxy has not reloaded would: only the primary can refuse its writes.
	direct, err := mysqladmin.Options{User: appUser.user, Password: appUser.password, SourceAddr: mate.IPv4,
		ConnectTimeout: time.Second, ReadTimeout: 30 * time.Second}.OpenDB(before.Primary.Addr())
	if err != nil {
		t.Fatal(err)
	}
	direct.SetMaxOpenConns(8)
	directClient := loadgen.Start(direct, 100)
	t.Cleanup(func() { directClient.Stop(); direct.Close() })
	time.Sleep(time.Second)
	assertDetectorWatching(t, "demo")
	t.Logf("before the cut: primary %s, app acked %d, zone-a HAProxy client %d, direct client %d; semi-sync on the primary: %s",
		before.Primary.Name, len(app.Acked()), len(zoneClient.Acked()), len(directClient.Acked()), fmt.Sprint(semiSyncStatus(adminDB(before.Primary.Addr()))))
	cutAt := time.Now()
	unblock := cutZoneOff(t, before.Primary, mate, other)
	healed := false
	heal := func() {
		if !healed {
			healed = true
			unblock()
		}
	}
	t.Cleanup(heal)
	after := waitNewPrimary(t, before.Primary.Name, 25*time.Second)
	published := time.Now()
	// The deposed primary's own agent fences it (the failover's side cannot reach it).
	var fence topology.Fencing
	waitFor(t, 5*time.Second, func() bool {
		kv, _, err := topo.Client().KV().Get("baton/clusters/demo/fenced/"+before.Primary.Name, nil)
		return err == nil && kv != nil && json.Unmarshal(kv.Value, &fence) == nil && fence.At.After(cutAt) && strings.HasPrefix(fence.By, "agent of ")
	})
	fmt.Printf("METRIC self_fence=%s (Consul names %s -> its agent fenced %s: %s)\n", fence.At.Sub(published).Round(time.Millisecond), after.Primary.Name, before.Primary.Name, fence.Reason)
	if d := fence.At.Sub(published); d > time.Second {
		t.Errorf("the deposed primary fenced itself %s after the publish, want within 1 s", d.Round(time.Millisecond))
	}
	fmt.Printf("METRIC zone_partition_failover=%s (cut -> Consul names %s)\n", published.Sub(cutAt).Round(time.Millisecond), after.Primary.Name)
	if after.Primary.Name != other.Name {
		t.Errorf("promoted %s; want %s, the side that can act", after.Primary.Name, other.Name)
	}
	// Longer than rpl_semi_sync_master_timeout: a primary that falls back to asynchronous
	// replication acknowledges again by then.
	time.Sleep(15 * time.Second)
	zoneClient.Stop()
	directClient.Stop()
	app.Stop()
	late := zoneClient.AckedAfter(published) + directClient.AckedAfter(published)
	t.Logf("acked after the cut: app %d, zone-a HAProxy client %d, direct client %d; after the publish: %d, %d, %d",
		app.AckedAfter(cutAt), zoneClient.AckedAfter(cutAt), directClient.AckedAfter(cutAt), app.AckedAfter(published), zoneClient.AckedAfter(published), directClient.AckedAfter(published))
	row.note = fmt.Sprintf("failover in %s; %d acks on the cut-off side after the publish", published.Sub(cutAt).Round(100*time.Millisecond), late)
	if late > 0 {
		t.Errorf("split brain: the cut-off primary acknowledged %d writes after %s was published (through its zone's HAProxy %d, directly %d)",
			late, after.Primary.Name, zoneClient.AckedAfter(published), directClient.AckedAfter(published))
	}
	// The worker cannot reach zone a's HAProxy (cut off with its zone): that says nothing of
	// where it routes and fails nothing. Before: the failover's routing check failed after
	// its 10 s and the workflow ended "failed" after promoting and publishing, skipping
	// the heartbeats, the eviction record and the result.
	res := failoverResultOf(t, "demo")
	var steps []string
	for _, s := range res.Steps {
		steps = append(steps, s.Name)
	}
	if res.Outcome != "succeeded" || len(res.RoutingUnverified) != 1 || !strings.HasPrefix(res.RoutingUnverified[0], "haproxy-a ") ||
		!slices.Contains(steps, "evict crashed node") || !slices.Contains(steps, "record result") {
		t.Errorf("the failover's result: outcome %q, routing unverified %q, steps %q; want succeeded, haproxy-a unverified, every step run",
			res.Outcome, res.RoutingUnverified, steps)
	}
	heal()
	// Both zone-a nodes may hold transactions nobody acknowledged (cut before node2 received them).
	restartAndRejoinExpecting(t, before.Primary.Name, "ErrantGTIDs")
	restartAndRejoinExpecting(t, mate.Name, "ErrantGTIDs")
	assertHealthy(t, zoneClient, nil)
	assertHealthy(t, directClient, nil)
	assertHealthy(t, app, row)
}
