package policy

import (
	"strings"
	"testing"
	"time"

	"github.com/baton-db/baton/internal/topology"
)

func TestFailover(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	recent := &topology.Record{At: now.Add(-time.Minute)}
	old := &topology.Record{At: now.Add(-time.Hour)}
	down := map[string]topology.Downtime{"node1": {Node: "node1", By: "alice", Reason: "disk swap", Until: now.Add(time.Hour)}}
	expired := map[string]topology.Downtime{"node1": {Node: "node1", By: "alice", Until: now.Add(-time.Second)}}
	off := topology.Recoveries{Disabled: true, By: "bob", Reason: "DC migration"}
	primary := topology.Node{Name: "node1"}
	for _, c := range []struct {
		name  string
		t     topology.Topology
		rec   topology.Recoveries
		force bool
		ok    bool
		why   string
	}{
		{"healthy", topology.Topology{Cluster: "demo"}, topology.Recoveries{}, false, true, ""},
		{"maintenance", topology.Topology{Cluster: "demo", Maintenance: true}, topology.Recoveries{}, false, false, "in maintenance"},
		{"maintenance forced", topology.Topology{Cluster: "demo", Maintenance: true}, topology.Recoveries{}, true, true, ""},
		{"inside anti-flap", topology.Topology{Cluster: "demo", LastFailover: recent}, topology.Recoveries{}, false, false, "anti-flap period of 10m0s"},
		{"anti-flap forced", topology.Topology{Cluster: "demo", LastFailover: recent}, topology.Recoveries{}, true, true, ""},
		{"after anti-flap", topology.Topology{Cluster: "demo", LastFailover: old}, topology.Recoveries{}, false, true, ""},
		{"recoveries disabled", topology.Topology{Cluster: "demo"}, off, false, false, "disabled for every cluster (by bob"},
		{"recoveries disabled, forced", topology.Topology{Cluster: "demo"}, off, true, true, ""},
		{"primary downtimed", topology.Topology{Cluster: "demo", Primary: primary, Downtimes: down}, topology.Recoveries{}, false, false, "downtimed by alice until"},
		{"primary downtime expired", topology.Topology{Cluster: "demo", Primary: primary, Downtimes: expired}, topology.Recoveries{}, false, true, ""},
	} {
		ok, why := Failover(c.t, c.rec, 10*time.Minute, now, c.force)
		if ok != c.ok || !strings.Contains(why, c.why) || (c.ok && why != "") {
			t.Errorf("%s: got %v %q, want %v %q", c.name, ok, why, c.ok, c.why)
		}
	}
}
