package activities

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strings"

	"github.com/baton-db/baton/internal/flavor"
	"github.com/baton-db/baton/internal/mysqladmin"
	"github.com/baton-db/baton/internal/onboard"
	"github.com/baton-db/baton/internal/topology"
)

// newServer is what CheckNewNode reads of a server that is not a member yet: what every
// step uses, and what onboarding reads (internal/onboard). mysqladmin.Client is both.
type newServer interface {
	Server
	onboard.Server
}

var _ newServer = (*mysqladmin.Client)(nil)

// CheckNewNode decides whether a server may join a running cluster as a replica of its
// primary (`baton node add`, `node replace`). It answers with Baton's admin account; its
// name, address and server_id are nobody's in the cluster, evicted nodes included; it has
// what `baton cluster add` requires of every node (internal/onboard's checks: GTIDs
// enforced, log_slave_updates, semi-sync available, Baton's accounts); it holds no
// transaction the primary lacks; it replicates from nowhere, or from this primary, and no
// replica follows it. Every problem is refused at once, non-retryable, and nothing is
// changed. A server that passes and is writable is then made read-only: it must never take
// a write (its GTIDs are read again after, so nothing slipped in meanwhile).
func (a *Activities) CheckNewNode(ctx context.Context, in AddNodeInput) (NewNodePlan, error) {
	cc, f, err := a.cluster(in.Cluster)
	if err != nil {
		return NewNodePlan{}, err
	}
	n, err := newNode(in, net.LookupIP)
	if err != nil {
		return NewNodePlan{}, nonRetryable(ErrNodeRefused, "%v; nothing was changed", err)
	}
	t, err := a.Topo.Read(ctx, in.Cluster)
	if err != nil {
		return NewNodePlan{}, err
	}
	plan := NewNodePlan{Cluster: in.Cluster, Primary: t.Primary, Epoch: t.Epoch, EpochIndex: t.EpochIndex,
		Acks: a.acks(in.Cluster, t.Primary, n), CatchUpTimeout: cc.CatchUpTimeout, MaxCatchUp: in.CatchUpLimit()}
	if in.Replace != "" {
		old, typ, why := replaceProblem(t, in.Replace, n, func(r topology.Node) bool { return a.acks(in.Cluster, t.Primary, r) }, in.Force)
		if why != "" {
			return NewNodePlan{}, nonRetryable(typ, "%s; nothing was changed", why)
		}
		plan.Replace = &old
	}
	if member, ok := t.Find(n.Name); ok {
		return NewNodePlan{}, nonRetryable(ErrNodeRefused, "%s is already a member of %s (%s, primary %s); nothing to add, nothing was changed",
			n.Name, in.Cluster, member.Addr(), t.Primary.Name)
	}
	a.forget(in.Cluster, n) // a server at this address before (removed, rebuilt) left stale connections
	c, err := a.freshClient(f, n, a.Config.MySQL.ConnectTimeout, a.Config.MySQL.ReadTimeout)
	if err != nil {
		return NewNodePlan{}, err
	}
	defer c.Close()
	if err := c.Ping(ctx); err != nil {
		return NewNodePlan{}, nonRetryable(ErrNodeRefused, "%s does not answer with Baton's admin account (%v): check the address, that mysqld runs, and that the admin account exists there with its grants (docs/runbook.md); nothing was changed",
			describe(n), err)
	}
	s, ok := c.(newServer)
	if !ok {
		return NewNodePlan{}, fmt.Errorf("the worker's connection to %s cannot read onboarding settings (%T)", describe(n), c)
	}
	facts := newNodeFacts{Topo: t}
	facts.Node, facts.Settings = onboard.NewReplica(ctx, s, n, a.accounts())
	n = facts.Node
	var readErrs []string
	if facts.Status, err = s.ReplicaStatus(ctx); err != nil {
		readErrs = append(readErrs, err.Error())
	}
	hosts, err := s.ReplicaHosts(ctx)
	if err != nil {
		readErrs = append(readErrs, err.Error())
	}
	facts.Sources = len(hosts)
	ro, _, err := s.ReadOnly(ctx)
	if err != nil {
		readErrs = append(readErrs, err.Error())
	}
	p, err := a.mysql(in.Cluster, t.Primary)
	if err != nil {
		return NewNodePlan{}, err
	}
	theirs, err := p.Executed(ctx)
	if err != nil {
		return NewNodePlan{}, fmt.Errorf("primary %s: %w", t.Primary.Name, err) // retried: the primary must answer
	}
	facts.Errant, err = errantOn(ctx, s, theirs)
	if err != nil {
		readErrs = append(readErrs, err.Error())
	}
	typ, problems := newNodeProblems(facts)
	if len(readErrs) > 0 {
		typ, problems = ErrNodeRefused, append(problems, "cannot read "+n.Name+": "+strings.Join(readErrs, "; "))
	}
	if len(problems) > 0 {
		return NewNodePlan{}, nonRetryable(typ, "%s cannot join %s: %s. Nothing was changed", describe(n), in.Cluster, strings.Join(problems, "; "))
	}
	if !ro {
		if err := s.SetReadOnly(ctx, true); err != nil {
			return NewNodePlan{}, fmt.Errorf("%s is writable and could not be made read-only: %w", n.Name, err)
		}
		plan.MadeReadOnly = true
		logger(ctx).Warn("the new node was writable: made read-only", "node", n.Name, "cluster", in.Cluster)
		// Written to while it was still writable, it could hold a transaction of its own.
		if errant, err := errantOn(ctx, s, theirs); err != nil || errant != "" {
			if err != nil {
				return NewNodePlan{}, err
			}
			return NewNodePlan{}, nonRetryable(ErrErrantGTIDs, "%s took transactions the primary %s lacks while it was writable: %s. It was made read-only and nothing else was changed: rebuild it from a backup of %s",
				n.Name, t.Primary.Name, errant, t.Primary.Name)
		}
	}
	plan.Node = n
	return plan, nil
}

// accounts are the accounts every node must have (replication, heartbeat), as `baton
// cluster add` asks them.
func (a *Activities) accounts() []string {
	var out []string
	for _, u := range []string{a.Config.Secrets.ReplUser, a.Config.Secrets.HeartbeatUser} {
		if u != "" {
			out = append(out, u)
		}
	}
	return out
}

// errantOn reads what s executed and returns the transactions of it that theirs (the
// primary's executed set) lacks.
func errantOn(ctx context.Context, s Server, theirs string) (string, error) {
	mine, err := s.Executed(ctx)
	if err != nil {
		return "", err
	}
	ms, err1 := s.Dialect().ParseGTIDs(mine)
	ps, err2 := s.Dialect().ParseGTIDs(theirs)
	if err1 != nil || err2 != nil {
		return "", fmt.Errorf("cannot compare GTIDs (%v, %v)", err1, err2)
	}
	return flavor.Lacks(ps, ms), nil
}

// newNodeFacts is what CheckNewNode read, for the one decision whether a server may join.
type newNodeFacts struct {
	Topo topology.Topology
	// Node is the new node, with the server_id its server reported (0: unreadable).
	Node topology.Node
	// Settings are internal/onboard's problems with it.
	Settings []error
	Status   *mysqladmin.ReplicaStatus
	// Sources is how many replicas replicate from it.
	Sources int
	// Errant is what it holds that the primary lacks.
	Errant string
}

// newNodeProblems is the pure decision whether a server may join a cluster: every reason
// it may not, and the refusal's type (ErrErrantGTIDs when that is the only reason).
func newNodeProblems(f newNodeFacts) (string, []string) {
	n, t := f.Node, f.Topo
	var out []string
	add := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	v := n
	if v.ServerID == 0 {
		v.ServerID = 1 // reported below, or by the settings it could not read
		if len(f.Settings) == 0 {
			add("its server_id is 0; give it one of its own")
		}
	}
	if err := v.Validate(); err != nil {
		add("%v", err)
	}
	for _, m := range append([]topology.Node{t.Primary}, t.Replicas...) {
		role := "a replica"
		if m.Name == t.Primary.Name {
			role = "the primary"
		}
		switch {
		case m.Name == n.Name:
			add("%s is already %s of %s (%s)", n.Name, role, t.Cluster, m.Addr())
		case m.Addr() == n.Addr():
			add("%s is the address of %s, %s of %s", n.Addr(), m.Name, role, t.Cluster)
		}
		if n.ServerID != 0 && m.ServerID == n.ServerID {
			add("server_id %d is also %s's (%s of %s): every server needs its own", n.ServerID, m.Name, role, t.Cluster)
		}
	}
	for _, e := range t.Evicted {
		m := e.Node
		switch {
		case m.Name == n.Name:
			add("%s is evicted from %s (%s): `baton rejoin --cluster %s --host %s` takes that server back; a new one needs a name of its own", n.Name, t.Cluster, e.Reason, t.Cluster, m.Name)
		case m.Addr() == n.Addr():
			add("%s is the address of %s, evicted from %s (%s): `baton rejoin --cluster %s --host %s` takes it back", n.Addr(), m.Name, t.Cluster, e.Reason, t.Cluster, m.Name)
		}
		if n.ServerID != 0 && m.ServerID == n.ServerID {
			add("server_id %d is also %s's (evicted from %s): every server needs its own", n.ServerID, m.Name, t.Cluster)
		}
	}
	for _, err := range f.Settings {
		add("%v", err)
	}
	if st := f.Status; st != nil && st.SourceHost != "" && !replicatesFrom(st.SourceHost, st.SourcePort, t.Primary) {
		add("it replicates from %s, not from the primary %s (it may belong to another cluster): if it is free, stop and reset its replication first",
			net.JoinHostPort(st.SourceHost, fmt.Sprint(st.SourcePort)), describe(t.Primary))
	}
	if f.Sources > 0 {
		add("%d replica(s) replicate from it: it is a source already (another cluster's primary?), and a new node must be no one's", f.Sources)
	}
	typ := ErrNodeRefused
	if f.Errant != "" {
		if len(out) == 0 {
			typ = ErrErrantGTIDs
		}
		add("it holds transactions the primary %s lacks: %s (inspect them with mysqlbinlog; then rebuild it from a backup of %s)", t.Primary.Name, f.Errant, t.Primary.Name)
	}
	return typ, out
}

// replaceProblem decides whether the member old may leave a cluster for the new node n
// (`baton node replace`): it must be a replica, and the last replica that may acknowledge
// commits under the durability policy (acks) goes only if n acknowledges in its place, or
// with force. It returns old as Consul has it, or the refusal's type and text.
func replaceProblem(t topology.Topology, old string, n topology.Node, acks func(topology.Node) bool, force bool) (topology.Node, string, string) {
	o, ok := t.Find(old)
	switch {
	case !ok:
		return o, ErrUnknownNode, fmt.Sprintf("%q is not a member of %s (primary %s, replicas %s)", old, t.Cluster, t.Primary.Name, names(t.Replicas))
	case o.Name == t.Primary.Name:
		return o, ErrNodeIsPrimary, fmt.Sprintf("%s is the primary of %s: switch over first (`baton switchover --cluster %s`), then replace it", o.Name, t.Cluster, t.Cluster)
	case o.Name == n.Name:
		return o, ErrNodeRefused, fmt.Sprintf("--with names %s itself: a replacement is a new node with a name of its own", o.Name)
	}
	if !acks(o) || acks(n) || force {
		return o, "", ""
	}
	others := slices.DeleteFunc(slices.Clone(t.Replicas), func(r topology.Node) bool { return r.Name == o.Name })
	if slices.ContainsFunc(others, acks) {
		return o, "", ""
	}
	return o, ErrLastAcker, fmt.Sprintf("%s is the only replica of %s that may acknowledge commits under its durability policy, and %s (zone %s) may not acknowledge in its place: the primary would acknowledge alone. Replace it with a node in a zone that may, or pass --force",
		o.Name, t.Cluster, n.Name, n.Zone)
}
