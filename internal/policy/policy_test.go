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
		{"cluster's recoveries disabled", topology.Topology{Cluster: "demo", Recoveries: &off}, topology.Recoveries{}, false, false, "disabled for demo (by bob"},
		{"cluster's recoveries enabled", topology.Topology{Cluster: "demo", Recoveries: &topology.Recoveries{By: "bob"}}, topology.Recoveries{}, false, true, ""},
		{"cluster's recoveries disabled, forced", topology.Topology{Cluster: "demo", Recoveries: &off}, topology.Recoveries{}, true, true, ""},
		{"primary downtimed", topology.Topology{Cluster: "demo", Primary: primary, Downtimes: down}, topology.Recoveries{}, false, false, "downtimed by alice until"},
		{"primary downtime expired", topology.Topology{Cluster: "demo", Primary: primary, Downtimes: expired}, topology.Recoveries{}, false, true, ""},
	} {
		ok, why := Failover(c.t, c.rec, 10*time.Minute, now, c.force)
		if ok != c.ok || !strings.Contains(why, c.why) || (c.ok && why != "") {
			t.Errorf("%s: got %v %q, want %v %q", c.name, ok, why, c.ok, c.why)
		}
	}
}

// The anti-flap period is measured to the nanosecond: a failover just inside it is refused,
// one at or just after its end may start, whatever the period.
func TestFailoverAntiFlapBoundary(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name     string
		antiFlap time.Duration
		elapsed  time.Duration // since the last failover
		ok       bool
	}{
		{"just after the last failover", 10 * time.Minute, time.Second, false},
		{"half the period", 10 * time.Minute, 5 * time.Minute, false},
		{"just past half the period", 10 * time.Minute, 5*time.Minute + time.Nanosecond, false},
		{"just inside the period", 10 * time.Minute, 10*time.Minute - time.Nanosecond, false},
		{"exactly the period", 10 * time.Minute, 10 * time.Minute, true},
		{"just outside the period", 10 * time.Minute, 10*time.Minute + time.Nanosecond, true},
		{"just inside a 1h period", time.Hour, time.Hour - time.Millisecond, false},
		{"just outside a 1h period", time.Hour, time.Hour + time.Millisecond, true},
		{"last failover in the future (clock skew)", 10 * time.Minute, -time.Minute, false},
		{"no anti-flap period", 0, 0, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			topo := topology.Topology{Cluster: "demo", LastFailover: &topology.Record{At: now.Add(-c.elapsed)}}
			ok, why := Failover(topo, topology.Recoveries{}, c.antiFlap, now, false)
			if ok != c.ok {
				t.Fatalf("%s after the last failover, anti-flap %s: got %v %q, want %v", c.elapsed, c.antiFlap, ok, why, c.ok)
			}
			if !ok && !strings.Contains(why, "inside the anti-flap period of "+c.antiFlap.String()) {
				t.Fatalf("refusal does not name the anti-flap period: %q", why)
			}
			if ok && why != "" {
				t.Fatalf("allowed with a reason: %q", why)
			}
		})
	}
}
