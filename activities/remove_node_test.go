package activities

import (
	"context"
	"strings"
	"testing"

	"github.com/baton-db/baton/internal/config"
	"github.com/baton-db/baton/internal/topology"
)

// node remove refuses the primary and, under cross_zone, the last replica that may
// acknowledge (unless forced); otherwise Consul drops the node first (the reader pool and
// every later choice), then its replication is detached and it stays read-only.
func TestRemoveNode(t *testing.T) {
	mate := topology.Node{Name: "node3", IPv4: "127.0.1.3", Port: 3306, Zone: "a", ServerID: 103}
	for _, c := range []struct {
		name    string
		host    string
		force   bool
		refusal string // "" when it is removed
	}{
		{"the primary is refused", "node1", false, ErrNodeIsPrimary},
		{"an unknown node is refused", "node9", false, ErrUnknownNode},
		{"the only other-zone replica is the last acker", "node2", false, ErrLastAcker},
		{"forced, the last acker goes", "node2", true, ""},
		{"the zone mate (not an acker) goes", "node3", false, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			servers := map[string]*fakeServer{tPrimary.Addr(): {}, tCand.Addr(): {}, mate.Addr(): {}}
			topo := &fakeTopo{t: topology.Topology{Cluster: "demo", Primary: tPrimary, Replicas: []topology.Node{tCand, mate}}}
			a := fakeActivities(servers)
			cc := a.Config.Clusters["demo"]
			cc.Durability = config.DurabilityCrossZone
			a.Config.Clusters["demo"] = cc
			a.Topo = topo
			var node *fakeServer
			for _, n := range topo.t.Replicas {
				if n.Name == c.host {
					node = servers[n.Addr()]
				}
			}
			if node != nil {
				topo.onAdmit = func() { _ = node.record("detached in consul") }
			}
			_, err := a.RemoveNode(context.Background(), RemoveInput{Cluster: "demo", Host: c.host, By: "alice", Reason: "decommission", Force: c.force})
			if c.refusal != "" {
				if err == nil || !strings.Contains(err.Error(), c.refusal) || len(topo.detached) != 0 {
					t.Fatalf("remove %s: %v, detached %v; want %s and nothing changed", c.host, err, topo.detached, c.refusal)
				}
				for _, s := range servers {
					if len(s.did) != 0 {
						t.Fatalf("a refused removal touched a server: %v", s.did)
					}
				}
				return
			}
			if err != nil || len(topo.detached) != 1 || topo.detached[0] != c.host {
				t.Fatalf("remove %s: %v, detached %v", c.host, err, topo.detached)
			}
			if did := strings.Join(node.did, ","); !strings.HasPrefix(did, "detached in consul,") || !strings.Contains(did, "reset") || !strings.HasSuffix(did, "read_only") {
				t.Fatalf("steps on %s: %s; want Consul first, then replication reset, read-only last", c.host, did)
			}
		})
	}
}
