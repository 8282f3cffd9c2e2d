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
	for _, c := range []struct {
		name  string
		t     topology.Topology
		force bool
		ok    bool
		why   string
	}{
		{"healthy", topology.Topology{Cluster: "demo"}, false, true, ""},
		{"maintenance", topology.Topology{Cluster: "demo", Maintenance: true}, false, false, "in maintenance"},
		{"maintenance forced", topology.Topology{Cluster: "demo", Maintenance: true}, true, true, ""},
		{"inside anti-flap", topology.Topology{Cluster: "demo", LastFailover: recent}, false, false, "anti-flap period of 10m0s"},
		{"anti-flap forced", topology.Topology{Cluster: "demo", LastFailover: recent}, true, true, ""},
		{"after anti-flap", topology.Topology{Cluster: "demo", LastFailover: old}, false, true, ""},
	} {
		ok, why := Failover(c.t, 10*time.Minute, now, c.force)
		if ok != c.ok || !strings.Contains(why, c.why) || (c.ok && why != "") {
			t.Errorf("%s: got %v %q, want %v %q", c.name, ok, why, c.ok, c.why)
		}
	}
}
