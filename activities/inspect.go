package activities

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/baton-db/baton/internal/config"
	"github.com/baton-db/baton/internal/flavor"
	"github.com/baton-db/baton/internal/topology"
)

// NodeHealth is what `baton status` shows of one node.
type NodeHealth struct {
	Name      string `json:"name"`
	Role      string `json:"role"` // primary or replica
	Addr      string `json:"addr"`
	Zone      string `json:"zone"`
	Reachable bool   `json:"reachable"`
	Error     string `json:"error,omitempty"`
	ReadOnly  bool   `json:"read_only"`
	IO        string `json:"io,omitempty"`
	SQL       bool   `json:"sql"`
	LagMS     int64  `json:"lag_ms"` // -1 when unknown
	GTIDs     string `json:"gtids"`
	Downtime  string `json:"downtime,omitempty"`
	// Promotion is the node's promotion rule when it is not neutral (config or run time).
	Promotion string `json:"promotion,omitempty"`
}

// Health is one cluster as `baton status` shows it: its nodes and what is wrong.
type Health struct {
	Cluster     string `json:"cluster"`
	Epoch       uint64 `json:"epoch"`
	Maintenance bool   `json:"maintenance"`
	// Recoveries is the cluster's own switch of automatic failover, when one was set.
	Recoveries   *topology.Recoveries   `json:"recoveries,omitempty"`
	Nodes        []NodeHealth           `json:"nodes"`
	Evicted      []topology.Eviction    `json:"evicted,omitempty"`
	Downtimes    []topology.Downtime    `json:"downtimes,omitempty"`
	LastFailover *topology.Record       `json:"last_failover,omitempty"`
	Acknowledged *topology.Ack          `json:"acknowledged,omitempty"`
	HAProxies    []topology.HAProxyHost `json:"haproxies,omitempty"`
	Problems     []string               `json:"problems"`
}

// inspect reads a cluster for `baton status` (the Status activity): every node (in
// parallel), the HAProxy hosts, and every problem found. It changes nothing.
func (a *Activities) inspect(ctx context.Context, t topology.Topology, hosts []topology.HAProxyHost, hostsErr error) Health {
	now := time.Now()
	h := Health{Cluster: t.Cluster, Epoch: t.Epoch, Maintenance: t.Maintenance, Recoveries: t.Recoveries, Evicted: t.Evicted, LastFailover: t.LastFailover, HAProxies: hosts}
	if t.LastFailover != nil && !t.Unacknowledged() {
		h.Acknowledged = t.Ack
	}
	cc, cerr := a.clusterConfig(t.Cluster)
	members := append([]topology.Node{t.Primary}, t.Replicas...)
	h.Nodes = make([]NodeHealth, len(members))
	var wg sync.WaitGroup
	for i, n := range members {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h.Nodes[i] = a.inspectNode(ctx, t.Cluster, n, i == 0)
		}()
	}
	wg.Wait()
	// The primary's executed set is read again once the replicas' are in: it only grows,
	// so a transaction a replica received after the first read is not taken for errant.
	if p := &h.Nodes[0]; p.Reachable {
		if c, err := a.mysql(t.Cluster, t.Primary); err == nil {
			if raw, err := c.Executed(ctx); err == nil {
				p.GTIDs = raw
			}
		}
	}
	for _, n := range t.Replicas {
		if d, ok := t.Downtimed(n.Name, now); ok {
			h.Downtimes = append(h.Downtimes, d)
		}
	}
	if d, ok := t.Downtimed(t.Primary.Name, now); ok {
		h.Downtimes = append(h.Downtimes, d)
	}
	rules := promotionRules(cc.Prefer, cc.MustNot, t.Promotions)
	for i := range h.Nodes {
		if d, ok := t.Downtimed(h.Nodes[i].Name, now); ok {
			h.Nodes[i].Downtime = d.String()
		}
		if r := rules[h.Nodes[i].Name]; r != "neutral" {
			h.Nodes[i].Promotion = r
		}
	}
	h.Problems = problems(h, t, cc, cerr, hostsErr, now)
	return h
}

func (a *Activities) inspectNode(ctx context.Context, cluster string, n topology.Node, primary bool) NodeHealth {
	nh := NodeHealth{Name: n.Name, Role: "replica", Addr: n.Addr(), Zone: n.Zone, LagMS: -1}
	if primary {
		nh.Role = "primary"
	}
	c, err := a.mysql(cluster, n)
	if err == nil {
		nh.ReadOnly, _, err = c.ReadOnly(ctx)
	}
	if err != nil {
		nh.Error = err.Error()
		return nh
	}
	nh.Reachable = true
	if raw, err := c.Executed(ctx); err == nil {
		nh.GTIDs = raw
	}
	if primary {
		return nh
	}
	o := a.observe(ctx, cluster, n)
	nh.IO, nh.SQL, nh.LagMS = o.IO, o.SQLRunning, o.LagMS
	if o.SQLError != "" && !o.SQLRunning {
		nh.Error = o.SQLError
	}
	return nh
}

// problems lists what an SRE must look at, most urgent first.
func problems(h Health, t topology.Topology, cc config.ClusterConfig, cerr error, hostsErr error, now time.Time) []string {
	var out []string
	add := func(format string, a ...any) { out = append(out, fmt.Sprintf(format, a...)) }
	if cerr != nil {
		add("not in the config: Baton neither watches nor fails it over (add it under clusters:)")
	}
	out = append(out, t.Problems...)
	p := h.Nodes[0]
	switch {
	case !p.Reachable:
		add("primary %s unreachable: %s", p.Name, p.Error)
	case p.ReadOnly:
		add("primary %s is read-only: writes fail", p.Name)
	}
	f, ferr := flavor.ByName(string(cc.Flavor))
	parse := func(raw string) flavor.GTIDSet {
		if ferr != nil || raw == "" {
			return nil
		}
		set, err := f.ParseGTIDs(raw)
		if err != nil {
			return nil
		}
		return set
	}
	pset := parse(p.GTIDs)
	for _, r := range h.Nodes[1:] {
		switch {
		case !r.Reachable:
			add("replica %s unreachable: %s", r.Name, r.Error)
			continue
		case !r.ReadOnly:
			add("replica %s is writable: set read_only (a write there is an errant GTID)", r.Name)
		}
		if r.IO != "Yes" || !r.SQL {
			what := fmt.Sprintf("IO %s, SQL running %v", r.IO, r.SQL)
			if r.Error != "" {
				what += ": " + r.Error
			}
			add("replica %s replication stopped (%s)", r.Name, what)
		}
		if r.LagMS < 0 {
			add("replica %s has no heartbeat row: is its heartbeat agent running?", r.Name)
		} else if cerr == nil && r.LagMS > cc.MaxLag.Milliseconds() {
			add("replica %s lags %d ms (max_lag %s)", r.Name, r.LagMS, cc.MaxLag)
		}
		if rset := parse(r.GTIDs); rset != nil && pset != nil {
			if errant := flavor.Lacks(pset, rset); errant != "" {
				add("replica %s has errant GTIDs %s (the primary lacks them)", r.Name, errant)
			}
		}
	}
	if cerr == nil {
		if c := checkHAProxyHosts(h.HAProxies, hostsErr, cc.HAProxies); !c.OK {
			add("routing: %s", c.Detail)
		}
	}
	if t.Maintenance {
		add("in maintenance: no automatic failover")
	}
	for _, d := range h.Downtimes {
		add("%s is %s", d.Node, d)
	}
	if t.Unacknowledged() {
		lf := t.LastFailover
		add("unacknowledged failover %s -> %s at %s (epoch %d); `baton ack --cluster %s` once reviewed",
			lf.From, lf.To, lf.At.UTC().Format(time.RFC3339), lf.Epoch, t.Cluster)
	}
	for _, e := range t.Evicted {
		add("%s evicted: %s", e.Node.Name, e.Reason)
	}
	return out
}
