package activities

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/baton-db/baton/internal/config"
	"github.com/baton-db/baton/internal/flavor"
	"github.com/baton-db/baton/internal/mysqladmin"
	"github.com/baton-db/baton/internal/topology"
)

// growingPrimary commits between two reads of its executed set, as a busy primary does.
type growingPrimary struct {
	*fakeServer
	reads atomic.Int32
}

func (g *growingPrimary) Executed(ctx context.Context) (string, error) {
	if g.reads.Add(1) == 1 {
		return "0-101-20466", g.record("executed")
	}
	return "0-101-20467", g.record("executed")
}

// A replica that received the primary's latest transaction after status read the
// primary is not reported as holding errant GTIDs (seen in the demo: "replica node1 has
// errant GTIDs 0-103-20467"); one with a transaction of its own still is.
func TestStatusReadsThePrimaryAfterItsReplicas(t *testing.T) {
	third := topology.Node{Name: "node3", IPv4: "127.0.1.3", Port: 3306, Zone: "a", ServerID: 103}
	following := &mysqladmin.ReplicaStatus{SourceHost: "127.0.1.1", SourcePort: 3306, IORunning: "Yes", SQLRunning: true}
	primary := &growingPrimary{fakeServer: &fakeServer{writable: true}}
	servers := map[string]Server{
		tPrimary.Addr(): primary,
		tCand.Addr():    &fakeServer{executed: "0-101-20467", status: following},
		third.Addr():    &fakeServer{executed: "0-101-20466,0-103-1", status: following},
	}
	cfg := &config.Config{Clusters: map[string]config.ClusterConfig{"demo": {Flavor: "mariadb"}}}
	a := &Activities{Config: cfg, Dial: func(addr string, _ flavor.Flavor, _ mysqladmin.Options) (Server, error) { return servers[addr], nil }}
	h := a.inspect(context.Background(), topology.Topology{Cluster: "demo", Epoch: 3, Primary: tPrimary, Replicas: []topology.Node{tCand, third}}, nil, nil)
	got := strings.Join(h.Problems, "\n")
	if strings.Contains(got, "replica node2 has errant") {
		t.Errorf("node2 holds only the primary's transactions, yet:\n%s", got)
	}
	if !strings.Contains(got, "replica node3 has errant GTIDs 0-103-1") {
		t.Errorf("node3's own transaction is not reported:\n%s", got)
	}
	if h.Nodes[0].GTIDs != "0-101-20467" {
		t.Errorf("the primary shows %q; want its set read after the replicas'", h.Nodes[0].GTIDs)
	}
}
