package heartbeat

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/baton-db/baton/internal/mysqladmin"
	"github.com/baton-db/baton/internal/topology"
)

// The guard is the agent's watch over its own node (docs/runbook.md §5, "the deposed primary
// fences itself"): a node that Consul no longer names as the primary must not take writes,
// and its own host is the one place that can always stop it, also when the failover's side
// cannot reach it. Every tick the agent reads the cluster from Consul and its node's
// read_only; when the node is writable and must not be, it fences it (mysqladmin.Fence)
// and records fenced/<node>.

// mustFence is the guard's decision. primaryAt is the epoch at which this agent last saw
// Consul name its node the primary (0: not since the node was last read-only as a
// non-primary). A candidate that a failover or switchover has promoted but not yet
// published is writable while Consul names another node, so a writable node that Consul
// never named primary is left alone, unless it is evicted: only a node that Consul named
// primary and has since replaced, or has evicted, is fenced.
func mustFence(t topology.Topology, self string, primaryAt uint64, writable bool) (bool, string) {
	if !writable || t.Primary.Name == self {
		return false, ""
	}
	if i := slices.IndexFunc(t.Evicted, func(e topology.Eviction) bool { return e.Node.Name == self }); i >= 0 {
		return true, fmt.Sprintf("evicted at epoch %d (%s) but writable", t.Evicted[i].Epoch, t.Evicted[i].Reason)
	}
	if primaryAt > 0 && t.Epoch > primaryAt {
		return true, fmt.Sprintf("deposed: Consul names %s primary at epoch %d (this node was primary at epoch %d) but it is writable", t.Primary.Name, t.Epoch, primaryAt)
	}
	return false, ""
}

// selfOf finds the agent's own node in the topology: a member, or evicted.
func selfOf(t topology.Topology, name string) (topology.Node, bool) {
	if n, ok := t.Find(name); ok {
		return n, true
	}
	for _, e := range t.Evicted {
		if e.Node.Name == name {
			return e.Node, true
		}
	}
	return topology.Node{}, false
}

// guard runs one check of the agent's own node against topology t.
func (a *Agent) guard(ctx context.Context, t topology.Topology) {
	self, ok := selfOf(t, a.Node)
	if !ok {
		return
	}
	if t.Primary.Name == a.Node {
		a.primaryAt = t.Epoch
	}
	c, err := a.own(self.Addr())
	if err != nil {
		a.guardErr(err)
		return
	}
	qctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	writable, err := c.Writable(qctx)
	cancel()
	if err != nil {
		a.guardErr(fmt.Errorf("read_only of %s: %w", self.Addr(), err))
		return
	}
	a.guardErr(nil)
	if !writable && t.Primary.Name != a.Node {
		a.primaryAt = 0 // deposed and safe: a later promotion of this node is not a deposed primary
	}
	fence, why := mustFence(t, a.Node, a.primaryAt, writable)
	if !fence {
		return
	}
	fctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	ended, err := c.Fence(fctx, map[string]bool{a.Guard.User: true})
	held := errors.Is(err, mysqladmin.ErrCommitsHeld)
	if err != nil && !held {
		a.Log.Error("this node must not take writes, and fencing it failed", "cluster", a.Cluster, "node", a.Node, "why", why, "error", err)
		return
	}
	if held && a.MysqldPIDFile != "" {
		// Only stopping the server ends held commits without acknowledging them.
		how, kerr := stopMysqld(a.MysqldPIDFile)
		if kerr != nil {
			a.Log.Error("commits are held on this deposed node and stopping mysqld failed", "cluster", a.Cluster, "node", a.Node, "error", kerr)
			return
		}
		why += "; " + err.Error() + "; " + how
		a.Log.Warn("fenced this node by stopping mysqld: commits were held waiting for an acknowledgement that cannot come", "cluster", a.Cluster, "node", a.Node, "why", why)
		a.primaryAt, a.heldRecorded = 0, false
		a.record(ctx, self, why, 0)
		return
	}
	if held {
		// Safe while no replica acknowledges (nothing held can be, and new commits join
		// them); read_only is tried again every interval, and recorded once.
		if !a.heldRecorded {
			a.heldRecorded = true
			a.Log.Warn("fencing this node: client sessions ended, commits held waiting for an acknowledgement that cannot come; read_only follows once they are gone",
				"cluster", a.Cluster, "node", a.Node, "why", why, "sessions_ended", ended)
			a.record(ctx, self, why+"; "+err.Error(), ended)
		}
		return
	}
	a.primaryAt, a.heldRecorded = 0, false
	a.Log.Warn("fenced this node: client sessions ended, read-only", "cluster", a.Cluster, "node", a.Node, "why", why, "sessions_ended", ended)
	a.record(ctx, self, why, ended)
}

func (a *Agent) record(ctx context.Context, self topology.Node, why string, ended int) {
	if a.Fences != nil {
		a.Fences.Add(ctx, 1)
	}
	host, _ := os.Hostname()
	rec := topology.Fencing{Node: self, At: time.Now().UTC(), Reason: why, Sessions: ended, By: "agent of " + a.Node + "@" + host}
	if err := a.Topo.RecordFencing(ctx, a.Cluster, rec); err != nil {
		a.Log.Error("fenced, but could not record it in Consul", "cluster", a.Cluster, "node", a.Node, "error", err)
	}
}

// stopMysqld stops the mysqld whose process ID is in the pid file (SIGKILL) and says how.
// A pid file outlives a killed mysqld, and a restarted one writes it only well into its
// start, so the ID may name a process that has ended, or another program that was given the
// same ID: only a process that is a mysqld (mariadbd or mysqld, from /proc) is killed. None
// running is a stopped node; another program is an error, and nothing is killed.
func stopMysqld(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return "", fmt.Errorf("%s: no process ID in %q", path, b)
	}
	if comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); err == nil {
		if name := strings.TrimSpace(string(comm)); name != "mariadbd" && name != "mysqld" {
			return "", fmt.Errorf("%s names process %d, which is %q, not mysqld (a stale pid file): nothing killed", path, pid, name)
		}
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); errors.Is(err, syscall.ESRCH) {
		return fmt.Sprintf("mysqld not running (no process %d, from %s)", pid, path), nil
	} else if err != nil {
		return "", err
	}
	return "mysqld stopped (SIGKILL) by its agent", nil
}

// own returns the agent's connection to its own node, opened on first use.
func (a *Agent) own(addr string) (*mysqladmin.Client, error) {
	if a.self != nil && a.selfAddr == addr {
		return a.self, nil
	}
	if a.self != nil {
		a.self.Close()
		a.self = nil
	}
	o := a.Guard
	o.ConnectTimeout, o.ReadTimeout = 500*time.Millisecond, 2*time.Second
	c, err := mysqladmin.Open(addr, a.Flavor, o)
	if err != nil {
		return nil, err
	}
	a.self, a.selfAddr = c, addr
	return c, nil
}

func (a *Agent) guardErr(err error) {
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	if msg == a.lastGuardErr {
		return
	}
	if err != nil {
		a.Log.Warn("cannot watch this node's read_only", "cluster", a.Cluster, "node", a.Node, "error", err)
	} else if a.lastGuardErr != "" {
		a.Log.Info("watching this node's read_only again", "cluster", a.Cluster, "node", a.Node)
	}
	a.lastGuardErr = msg
}
