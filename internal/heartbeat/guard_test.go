package heartbeat

import (
	"strings"
	"testing"

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
