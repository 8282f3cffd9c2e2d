package tests

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/baton-db/baton/internal/loadgen"
	"github.com/baton-db/baton/internal/topology"
	"github.com/baton-db/baton/workflows"
)

// Split-brain hardening: nothing a failover leaves behind takes writes, and operations of
// one cluster never overlap.

// The primary freezes (SIGSTOP) for 8 s under load, is failed over, then wakes up: it is
// fenced within a second, so a client that still reaches it directly cannot write. Its
// commits that were waiting for an acknowledgement when it froze are still held, so its
// own agent stops mysqld (the one way to end them unacknowledged); without held commits
// the detector or the agent sets read_only. Either way it is recorded in Consul.
func TestFrozenPrimaryIsFencedWhenItWakes(t *testing.T) {
	row := fault(t, "primary frozen 8 s (SIGSTOP) under load, then resumed: stopped by its agent on the lease's revocation, or fenced on return")
	ageLastFailover(t, time.Hour)
	before := readTopo(t)
	old := before.Primary
	l := startLoad(t, sandbox["LOCAL_WRITER_ADDR"], 200)
	time.Sleep(500 * time.Millisecond)
	t.Cleanup(func() { // a frozen-then-fenced node is restarted and rejoined like a crashed one
		if pid := nodePID(t, old.Name); pid > 0 {
			_ = syscall.Kill(pid, syscall.SIGCONT)
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		restartAndRejoin(t, old.Name)
	})
	frozen := time.Now()
	signalNode(t, old.Name, syscall.SIGSTOP)
	after := waitNewPrimary(t, old.Name, 20*time.Second)
	t.Logf("failed over to %s %s after the freeze", after.Primary.Name, time.Since(frozen).Round(time.Millisecond))
	time.Sleep(time.Until(frozen.Add(8 * time.Second)))
	resumed := time.Now()
	// The failover revoked its lease, and its agent, unable to fence a frozen server, stopped
	// it (SIGKILL ends a stopped process): then there is nothing left to resume.
	if err := syscall.Kill(nodePID(t, old.Name), syscall.SIGCONT); err != nil && err != syscall.ESRCH {
		t.Fatalf("resume %s: %v", old.Name, err)
	}
	db := adminDB(old.Addr())
	defer db.Close()
	how := ""
	waitFor(t, 5*time.Second, func() bool {
		var ro bool
		err := db.QueryRow("SELECT @@read_only").Scan(&ro)
		switch {
		case err == nil && ro:
			how = "read_only=1"
		case err != nil && strings.Contains(err.Error(), "connection refused"):
			how = "mysqld stopped"
		}
		return how != ""
	})
	took := time.Since(resumed)
	fmt.Printf("METRIC fence_on_return=%s (resumed -> %s on %s)\n", took.Round(time.Millisecond), how, old.Name)
	if took > time.Second {
		t.Errorf("the old primary was fenced (%s) %s after it resumed, want within 1 s", how, took.Round(time.Millisecond))
	}
	app := appDB(old.Addr())
	defer app.Close()
	if _, err := app.Exec("INSERT INTO app.writes (id, note) VALUES (?, 'direct write to the fenced node')", time.Now().UnixNano()); err == nil {
		t.Fatalf("a direct write as %s to the woken old primary %s succeeded", appUser.user, old.Name)
	}
	kv, _, err := topo.Client().KV().Get("baton/clusters/demo/fenced/"+old.Name, nil)
	// Fenced on return (evicted but writable), or already during the failover, when it
	// revoked the frozen primary's lease and its agent stopped mysqld.
	if err != nil || kv == nil || !strings.Contains(string(kv.Value), "evicted") && !strings.Contains(string(kv.Value), "lease revoked") {
		t.Fatalf("the fencing of %s is not recorded in Consul: %v %v", old.Name, err, kv)
	}
	assertHealthy(t, l, row)
}

// A rejoin never overlaps a switchover or failover of its cluster: it shares their ID and
// is refused, with what to do, while one runs.
func TestRejoinIsRefusedWhileASwitchoverWaits(t *testing.T) {
	fault(t, "rejoin attempted while a switchover waits for approval (refused)")
	switchoverAwaitingApproval(t)
	t.Cleanup(func() { baton(t, "abort", "--cluster", "demo", "--as", "alice", "--reason", "test over") })
	before := snapshot(t)
	tp := readTopo(t)
	out, code := baton(t, "rejoin", "--cluster", "demo", "--host", tp.Replicas[0].Name)
	if code == 0 || !strings.Contains(out, "another operation of demo is running") || !strings.Contains(out, "nothing was changed") {
		t.Fatalf("exit %d, want a refusal that names the running operation:\n%s", code, out)
	}
	t.Logf("refused: %s", lastLine(out))
	assertUnchanged(t, before)
}

// The detector loses the primary while the heartbeat agents' writes stall on a lock (their
// connections still work) and the replicas' IO threads stay connected: the agents' failed
// writes are not votes that the primary is dead, so no failover starts.
func TestFailedHeartbeatWritesAreNotDeathVotes(t *testing.T) {
	fault(t, "detector cut off while heartbeat writes stall on a lock: no failover")
	ageLastFailover(t, time.Hour)
	before := readTopo(t)
	lockTable(t, []topology.Node{before.Primary}, "baton.heartbeat")
	time.Sleep(2 * time.Second) // every agent's write has timed out at least once
	since := time.Now()
	cut(t, [][]string{{"INPUT", "-s", sandbox["DETECTOR_ADDR"], "-d", before.Primary.IPv4, "-j", "DROP"},
		{"INPUT", "-s", before.Primary.IPv4, "-d", sandbox["DETECTOR_ADDR"], "-j", "DROP"}})
	assertNoFailover(t, since, before.Primary.Name, 6*time.Second)
}

// Bad values written to Consul by hand: Baton refuses the topology with the key named, and
// consul-template drops a node it cannot print safely, so nothing reaches HAProxy.
func TestBadConsulValuesAreRefused(t *testing.T) {
	row := fault(t, "bad values in Consul (newline injection, hostile address, malformed records)")
	kv := topo.Client().KV()
	base := "baton/clusters/demo/"
	cases := []struct{ key, value, want string }{
		{"replicas/evil", `{"name":"evil\n    server injected 127.0.9.9:3306","ipv4":"127.0.1.9","port":3306,"server_id":9}`, "replicas/evil: name"},
		{"replicas/evil", `{"name":"evil","ipv4":"attacker.example.com","port":3306,"server_id":9}`, "ipv4"},
		{"replicas/evil", `{"name":"evil","ipv4":"127.0.1.9","port":99999,"server_id":9}`, "port"},
		{"replicas/evil", "{\"name\":\"ev\xffil\",\"ipv4\":\"127.0.1.9\",\"port\":3306,\"server_id\":9}", "replicas/evil"},
		{"replicas/evil", `{"name":"x' OR '1'='1","ipv4":"127.0.1.9","port":3306,"server_id":9}`, "replicas/evil: name"},
		{"replicas/evil", `{"name":"$(touch /tmp/baton-pwned)","ipv4":"127.0.1.9","port":3306,"server_id":9}`, "replicas/evil: name"},
		{"replicas/evil", `{"name":"` + strings.Repeat("n", 4096) + `","ipv4":"127.0.1.9","port":3306,"server_id":9}`, "replicas/evil: name"},
		{"maintenance", "yes", "maintenance"},
		{"epoch", "7; DROP TABLE app.writes", "epoch"},
	}
	for _, c := range cases {
		t.Run(c.key+" "+c.want, func(t *testing.T) {
			prev, _, err := kv.Get(base+c.key, nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := kv.Put(&api.KVPair{Key: base + c.key, Value: []byte(c.value)}, nil); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				if prev != nil {
					_, _ = kv.Put(prev, nil)
				} else {
					_, _ = kv.Delete(base+c.key, nil)
				}
			})
			out, code := baton(t, "status", "--cluster", "demo")
			if code == 0 || !strings.Contains(out, c.want) {
				t.Fatalf("exit %d, want a refusal naming %q:\n%s", code, c.want, out)
			}
			t.Logf("refused: %s", lastLine(out))
			// The bad node must never reach HAProxy: watched over 2 s (consul-template
			// renders a change within ~100 ms), not read once after a fixed sleep.
			for end := time.Now().Add(2 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
				for _, h := range []string{"haproxy-a", "haproxy-b"} {
					b, err := os.ReadFile(filepath.Join(sandbox["SANDBOX_STATE"], h, "haproxy.cfg"))
					if err != nil {
						t.Fatal(err)
					}
					if strings.Contains(string(b), "injected") || strings.Contains(string(b), "evil") || strings.Contains(string(b), "127.0.1.9") {
						t.Fatalf("%s's configuration took the bad node:\n%s", h, b)
					}
				}
			}
		})
	}
	waitHAProxyChecks(t, true) // consul-template and HAProxy are unharmed
	row.fault = fmt.Sprintf("bad values in Consul (%d cases: newline injection, hostile address, bad port, non-UTF-8, malformed records), all refused", len(cases))
}

// The candidate dies after the old primary was demoted and before its own promotion: the
// switchover is undone, the old primary takes writes again, and no acked write is lost.
func TestSwitchoverIsUndoneWhenTheCandidateDiesAfterTheDemotion(t *testing.T) {
	row := fault(t, "candidate killed after the demotion: switchover undone, old primary writable again")
	before, l, done := switchoverHeldBefore(t, "PromoteCandidate")
	candidate := searchAttribute(t, "BatonNewPrimary")
	if candidate == "" || candidate == before.Primary.Name {
		t.Fatalf("no candidate chosen: %q", candidate)
	}
	signalNode(t, candidate, syscall.SIGKILL)
	sandboxCmd(t, "start-worker")
	out := <-done
	if !strings.Contains(out, "was undone") || !strings.Contains(out, candidate+" did not answer") {
		t.Fatalf("the switchover should be undone and name the dead candidate:\n%s", out)
	}
	if tp := readTopo(t); tp.Primary.Name != before.Primary.Name || tp.Epoch != before.Epoch {
		t.Fatalf("Consul moved: %s epoch %d (was %s %d)", tp.Primary.Name, tp.Epoch, before.Primary.Name, before.Epoch)
	}
	db := adminDB(before.Primary.Addr())
	var ro bool
	err := db.QueryRow("SELECT @@read_only").Scan(&ro)
	db.Close()
	if err != nil || ro {
		t.Fatalf("the old primary %s is not writable again: read_only=%v %v", before.Primary.Name, ro, err)
	}
	startNode(t, candidate) // it was never promoted: it replicates again on its own
	waitFor(t, 30*time.Second, func() bool { return replicatingAll(t, before) })
	assertHealthy(t, l, row)
}

// switchoverHeldBefore starts a switchover under load with the worker's crash hook armed
// before step, and returns once that worker has died there; the caller starts the next one
// (cleanup does too). done receives the CLI's output when the switchover ends.
func switchoverHeldBefore(t *testing.T, step string) (before topology.Topology, l *loadgen.Load, done <-chan string) {
	t.Helper()
	waitSwitchoverReady(t)
	before = readTopo(t)
	l = startLoad(t, sandbox["LOCAL_WRITER_ADDR"], 200)
	time.Sleep(500 * time.Millisecond)
	waitCrash := armCrash(t, "before:"+step)
	out := make(chan string, 1)
	go func() { o, _ := baton(t, "switchover", "--cluster", "demo"); out <- o }()
	waitCrash(out)
	t.Cleanup(func() { sandboxCmd(t, "start-worker") })
	return before, l, out
}

// searchAttribute reads a keyword search attribute of the cluster's latest run.
func searchAttribute(t *testing.T, name string) string {
	t.Helper()
	d, err := temporalClient(t).DescribeWorkflowExecution(context.Background(), workflows.WorkflowID("demo"), "")
	if err != nil {
		t.Fatal(err)
	}
	if p := d.GetWorkflowExecutionInfo().GetSearchAttributes().GetIndexedFields()[name]; p != nil {
		return strings.Trim(string(p.GetData()), `"`)
	}
	return ""
}

// A failover that preempts a switchover revokes the old primary's lease before it promotes
// (StopOldPrimary). An undo of that switchover already past its first look at Consul must
// not reopen the old primary then: it looks again at the moment it reopens. The worker is
// held inside the undo just before the reopen, the lease is revoked as a failover does, and
// the undo is let go: the old primary stays read-only, and the undo says why.
func TestUndoDoesNotReopenAPrimaryWhoseLeaseWasRevoked(t *testing.T) {
	row := fault(t, "undo of a switchover held before its reopen while a failover revokes the old primary's lease (stays read-only)")
	before, l, done := switchoverHeldBefore(t, "PublishTopology")
	timeoutWas := semiSyncTimeout(t, before.Primary.Addr())
	bumpEpoch(t) // the publish fails on the epoch, and the switchover is undone
	hook := filepath.Join(sandbox["SANDBOX_STATE"], "fault-crash")
	const point = "UndoDemotePrimary:reopen"
	if err := os.WriteFile(hook, []byte("pause:"+point), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(hook) })
	sandboxCmd(t, "start-worker")
	waitFor(t, 60*time.Second, func() bool { b, _ := os.ReadFile(hook); return string(b) == "paused:"+point })

	revokeLease(t, "demo", before.Primary.Name)
	revokedAt := time.Now()
	if err := os.Remove(hook); err != nil {
		t.Fatal(err)
	}
	out := <-done
	if !strings.Contains(out, "cannot reopen "+before.Primary.Name) || !strings.Contains(out, "revoked its lease") {
		t.Fatalf("the undo should refuse to reopen %s, whose lease was revoked while it was held:\n%s", before.Primary.Name, out)
	}
	db := adminDB(before.Primary.Addr())
	defer db.Close()
	var ro bool
	if err := db.QueryRow("SELECT @@GLOBAL.read_only").Scan(&ro); err != nil || !ro {
		t.Fatalf("%s is writable (%v) after the undo met its revoked lease: two primaries once the failover promotes", before.Primary.Name, err)
	}
	noteFault(t, fmt.Sprintf("undo refused to reopen %s %s after the revocation", before.Primary.Name, time.Since(revokedAt).Round(10*time.Millisecond)))

	// What a human does, as the refusal says: the failover that revoked the lease is
	// imaginary here, so the one Consul names is opened again, under a fresh lease.
	if _, err := consulKV.Delete(topo.LeaseKey("demo"), nil); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"SET GLOBAL read_only = OFF", fmt.Sprintf("SET GLOBAL rpl_semi_sync_master_timeout = %d", timeoutWas)} {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	waitSwitchoverReady(t)
	if out, code := baton(t, "switchover", "--cluster", "demo"); code != 0 { // every replica directly under one primary again
		t.Fatalf("switchover after the manual reopen: exit %d\n%s", code, out)
	}
	assertHealthy(t, l, row)
}

// revokeLease marks node's lease of cluster revoked, as a failover's StopOldPrimary does.
func revokeLease(t *testing.T, cluster, node string) {
	t.Helper()
	ctx := context.Background()
	for {
		lease, idx, err := topo.ReadLease(ctx, cluster)
		if err != nil || lease.Node != node {
			t.Fatalf("the lease of %s is not %s's: %+v (%v)", cluster, node, lease, err)
		}
		lease.Revoked = &topology.Revocation{By: "test: a failover preempting the switchover", At: time.Now().UTC()}
		if _, err = topo.WriteLease(ctx, cluster, lease, idx); err == nil {
			return
		} else if !errors.Is(err, topology.ErrLeaseChanged) {
			t.Fatal(err)
		}
	}
}
