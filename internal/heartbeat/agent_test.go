package heartbeat

import (
	"testing"
	"time"

	"github.com/baton-db/baton/internal/topology"
)

func TestReachReportsExpire(t *testing.T) {
	now := time.Now()
	fresh := topology.Reach{OK: false, Since: now.Add(-time.Hour), At: now.Add(-time.Second)}
	stale := topology.Reach{OK: false, Since: now.Add(-time.Hour), At: now.Add(-topology.ReachMaxAge - time.Second)}
	old := topology.Reach{OK: false, Since: now.Add(-time.Hour)} // written before reports carried At
	if !fresh.Fresh(now) || stale.Fresh(now) || old.Fresh(now) {
		t.Fatalf("fresh %v stale %v old %v", fresh.Fresh(now), stale.Fresh(now), old.Fresh(now))
	}
	if ReportEvery*2 >= topology.ReachMaxAge {
		t.Fatalf("an agent repeats its report every %s: reports must count for at least two rounds (max age %s)", ReportEvery, topology.ReachMaxAge)
	}
}
