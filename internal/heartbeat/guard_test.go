package heartbeat

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/baton-db/baton/internal/mysqladmin"
	"github.com/baton-db/baton/internal/topology"
)

func TestMustFence(t *testing.T) {
	n := func(name string) topology.Node { return topology.Node{Name: name} }
	cluster := func(primary string, epoch uint64, evicted ...string) topology.Topology {
		tp := topology.Topology{Primary: n(primary), Epoch: epoch, Replicas: []topology.Node{n("node3")}}
		for _, e := range evicted {
			tp.Evicted = append(tp.Evicted, topology.Eviction{Node: n(e), Reason: "crashed", Epoch: epoch})
		}
		return tp
	}
	cases := []struct {
		name      string
		t         topology.Topology
		primaryAt uint64
		writable  bool
		want      string // "" = no fence; else a word the reason must hold
	}{
		{"the primary itself", cluster("node1", 7), 7, true, ""},
		{"read-only deposed primary", cluster("node2", 8), 7, false, ""},
		{"deposed and writable", cluster("node2", 8), 7, true, "deposed"},
		{"evicted and writable", cluster("node2", 8, "node1"), 0, true, "evicted"},
		{"evicted, read-only", cluster("node2", 8, "node1"), 7, false, ""},
		// A candidate promoted and not yet published: writable, Consul names the old primary,
		// and this agent never saw its node as primary.
		{"promoted candidate before its publish", cluster("node2", 8), 0, true, ""},
		// A switchover's undo reopens the old primary at the same epoch: still the primary.
		{"same epoch", cluster("node1", 7), 7, true, ""},
	}
	for _, c := range cases {
		got, why := mustFence(c.t, "node1", c.primaryAt, c.writable)
		if got != (c.want != "") || !strings.Contains(why, c.want) {
			t.Errorf("%s: mustFence = %v %q; want fence=%v (%q)", c.name, got, why, c.want != "", c.want)
		}
	}
}

func TestLeaseDecisions(t *testing.T) {
	now := time.Now()
	ttl := 2 * time.Second
	if lapsed(time.Time{}, now, ttl) {
		t.Fatal("a lease never held cannot lapse")
	}
	if lapsed(now.Add(-FenceAfter(ttl)+time.Millisecond), now, ttl) || !lapsed(now.Add(-FenceAfter(ttl)), now, ttl) {
		t.Fatal("the lease lapses exactly at FenceAfter")
	}
	rev := &topology.Revocation{By: "failover x"}
	if revokedFor(topology.Lease{Node: "node1", Epoch: 7, Revoked: rev}, "node1", 7) != rev ||
		revokedFor(topology.Lease{Node: "node1", Epoch: 6, Revoked: rev}, "node1", 7) != nil ||
		revokedFor(topology.Lease{Node: "node2", Epoch: 7, Revoked: rev}, "node1", 7) != nil {
		t.Fatal("only this node's lease at this epoch is its revocation")
	}
	for _, c := range []struct {
		l  topology.Lease
		ok bool
	}{
		{topology.Lease{}, true},
		{topology.Lease{Node: "node2", Epoch: 6}, true},                // the last primary's
		{topology.Lease{Node: "node1", Epoch: 7}, true},                // its own
		{topology.Lease{Node: "node2", Epoch: 8}, false},               // this agent's view is stale
		{topology.Lease{Node: "node2", Epoch: 7}, false},               // two primaries at one epoch
		{topology.Lease{Node: "node1", Epoch: 7, Revoked: rev}, false}, // revoked: never renewed
		{topology.Lease{Node: "node1", Epoch: 6, Revoked: rev}, true},  // an older term of this node
		{topology.Lease{Node: "node1", Epoch: 7, Fenced: "x"}, true},   // answered, not revoked (a lapse)
	} {
		if err := mayTake(c.l, "node1", 7); (err == nil) != c.ok {
			t.Errorf("%+v: %v", c.l, err)
		}
	}
	st := &mysqladmin.ReplicaStatus{SourceHost: "127.0.1.1", SourcePort: 3306, IORunning: "Yes"}
	if follows(st, "127.0.1.1", 3306) != nil || follows(nil, "127.0.1.1", 3306) == nil ||
		follows(st, "127.0.1.2", 3306) == nil || follows(&mysqladmin.ReplicaStatus{SourceHost: "127.0.1.1", SourcePort: 3306, IORunning: "Connecting"}, "127.0.1.1", 3306) == nil {
		t.Fatal("a replica follows only when its IO thread is connected to this node")
	}
}

func TestLeaseTTLLeavesTimeToFence(t *testing.T) {
	if err := CheckLeaseTTL(2*time.Second, 200*time.Millisecond); err != nil {
		t.Fatalf("the default TTL and interval: %v", err)
	}
	for _, c := range []struct{ ttl, interval time.Duration }{{time.Second, 200 * time.Millisecond}, {2 * time.Second, time.Second}, {11 * time.Second, 200 * time.Millisecond}} {
		if err := CheckLeaseTTL(c.ttl, c.interval); err == nil {
			t.Errorf("ttl %s interval %s accepted", c.ttl, c.interval)
		}
	}
}

// Only a fence that made the node read-only is undone on a renewal: a primary that was
// read-only already (restarted after a crash) is never opened by its agent.
func TestMayReopenOnlyWhatTheFenceClosed(t *testing.T) {
	for _, c := range []struct {
		acksErr, roErr error
		wasRO, want    bool
	}{
		{nil, nil, false, true},
		{nil, nil, true, false},
		{errors.New("x"), nil, false, false},
		{nil, errors.New("x"), false, false},
	} {
		if got := mayReopen(c.acksErr, c.wasRO, c.roErr); got != c.want {
			t.Errorf("mayReopen(%v, %v, %v) = %v, want %v", c.acksErr, c.wasRO, c.roErr, got, c.want)
		}
	}
}

// A pid file outlives a killed mysqld, and its ID may be another program's by the time the
// agent reads it: only a mysqld is killed, and no process at all is a stopped node.
func TestStopMysqldKillsOnlyAMysqld(t *testing.T) {
	if _, err := os.Stat("/proc/self/comm"); err != nil {
		t.Skip("needs /proc")
	}
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("needs sleep")
	}
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "mysqld.pid")
	start := func(path string) *exec.Cmd {
		cmd := exec.Command(path, "30")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		if err := os.WriteFile(pidFile, []byte(fmt.Sprintf("%d\n", cmd.Process.Pid)), 0o644); err != nil {
			t.Fatal(err)
		}
		return cmd
	}

	other := start(sleep)
	if how, err := stopMysqld(pidFile); err == nil || !strings.Contains(err.Error(), `"sleep", not mysqld`) {
		t.Fatalf("a pid file naming another program: %q, %v; want it refused", how, err)
	}
	if err := other.Process.Signal(syscall.Signal(0)); err != nil {
		t.Fatalf("the program the stale pid file named was killed: %v", err)
	}

	bin, err := os.ReadFile(sleep)
	if err != nil {
		t.Fatal(err)
	}
	mysqld := filepath.Join(dir, "mariadbd")
	if err := os.WriteFile(mysqld, bin, 0o755); err != nil {
		t.Fatal(err)
	}
	m := start(mysqld)
	if how, err := stopMysqld(pidFile); err != nil || how != "mysqld stopped (SIGKILL) by its agent" {
		t.Fatalf("a running mysqld: %q, %v", how, err)
	}
	st, _ := m.Process.Wait()
	if ws, ok := st.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("mysqld ended with %v, want SIGKILL", st)
	}

	if how, err := stopMysqld(pidFile); err != nil || !strings.Contains(how, "mysqld not running (no process") {
		t.Fatalf("a pid file of a mysqld that has ended: %q, %v; want a stopped node", how, err)
	}
}
