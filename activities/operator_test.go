package activities

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/baton-db/baton/internal/config"
	"github.com/baton-db/baton/internal/flavor"
	"github.com/baton-db/baton/internal/mysqladmin"
	"github.com/baton-db/baton/internal/topology"
)

// opStore is an OperatorStore over clusters in memory that records the writes; what the
// operator's verbs do not call panics (the embedded nil Topology).
type opStore struct {
	Topology
	clusters  map[string]topology.Topology
	downtimes map[string]topology.Downtime // cluster/node
	ended     []string
	acks      map[string]topology.Ack
	global    topology.Recoveries
	switches  map[string]topology.Recoveries
	rules     map[string]topology.Promotion // cluster/node
}

func newOpStore(ts ...topology.Topology) *opStore {
	s := &opStore{clusters: map[string]topology.Topology{}, downtimes: map[string]topology.Downtime{},
		acks: map[string]topology.Ack{}, switches: map[string]topology.Recoveries{}}
	for _, t := range ts {
		s.clusters[t.Cluster] = t
	}
	return s
}

func (s *opStore) Read(_ context.Context, c string) (topology.Topology, error) {
	t, ok := s.clusters[c]
	if !ok {
		return t, topology.ErrUnknownCluster
	}
	return t, nil
}
func (s *opStore) Clusters(context.Context) ([]string, error) {
	var out []string
	for c := range s.clusters {
		out = append(out, c)
	}
	return out, nil
}
func (s *opStore) HAProxies(context.Context) ([]topology.HAProxyHost, error) { return nil, nil }
func (s *opStore) Recoveries(context.Context) (topology.Recoveries, error)   { return s.global, nil }
func (s *opStore) SetDowntime(_ context.Context, c string, d topology.Downtime) error {
	s.downtimes[c+"/"+d.Node] = d
	return nil
}
func (s *opStore) EndDowntime(_ context.Context, c, n string) error {
	s.ended = append(s.ended, c+"/"+n)
	return nil
}
func (s *opStore) Acknowledge(_ context.Context, c string, a topology.Ack) error {
	s.acks[c] = a
	return nil
}
func (s *opStore) SetRecoveries(_ context.Context, r topology.Recoveries) error {
	s.global = r
	return nil
}
func (s *opStore) SetClusterRecoveries(_ context.Context, c string, r topology.Recoveries) error {
	s.switches[c] = r
	t := s.clusters[c]
	t.Recoveries = &r
	s.clusters[c] = t
	return nil
}

func (s *opStore) SetPromotion(_ context.Context, c string, r topology.Promotion) error {
	if s.rules == nil {
		s.rules = map[string]topology.Promotion{}
	}
	s.rules[c+"/"+r.Node] = r
	return nil
}

func errType(err error) string {
	var app *temporal.ApplicationError
	if errors.As(err, &app) {
		return app.Type()
	}
	return ""
}

func opTopologies() (demo, demo2 topology.Topology) {
	demo = topology.Topology{Cluster: "demo", Epoch: 4, Primary: tPrimary, Replicas: []topology.Node{tCand},
		Downtimes: map[string]topology.Downtime{}}
	demo2 = topology.Topology{Cluster: "demo2", Epoch: 9,
		Primary:  topology.Node{Name: "node4", IPv4: "127.0.1.4", Port: 3306, Zone: "a", ServerID: 104},
		Replicas: []topology.Node{{Name: "node5", IPv4: "127.0.1.5", Port: 3306, Zone: "b", ServerID: 105}, tCand}}
	return demo, demo2
}

// A node's cluster is the one cluster that has it: a node in two clusters needs --cluster
// (a usage error), a node in none is refused, and nothing is written for either.
func TestDowntimeFindsTheNodesCluster(t *testing.T) {
	demo, demo2 := opTopologies()
	s := newOpStore(demo, demo2)
	a := &Activities{Config: &config.Config{}, Topo: s}
	ctx := context.Background()

	r, err := a.SetDowntime(ctx, DowntimeInput{NodeRef: NodeRef{Host: "node1"}, For: time.Hour, Reason: "kernel", By: "alice"})
	if err != nil || r.Cluster != "demo" || !r.Primary || r.Downtime.By != "alice" || r.Downtime.Until.Sub(r.Downtime.Since) != time.Hour {
		t.Fatalf("downtime of node1 = %+v, %v; want demo's primary for an hour by alice", r, err)
	}
	if _, ok := s.downtimes["demo/node1"]; !ok {
		t.Errorf("downtime not written: %v", s.downtimes)
	}
	if r, err := a.SetDowntime(ctx, DowntimeInput{NodeRef: NodeRef{Host: "node5"}, For: time.Hour, Reason: "x", By: "bob"}); err != nil || r.Cluster != "demo2" || r.Primary {
		t.Errorf("downtime of node5 = %+v, %v; want a replica of demo2", r, err)
	}
	for _, c := range []struct {
		ref  NodeRef
		want string
	}{
		{NodeRef{Host: tCand.Name}, ErrAmbiguousNode},
		{NodeRef{Host: "node9"}, ErrUnknownNode},
		{NodeRef{Host: "node4", Cluster: "demo"}, ErrUnknownNode},
		{NodeRef{Host: "node1", Cluster: "nope"}, ErrUnknownCluster},
		{NodeRef{Host: "Not A Name"}, ErrAmbiguousNode},
	} {
		before := len(s.downtimes)
		_, err := a.SetDowntime(ctx, DowntimeInput{NodeRef: c.ref, For: time.Hour, Reason: "x", By: "bob"})
		if errType(err) != c.want || len(s.downtimes) != before {
			t.Errorf("downtime of %+v: %v (type %q), %d written; want %s and nothing written", c.ref, err, errType(err), len(s.downtimes)-before, c.want)
		}
	}
	if r, err := a.SetDowntime(ctx, DowntimeInput{NodeRef: NodeRef{Host: tCand.Name, Cluster: "demo2"}, For: time.Hour, Reason: "x", By: "bob"}); err != nil || r.Cluster != "demo2" {
		t.Errorf("downtime of %s in demo2 = %+v, %v", tCand.Name, r, err)
	}
}

func TestEndDowntimeRefusesANodeWithoutOne(t *testing.T) {
	demo, _ := opTopologies()
	demo.Downtimes = map[string]topology.Downtime{"node1": {Node: "node1"}}
	s := newOpStore(demo)
	a := &Activities{Config: &config.Config{}, Topo: s}
	if _, err := a.EndDowntime(context.Background(), NodeRef{Host: tCand.Name}); errType(err) != ErrNoDowntime {
		t.Errorf("end of a downtime that is not there: %v; want %s", err, ErrNoDowntime)
	}
	if c, err := a.EndDowntime(context.Background(), NodeRef{Host: "node1"}); err != nil || c != "demo" || len(s.ended) != 1 {
		t.Errorf("end of node1's downtime = %q, %v (ended %v)", c, err, s.ended)
	}
}

func TestAcknowledge(t *testing.T) {
	demo, _ := opTopologies()
	s := newOpStore(demo)
	a := &Activities{Config: &config.Config{}, Topo: s}
	ctx := context.Background()
	if _, err := a.Acknowledge(ctx, AckInput{Cluster: "demo", By: "alice"}); errType(err) != ErrNothingToAck {
		t.Errorf("ack without a failover: %v; want %s", err, ErrNothingToAck)
	}
	if _, err := a.Acknowledge(ctx, AckInput{Cluster: "nope", By: "alice"}); errType(err) != ErrUnknownCluster {
		t.Errorf("ack of an unknown cluster: %v; want %s", err, ErrUnknownCluster)
	}
	lf := &topology.Record{From: "node1", To: "node2", Epoch: 4, WorkflowID: "failover/demo"}
	demo.LastFailover = lf
	s.clusters["demo"] = demo
	r, err := a.Acknowledge(ctx, AckInput{Cluster: "demo", By: "alice", Comment: "disk"})
	if err != nil || r.Already || r.Ack.Epoch != 4 || s.acks["demo"].By != "alice" || r.Failover.To != "node2" {
		t.Fatalf("ack = %+v, %v (written %+v)", r, err, s.acks)
	}
	ack := s.acks["demo"]
	demo.Ack = &ack
	s.clusters["demo"] = demo
	if r, err := a.Acknowledge(ctx, AckInput{Cluster: "demo", By: "bob"}); err != nil || !r.Already || r.Ack.By != "alice" {
		t.Errorf("second ack = %+v, %v; want already acknowledged by alice", r, err)
	}
}

func TestSetRecoveries(t *testing.T) {
	demo, _ := opTopologies()
	s := newOpStore(demo)
	a := &Activities{Config: &config.Config{}, Topo: s}
	ctx := context.Background()
	v, err := a.SetRecoveries(ctx, RecoveriesInput{Cluster: "demo", Disabled: true, By: "bob", Reason: "schema change"})
	if err != nil || v.Enabled || v.ClusterSwitch == nil || v.ClusterSwitch.By != "bob" || v.Global.Disabled {
		t.Errorf("disable demo = %+v, %v", v, err)
	}
	if _, err := a.SetRecoveries(ctx, RecoveriesInput{Cluster: "nope", Disabled: true, By: "bob", Reason: "x"}); errType(err) != ErrUnknownCluster || len(s.switches) != 1 {
		t.Errorf("disable an unknown cluster: %v (switches %v); want %s", err, s.switches, ErrUnknownCluster)
	}
	v, err = a.SetRecoveries(ctx, RecoveriesInput{Disabled: true, By: "bob", Reason: "DC migration"})
	if err != nil || v.Enabled || !v.Global.Disabled || v.Cluster != "" {
		t.Errorf("disable every cluster = %+v, %v", v, err)
	}
}

// Status reads every cluster Consul or the config knows; an unconfigured one asked for by
// name is refused; a configured cluster Consul lacks is listed with its error.
func TestStatus(t *testing.T) {
	demo, _ := opTopologies()
	s := newOpStore(demo)
	cfg := &config.Config{Clusters: map[string]config.ClusterConfig{"demo": {Flavor: "mariadb"}, "demo3": {Flavor: "mariadb"}}}
	a := &Activities{Config: cfg, Topo: s,
		Dial: func(string, flavor.Flavor, mysqladmin.Options) (Server, error) { return nil, errors.New("refused") },
		Watchers: func(context.Context, []string) (map[string]string, error) {
			return map[string]string{"demo": "detector-1"}, nil
		}}
	ctx := context.Background()
	if _, err := a.Status(ctx, StatusInput{Cluster: "nope"}); errType(err) != ErrUnknownCluster {
		t.Errorf("status of an unconfigured cluster: %v; want %s", err, ErrUnknownCluster)
	}
	r, err := a.Status(ctx, StatusInput{})
	if err != nil || len(r.Clusters) != 2 {
		t.Fatalf("status = %+v, %v; want demo and demo3", r, err)
	}
	d, d3 := r.Clusters[0], r.Clusters[1]
	if d.Cluster != "demo" || d.WatchedBy != "detector-1" || d.Epoch != 4 || len(d.Nodes) != 2 || d.Nodes[0].Reachable {
		t.Errorf("demo = %+v", d)
	}
	if d3.Cluster != "demo3" || !strings.Contains(d3.Error, "baton cluster add") || !strings.Contains(strings.Join(d3.Problems, "\n"), "no detector watches it") {
		t.Errorf("demo3 = %+v; want its read error and no detector", d3)
	}
	if e, err := a.CurrentEpoch(ctx, "demo"); err != nil || e != 4 {
		t.Errorf("epoch of demo = %d, %v", e, err)
	}
	if _, err := a.CurrentEpoch(ctx, "demo3"); errType(err) != ErrUnknownCluster {
		t.Errorf("epoch of demo3 (not in Consul): %v; want %s", err, ErrUnknownCluster)
	}
}

// A promotion rule is written to the node's cluster, found by name; a bad rule or an
// unknown node is refused and nothing is written.
func TestSetPromotion(t *testing.T) {
	demo, demo2 := opTopologies()
	s := newOpStore(demo, demo2)
	a := &Activities{Topo: s}
	r, err := a.SetPromotion(context.Background(), PromotionInput{NodeRef: NodeRef{Host: "node4"}, Rule: "must_not", By: "alice"})
	if err != nil || r.Cluster != "demo2" || !r.Primary || s.rules["demo2/node4"].Rule != "must_not" || s.rules["demo2/node4"].By != "alice" {
		t.Fatalf("set: %+v, %v, rules %v", r, err, s.rules)
	}
	for _, in := range []PromotionInput{
		{NodeRef: NodeRef{Host: "node5"}, Rule: "sometimes", By: "alice"},
		{NodeRef: NodeRef{Host: "node9"}, Rule: "prefer", By: "alice"},
	} {
		if _, err := a.SetPromotion(context.Background(), in); err == nil {
			t.Errorf("%+v: accepted", in)
		}
	}
	if len(s.rules) != 1 {
		t.Fatalf("a refused rule was written: %v", s.rules)
	}
}
