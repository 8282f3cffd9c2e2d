package tests

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/baton-db/baton/internal/loadgen"
	"github.com/baton-db/baton/internal/mysqladmin"
	"github.com/baton-db/baton/internal/topology"
	"github.com/baton-db/baton/tests/sandboxkit"
	"github.com/baton-db/baton/workflows"
)

// cutProcessFromConsul moves the sandbox process name into a cgroup of its own and resets
// every connection it opens to Consul's HTTP port: that process alone loses Consul, every
// other process on the host keeps it (sandboxkit.CutProcessFromConsul, which proves the
// cut holds). It undoes it at cleanup.
func cutProcessFromConsul(t *testing.T, name string) (unblock func()) {
	t.Helper()
	_, port, _ := strings.Cut(sandbox["CONSUL_HTTP_ADDR"], ":")
	if port == "" {
		port = "8500"
	}
	unblock, err := sandboxkit.CutProcessFromConsul(pidOf(t, name), "baton-"+name, port)
	if err != nil {
		t.Fatalf("cut %s from Consul: %v", name, err)
	}
	t.Cleanup(unblock)
	return unblock
}

// agentLogFrom reads the log of node's heartbeat agent from now on.
func agentLogFrom(t *testing.T, node string) func() string {
	return logFrom(t, filepath.Join(sandbox["SANDBOX_STATE"], "logs", "heartbeat-"+node+".log"))
}

// cutHostOff cuts the primary's host from every other host (its replicas, the detector,
// the worker, the HAProxies, the other nodes' agents) both ways, whatever the source
// address; only the host itself still reaches its server (its agent, and a client on the
// host). It proves the host still reaches it; proveHostCut proves the rest (slowly: each
// proof waits out a dial timeout).
func cutHostOff(t *testing.T, primary topology.Node) (unblock func()) {
	t.Helper()
	port := fmt.Sprint(primary.Port)
	rules := [][]string{
		{"INPUT", "-d", primary.IPv4, "-p", "tcp", "--dport", port, "-j", "DROP"},
		{"INPUT", "-s", primary.IPv4, "-d", primary.IPv4, "-p", "tcp", "--dport", port, "-j", "ACCEPT"},
	}
	for _, n := range readTopo(t).Replicas {
		rules = append(rules, []string{"INPUT", "-s", primary.IPv4, "-d", n.IPv4, "-j", "DROP"})
	}
	unblock = cut(t, rules)
	assertCanConnect(t, primary.IPv4, primary.Addr())
	return unblock
}

func proveHostCut(t *testing.T, primary topology.Node) {
	t.Helper()
	assertCannotConnect(t, "127.0.0.1", primary.Addr())
	assertCannotConnect(t, sandbox["WORKER_ADDR"], primary.Addr())
	assertCannotConnect(t, sandbox["DETECTOR_ADDR"], primary.Addr())
}

// The primary's host is cut off from everything, Consul included, while a client on that
// host keeps writing to it directly. Nobody on the failover's side can reach the primary
// or its agent, so only the agent can stop it: its lease lapses, the cluster is not whole,
// and it fences its node; the failover revokes the lease, hears nothing, and waits out the
// TTL before it promotes. Before the lease, the agent (blind without Consul) never fenced,
// and the old primary acknowledged the host client's writes once semi-sync fell back.
func TestCutOffPrimaryFencesItselfWhenItsLeaseLapses(t *testing.T) {
	row, before, app := underLoad(t, "primary's host cut off, Consul included (its lease lapses; failover waits out the TTL)")
	p := before.Primary
	direct, err := mysqladmin.Options{User: appUser.user, Password: appUser.password, SourceAddr: p.IPv4,
		ConnectTimeout: time.Second, ReadTimeout: 30 * time.Second}.OpenDB(p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	direct.SetMaxOpenConns(8)
	hostClient := loadgen.Start(direct, 100)
	t.Cleanup(func() { hostClient.Stop(); direct.Close() })
	time.Sleep(time.Second)
	assertDetectorWatching(t, "demo")
	agentLog := agentLogFrom(t, p.Name)
	waitFor(t, 10*time.Second, func() bool { return leaseOf(t).Node == p.Name })
	cutAt := time.Now()
	// A commit held at the fence was never received by anyone: refused as errant, rebuilt.
	rejoined := false
	t.Cleanup(func() { // after the heal below, on a failure
		if !rejoined {
			restartAndRejoinExpecting(t, p.Name, "ErrantGTIDs")
		}
	})
	unHost := cutHostOff(t, p)
	unConsul := cutProcessFromConsul(t, "heartbeat-"+p.Name)
	heal := func() { unHost(); unConsul() }
	t.Cleanup(heal)
	proveHostCut(t, p)
	waitFor(t, 5*time.Second, func() bool { return strings.Contains(agentLog(), "fenced this node: its lease is gone") })
	fencedAt := logTime(t, firstLine(agentLog(), "fenced this node"))
	after := waitNewPrimary(t, p.Name, 30*time.Second)
	published := time.Now()
	res := failoverResultOf(t, "demo")
	fmt.Printf("METRIC lease_lapse_fence=%s (cut -> its agent logged the fence), failover=%s (cut -> Consul names %s); %s\n",
		fencedAt.Sub(cutAt).Round(100*time.Millisecond), published.Sub(cutAt).Round(100*time.Millisecond), after.Primary.Name, res.OldPrimaryStopped)
	if !strings.Contains(res.OldPrimaryStopped, "lease expired") {
		t.Errorf("the failover should have waited out the lease (its agent cannot answer without Consul): %q", res.OldPrimaryStopped)
	}
	if line := firstLine(agentLog(), "fenced this node"); !strings.Contains(line, "not whole") {
		t.Errorf("the agent fenced for another reason: %s", line)
	}
	// Longer than rpl_semi_sync_master_timeout: without the fence, the old primary
	// acknowledges the host client's writes again once semi-sync falls back.
	time.Sleep(12 * time.Second)
	hostClient.Stop()
	app.Stop()
	late := hostClient.AckedAfter(fencedAt)
	row.note = fmt.Sprintf("fenced by its agent %s after the cut; failover %s after the cut; %d acks on the cut-off host after the fence",
		fencedAt.Sub(cutAt).Round(100*time.Millisecond), published.Sub(cutAt).Round(100*time.Millisecond), late)
	if late > 0 {
		t.Errorf("split brain: the cut-off primary acknowledged %d writes after its agent said it was fenced", late)
	}
	heal()
	restartAndRejoinExpecting(t, p.Name, "ErrantGTIDs")
	rejoined = true
	assertHealthy(t, hostClient, nil)
	assertHealthy(t, app, row)
}

// Only the primary's agent loses Consul; every replica still follows the primary. The
// lease cannot be renewed, but the cluster is whole: the agent stays put (Patroni's
// failsafe), no failover starts, and writes go on.
func TestPrimaryAgentWithoutConsulStaysPutWhileEveryReplicaFollows(t *testing.T) {
	row, before, app := underLoad(t, "primary's agent cut from Consul, replicas follow (failsafe: no fence, no failover)")
	p := before.Primary
	assertDetectorWatching(t, "demo")
	agentLog := agentLogFrom(t, p.Name)
	waitFor(t, 10*time.Second, func() bool { return leaseOf(t).Node == p.Name })
	since := time.Now()
	cutProcessFromConsul(t, "heartbeat-"+p.Name)
	waitFor(t, 5*time.Second, func() bool { return strings.Contains(agentLog(), "cannot renew the primary's lease") })
	waitFor(t, 5*time.Second, func() bool { return strings.Contains(agentLog(), "staying writable (failsafe)") })
	assertNoFailover(t, since, p.Name, 8*time.Second)
	if strings.Contains(agentLog(), "fenced this node") {
		t.Fatalf("the agent fenced a primary whose replicas all follow it:\n%s", agentLog())
	}
	gap, _ := app.LongestGap()
	row.note = fmt.Sprintf("no fence, no failover for 8 s; longest write gap %s", gap.Round(time.Millisecond))
	if gap > 2*time.Second {
		t.Errorf("writes stalled for %s while only the agent had lost Consul", gap)
	}
	app.Stop()
	assertHealthy(t, app, row)
}

// leaseOf reads the demo cluster's lease.
func leaseOf(t *testing.T) topology.Lease {
	t.Helper()
	l, _, err := topo.ReadLease(context.Background(), "demo")
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// failoverResultOf waits for the cluster's latest workflow and returns its result.
func failoverResultOf(t *testing.T, cluster string) workflows.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var res workflows.Result
	if err := temporalClient(t).GetWorkflow(ctx, workflows.WorkflowID(cluster), "").Get(ctx, &res); err != nil {
		t.Fatalf("the failover of %s: %v", cluster, err)
	}
	return res
}

// logTime is the time of a slog text line.
func logTime(t *testing.T, line string) time.Time {
	t.Helper()
	f := strings.Fields(line)
	if len(f) == 0 {
		t.Fatalf("no log line")
	}
	at, err := time.Parse(time.RFC3339Nano, strings.TrimPrefix(f[0], "time="))
	if err != nil {
		t.Fatalf("log line without a time: %s", line)
	}
	return at
}

func firstLine(log, want string) string {
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, want) {
			return l
		}
	}
	return ""
}

// A primary that is read-only already (as a server restarted after a crash is: only a
// failover or a human opens it, for its binlog may have lost what a replica holds) is never
// opened by its own agent: a fence on the lease's lapse that found it read-only is not undone
// when the lease is renewed. Found by the nemesis (seed 28): a crashed primary restarted at
// once while the failover could not act was opened on a renewal and acknowledged 2,121
// writes its diverged replica never got.
func TestAgentNeverOpensAPrimaryThatWasReadOnly(t *testing.T) {
	fault(t, "primary read-only (as after a crash restart), its agent cut from Consul with a replica stopped: the lapse fence is not undone on renewal")
	before := readTopo(t)
	p := before.Primary
	if len(before.Replicas) == 0 {
		t.Fatal("demo has no replica")
	}
	r := before.Replicas[0]
	assertDetectorWatching(t, "demo")
	waitFor(t, 10*time.Second, func() bool { return leaseOf(t).Node == p.Name })
	mustExecOn(t, p.Addr(), "SET GLOBAL read_only = ON")
	t.Cleanup(func() { mustExecOn(t, p.Addr(), "SET GLOBAL read_only = OFF") }) // the test's own change, undone
	mustExecOn(t, r.Addr(), "STOP SLAVE IO_THREAD")                             // the cluster is not whole: no failsafe
	t.Cleanup(func() { mustExecOn(t, r.Addr(), "START SLAVE IO_THREAD") })
	agentLog := agentLogFrom(t, p.Name)
	unblock := cutProcessFromConsul(t, "heartbeat-"+p.Name)
	waitFor(t, 15*time.Second, func() bool { return strings.Contains(agentLog(), "fenced this node: its lease is gone") })
	unblock()
	waitFor(t, 15*time.Second, func() bool {
		l := leaseOf(t)
		return l.Node == p.Name && time.Since(l.Renewed) < time.Second
	})
	time.Sleep(3 * time.Second) // several renewals: a reopen would have happened by now
	db := adminDB(p.Addr())
	defer db.Close()
	var ro bool
	if err := db.QueryRow("SELECT @@read_only").Scan(&ro); err != nil {
		t.Fatal(err)
	}
	if !ro || strings.Contains(agentLog(), "takes writes again") {
		t.Fatalf("the agent opened %s, which was read-only before its fence (read_only=%v):\n%s", p.Name, ro, agentLog())
	}
	if !strings.Contains(agentLog(), "this node stays read-only") {
		t.Errorf("the agent does not say it keeps %s read-only:\n%s", p.Name, agentLog())
	}
	t.Logf("%s stays read-only after the renewal: %s", p.Name, firstLine(agentLog(), "fenced this node"))
}
