package detect

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/baton-db/baton/internal/mysqladmin"
	"github.com/baton-db/baton/internal/topology"
)

// Fencer records that a node was fenced (topology.Store).
type Fencer interface {
	RecordFencing(ctx context.Context, cluster string, f topology.Fencing) error
}

// replicaFenceEvery is how many probe intervals pass between checks of the replicas'
// read_only (the evicted nodes are checked on every one).
const replicaFenceEvery = 8

// fenceReturned makes read-only, and ends the client sessions of, every evicted node that
// answers writable, and every replica that answers writable while Consul names another
// primary: nothing a failover left behind may take writes. It runs once per probe
// interval, beside the probes.
func (w *Watcher) fenceReturned(ctx context.Context, t topology.Topology, replicasToo bool) {
	type suspect struct {
		n       topology.Node
		why     string
		replica bool
	}
	var nodes []suspect
	for _, e := range t.Evicted {
		nodes = append(nodes, suspect{e.Node, "evicted (" + e.Reason + ") but answered writable", false})
	}
	if replicasToo {
		for _, r := range t.Replicas {
			nodes = append(nodes, suspect{r, "a replica answered writable while Consul names " + t.Primary.Name + " as primary", true})
		}
	}
	var wg sync.WaitGroup
	views := make([]ackView, len(nodes))
	for i, s := range nodes {
		if s.n.Addr() == t.Primary.Addr() {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			views[i] = w.fenceIfWritable(ctx, t, s.n, s.why, s.replica)
		}()
	}
	wg.Wait()
	if replicasToo {
		w.repairAcks(ctx, t, views)
		w.checkDurability(ctx, t)
	}
}

// A replica is fenced only while it has a replication source: a candidate that a running
// failover has just promoted has none, and is about to be published as the primary.
func (w *Watcher) fenceIfWritable(ctx context.Context, t topology.Topology, n topology.Node, why string, replica bool) (v ackView) {
	cluster := t.Cluster
	c, err := mysqladmin.Open(n.Addr(), w.flavor, w.probeOptions())
	if err != nil {
		return
	}
	defer c.Close()
	qctx, cancel := context.WithTimeout(ctx, 2*w.dc.ProbeTimeout)
	defer cancel()
	if replica {
		v = ackViewOf(qctx, c, n, t.Primary)
	}
	writable, err := c.Writable(qctx)
	if err != nil || !writable {
		return // not answering, or already safe
	}
	if replica {
		if st, err := c.ReplicaStatus(qctx); err != nil || st == nil {
			return
		}
	}
	// The pass worked from a topology up to a second old: ask Consul again, so that a node
	// rejoined and promoted meanwhile is never fenced as the primary.
	now, err := w.consul.Read(ctx, cluster)
	if err != nil || now.Primary.Name == n.Name || now.Primary.Addr() == n.Addr() {
		return
	}
	still := slices.ContainsFunc(now.Evicted, func(e topology.Eviction) bool { return e.Node.Name == n.Name })
	if replica {
		still = slices.ContainsFunc(now.Replicas, func(r topology.Node) bool { return r.Name == n.Name })
	}
	if !still {
		return
	}
	fctx, cancel2 := context.WithTimeout(ctx, 2*time.Second)
	defer cancel2()
	ended, err := c.Fence(fctx, w.keepUsers)
	if err != nil {
		w.log.Error("a node that must not take writes answered writable, and fencing it failed", "cluster", cluster, "node", n.Name, "why", why, "error", err)
		return
	}
	w.log.Warn("fenced: made read-only and ended its client sessions", "cluster", cluster, "node", n.Name, "why", why, "sessions_ended", ended)
	if w.fencer == nil {
		return
	}
	host, _ := os.Hostname()
	rec := topology.Fencing{Node: n, At: time.Now().UTC(), Reason: why, Sessions: ended, By: "detector@" + host}
	if err := w.fencer.RecordFencing(ctx, cluster, rec); err != nil {
		w.log.Error("fenced, but could not record it", "cluster", cluster, "node", n.Name, "error", fmt.Sprint(err))
	}
	return v
}
