package heartbeat

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/baton-db/baton/internal/mysqladmin"
	"github.com/baton-db/baton/internal/topology"
)

// The lease (docs/runbook.md §5, "the lease"): the agent of the node Consul names primary
// renews baton/lease/<cluster> every tick. A failover that cannot reach the old primary
// revokes it; the agent answers by fencing its node at once. An agent that cannot renew
// for FenceAfter fences its node on its own, unless every replica still follows the node
// (the failsafe: Consul alone is down, the cluster is whole). Either way its node stops
// taking writes before the lease's TTL has passed without a renewal, which is what the
// failover waits out when the agent cannot tell it itself.

// FenceAfter is how long after the start of its last successful renewal the agent fences
// its node: a third of the TTL, leaving the rest for its next check (one interval), the
// failsafe's connections and the fence itself (leaseActTimeout each).
func FenceAfter(ttl time.Duration) time.Duration { return ttl / 3 }

// CheckLeaseTTL refuses a lease TTL the agent could not keep with its interval: its node
// must be fenced, after FenceAfter, within one interval and two leaseActTimeouts, before the
// TTL has passed.
func CheckLeaseTTL(ttl, interval time.Duration) error {
	if ttl == 0 {
		return nil
	}
	if ttl > topology.MaxLeaseTTL {
		return fmt.Errorf("--lease-ttl %s: at most %s (a failover waits it out when the old primary's agent cannot answer)", ttl, topology.MaxLeaseTTL)
	}
	if need := FenceAfter(ttl) + interval + consulBudget(ttl) + 2*leaseActTimeout; need >= ttl || ttl < 0 {
		return fmt.Errorf("--lease-ttl %s is too short for --interval %s: the fence must land before the TTL: after a third of it, one interval, "+
			"one Consul call (a sixth of it) and %s for the failsafe and the fence; use at least %s",
			ttl, interval, 2*leaseActTimeout, 2*(interval+2*leaseActTimeout)+time.Millisecond)
	}
	return nil
}

// leaseActTimeout bounds the failsafe's replica checks and the fence before the agent stops
// mysqld instead.
const leaseActTimeout = 300 * time.Millisecond

// lapsed reports whether a lease last renewed at renewed (zero: never held) is past the
// point where its holder must fence.
func lapsed(renewed, now time.Time, ttl time.Duration) bool {
	return !renewed.IsZero() && now.Sub(renewed) >= FenceAfter(ttl)
}

// revokedFor returns the revocation of node's lease at epoch, if any.
func revokedFor(l topology.Lease, node string, epoch uint64) *topology.Revocation {
	if l.Node == node && l.Epoch == epoch {
		return l.Revoked
	}
	return nil
}

// mayTake reports whether node, primary at epoch, may write its own lease over l. A lease of
// another node at a later epoch means this agent's view is stale; one of the same node and
// epoch that is revoked must never be renewed.
func mayTake(l topology.Lease, node string, epoch uint64) error {
	switch {
	case l.Node == "" || l.Epoch < epoch:
		return nil
	case l.Epoch > epoch:
		return fmt.Errorf("the lease is %s's at epoch %d, later than this agent's view (epoch %d)", l.Node, l.Epoch, epoch)
	case l.Node != node:
		return fmt.Errorf("the lease is %s's at the same epoch %d", l.Node, epoch)
	case l.Revoked != nil:
		return fmt.Errorf("revoked by %s", l.Revoked.By)
	}
	return nil
}

// follows is the failsafe's test of one replica: its IO thread is connected to addr.
func follows(st *mysqladmin.ReplicaStatus, host string, port int) error {
	switch {
	case st == nil:
		return errors.New("not replicating")
	case st.SourceHost != host || st.SourcePort != port:
		return fmt.Errorf("replicates from %s:%d", st.SourceHost, st.SourcePort)
	case !st.IOConnected():
		return fmt.Errorf("IO thread %s", st.IORunning)
	}
	return nil
}

// consulBudget bounds each of the lease's Consul calls: a Consul that hangs must not hold
// the lease's clock.
func consulBudget(ttl time.Duration) time.Duration { return ttl / 6 }

// runLease is the lease's own loop, one tick every Interval.
func (a *Agent) runLease(ctx context.Context) {
	t := time.NewTicker(a.Interval)
	defer t.Stop()
	defer func() {
		if a.leaseSelf != nil {
			_ = a.leaseSelf.Close()
		}
		a.closeReplicas()
	}()
	for {
		if last := a.lastTopology(); last != nil {
			a.leaseTick(ctx, *last)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// leaseTick runs one tick of the lease against t, the last topology the agent read.
func (a *Agent) leaseTick(ctx context.Context, t topology.Topology) {
	if t.Primary.Name != a.Node {
		a.renewed, a.leaseIdx, a.failsafeSaid, a.reopen = time.Time{}, 0, "", nil
		return
	}
	if a.reopen != nil && a.actedAt != t.Epoch {
		a.reopen = nil // Consul named this node primary again, at a new epoch: that workflow opened it
	}
	if a.actedAt == t.Epoch && a.reopen == nil {
		return // revoked, or mysqld stopped, at this epoch: a later promotion is a new epoch
	}
	send := time.Now()
	rctx, cancel := context.WithTimeout(ctx, consulBudget(a.LeaseTTL))
	rev, err := a.renew(rctx, t)
	cancel()
	switch {
	case rev != nil && a.reopen != nil: // fenced already, on the lapse: tell the failover
		a.reopen = nil
		a.answer(ctx, t, "read-only, client sessions ended (on the lapse of its lease)")
		return
	case rev != nil:
		a.act(ctx, t, fmt.Sprintf("lease revoked by %s at %s", rev.By, rev.At.Format(time.RFC3339Nano)), false)
		return
	case err == nil && a.reopen != nil:
		a.renewed, a.leaseErr, a.failsafeSaid = send, "", ""
		a.reopenNode(ctx, t)
		return
	case err == nil:
		if a.renewed.IsZero() || a.leaseErr != "" || a.failsafeSaid != "" {
			a.Log.Info("holding the primary's lease", "cluster", a.Cluster, "node", a.Node, "epoch", t.Epoch, "ttl", a.LeaseTTL)
		}
		a.renewed, a.leaseErr, a.failsafeSaid = send, "", ""
		return
	case a.leaseErr == "" && ctx.Err() == nil: // once per outage: the error's text varies with Consul's hops
		a.leaseErr = err.Error()
		a.Log.Warn("cannot renew the primary's lease", "cluster", a.Cluster, "node", a.Node, "error", err)
	}
	if ctx.Err() != nil || a.reopen != nil {
		return
	}
	if !lapsed(a.renewed, time.Now(), a.LeaseTTL) {
		return
	}
	if err := a.failsafe(ctx, t); err == nil {
		if a.failsafeSaid == "" {
			a.failsafeSaid = "yes"
			a.Log.Warn("lease not renewed, but every replica follows this node: Consul alone is down; staying writable (failsafe)",
				"cluster", a.Cluster, "node", a.Node, "since", a.renewed)
		}
		return
	} else if ctx.Err() == nil {
		a.act(ctx, t, fmt.Sprintf("lease not renewed for %s and the cluster is not whole (%v)", time.Since(a.renewed).Round(time.Millisecond), err), true)
	}
}

// renew extends this node's lease by a CAS on the index of its last write, reading the key
// only when that fails. It returns the revocation if a failover revoked it.
func (a *Agent) renew(ctx context.Context, t topology.Topology) (*topology.Revocation, error) {
	l := topology.Lease{Node: a.Node, Epoch: t.Epoch, TTLMillis: a.LeaseTTL.Milliseconds(), Renewed: time.Now().UTC()}
	if a.leaseIdx != 0 {
		idx, err := a.Topo.WriteLease(ctx, a.Cluster, l, a.leaseIdx)
		if err == nil {
			a.leaseIdx = idx
			return nil, nil
		}
		if !errors.Is(err, topology.ErrLeaseChanged) {
			return nil, err
		}
	}
	cur, idx, err := a.Topo.ReadLease(ctx, a.Cluster)
	if err != nil && idx == 0 {
		return nil, err
	}
	if rev := revokedFor(cur, a.Node, t.Epoch); rev != nil {
		return rev, nil
	}
	if err == nil {
		if err := mayTake(cur, a.Node, t.Epoch); err != nil {
			return nil, err
		}
	}
	if idx, err = a.Topo.WriteLease(ctx, a.Cluster, l, idx); err != nil {
		return nil, err
	}
	a.leaseIdx = idx
	return nil, nil
}

// failsafe asks every replica of t, from this node's own address, whether its IO thread is
// connected to this node. nil means the cluster is whole. A failover stops its replicas' IO
// threads before it waits out the lease, so no failover can pass this test.
func (a *Agent) failsafe(ctx context.Context, t topology.Topology) error {
	if len(t.Replicas) == 0 {
		return errors.New("no replica")
	}
	ctx, cancel := context.WithTimeout(ctx, leaseActTimeout)
	defer cancel()
	errs := make([]error, len(t.Replicas))
	var wg sync.WaitGroup
	for i, r := range t.Replicas {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, err := a.replicaStatus(ctx, r)
			if err == nil {
				err = follows(st, t.Primary.IPv4, t.Primary.Port)
			}
			if err != nil {
				errs[i] = fmt.Errorf("%s: %w", r.Name, err)
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (a *Agent) replicaStatus(ctx context.Context, r topology.Node) (*mysqladmin.ReplicaStatus, error) {
	a.mu.Lock()
	c := a.replicas[r.Addr()]
	a.mu.Unlock()
	if c == nil {
		o := a.Guard
		o.ConnectTimeout, o.ReadTimeout = leaseActTimeout, leaseActTimeout
		var err error
		if c, err = mysqladmin.Open(r.Addr(), a.Flavor, o); err != nil {
			return nil, err
		}
		a.mu.Lock()
		if a.replicas == nil {
			a.replicas = map[string]*mysqladmin.Client{}
		}
		a.replicas[r.Addr()] = c
		a.mu.Unlock()
	}
	return c.ReplicaStatus(ctx)
}

// act stops this node taking writes: the fence, or, when it fails or finds commits held,
// mysqld stopped. The answer goes to fenced/<node> and into the lease, for the failover
// that waits on it.
// A fence on a lapse (not a revocation) is undone once the lease is renewed again
// (reopenNode): no failover took the cluster meanwhile, for a failover revokes the lease
// before it promotes.
func (a *Agent) act(ctx context.Context, t topology.Topology, why string, lapse bool) {
	self, _ := t.Find(a.Node)
	how := ""
	if c, err := a.leaseOwn(self.Addr()); err == nil {
		fctx, cancel := context.WithTimeout(ctx, leaseActTimeout)
		acks, aerr := c.PrimaryAcks(fctx)
		ro, _, roErr := c.ReadOnly(fctx)
		_, err = c.Fence(fctx, map[string]bool{a.Guard.User: true})
		cancel()
		if err == nil {
			how = "read-only, client sessions ended"
			if lapse && aerr == nil {
				a.reopen, a.reopenWrites = &acks, mayReopen(aerr, ro, roErr)
				if !a.reopenWrites {
					how += "; it was read-only already, so it stays so when the lease is renewed"
				}
			}
		} else if errors.Is(err, context.DeadlineExceeded) {
			why += fmt.Sprintf("; fence: read_only not set within %s (commits in flight hold its lock: held waiting for an acknowledgement, or the server is slow)", leaseActTimeout)
		} else {
			why += "; fence: " + err.Error()
		}
	} else {
		why += "; fence: " + err.Error()
	}
	if how == "" {
		if a.MysqldPIDFile == "" {
			a.Log.Error("this node must stop taking writes, and neither the fence nor stopping mysqld (no --mysqld-pid-file) is possible",
				"cluster", a.Cluster, "node", a.Node, "why", why)
			return
		}
		var err error
		if how, err = stopMysqld(a.MysqldPIDFile); err != nil {
			a.Log.Error("this node must stop taking writes, the fence failed and stopping mysqld failed", "cluster", a.Cluster, "node", a.Node, "why", why, "error", err)
			return
		}
	}
	a.actedAt = t.Epoch
	a.Log.Warn("fenced this node: its lease is gone", "cluster", a.Cluster, "node", a.Node, "why", why, "how", how)
	a.record(ctx, self, why+"; "+how, 0)
	a.answer(ctx, t, how)
}

// mayReopen says whether a fence on a lapse may be undone once the lease is renewed: only
// when this fence is what made the node read-only. A primary that was read-only already (a
// server restarted after a crash starts read-only, and only a failover or a human opens it;
// its binlog may have lost what a replica holds) must never be opened by its agent (found by
// the nemesis: a crashed primary, restarted at once while the failover could not act, was
// opened on a renewal and acknowledged 2,121 writes that its diverged replica never got).
func mayReopen(acksErr error, wasReadOnly bool, readOnlyErr error) bool {
	return acksErr == nil && readOnlyErr == nil && !wasReadOnly
}

// reopenNode undoes a fence on a lapse once the lease is renewed: the semi-sync timeout it
// had, then writable if the fence is what closed it; the lease is held again either way.
func (a *Agent) reopenNode(ctx context.Context, t topology.Topology) {
	self, _ := t.Find(a.Node)
	c, err := a.leaseOwn(self.Addr())
	if err == nil {
		rctx, cancel := context.WithTimeout(ctx, leaseActTimeout)
		if err = c.SetSemiSyncTimeout(rctx, a.reopen.TimeoutMS); err == nil && a.reopenWrites {
			err = c.SetReadOnly(rctx, false)
		}
		cancel()
	}
	if err != nil {
		a.Log.Error("lease renewed, but reopening this node (fenced on the lapse) failed; trying again next tick", "cluster", a.Cluster, "node", a.Node, "error", err)
		return
	}
	writes := a.reopenWrites
	a.reopen, a.reopenWrites, a.actedAt = nil, false, 0
	if !writes {
		a.Log.Warn("lease renewed and no failover revoked it: this node stays read-only, as it was before its fence on the lapse (a failover or a human opens it); the lease is held again",
			"cluster", a.Cluster, "node", a.Node, "epoch", t.Epoch)
		return
	}
	a.Log.Warn("lease renewed and no failover revoked it: this node, fenced on the lapse of its lease, takes writes again", "cluster", a.Cluster, "node", a.Node, "epoch", t.Epoch)
}

// answer writes the fence into the lease, so that a failover waiting on it goes on at once.
func (a *Agent) answer(ctx context.Context, t topology.Topology, how string) {
	for range 3 {
		cur, idx, err := a.Topo.ReadLease(ctx, a.Cluster)
		if err != nil || cur.Node != a.Node || cur.Epoch != t.Epoch {
			return
		}
		cur.Fenced = how
		if _, err = a.Topo.WriteLease(ctx, a.Cluster, cur, idx); err == nil || !errors.Is(err, topology.ErrLeaseChanged) {
			return
		}
	}
}

// leaseOwn is the lease's connection to its own node, opened on first use.
func (a *Agent) leaseOwn(addr string) (*mysqladmin.Client, error) {
	if a.leaseSelf != nil && a.leaseSelf.Addr == addr {
		return a.leaseSelf, nil
	}
	if a.leaseSelf != nil {
		_ = a.leaseSelf.Close()
		a.leaseSelf = nil
	}
	o := a.Guard
	o.ConnectTimeout, o.ReadTimeout = leaseActTimeout, leaseActTimeout
	c, err := mysqladmin.Open(addr, a.Flavor, o)
	if err != nil {
		return nil, err
	}
	a.leaseSelf = c
	return c, nil
}

func (a *Agent) closeReplicas() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for k, c := range a.replicas {
		_ = c.Close()
		delete(a.replicas, k)
	}
}
