// Package policy decides whether a failover may start. The detector asks before it starts
// one and the workflow asks again when it confirms, with the same function.
package policy

import (
	"fmt"
	"time"

	"github.com/baton-db/baton/internal/topology"
)

// Failover says whether an automatic failover of t's cluster may start at now, and why not.
// Force (a human's `baton failover --force`) overrides the global switch, the cluster's own
// switch, a downtimed primary, maintenance and the anti-flap period.
func Failover(t topology.Topology, rec topology.Recoveries, antiFlap time.Duration, now time.Time, force bool) (ok bool, why string) {
	if force {
		return true, ""
	}
	const override = "; use `baton failover --force` to fail over anyway"
	d, downtimed := t.Downtimed(t.Primary.Name, now)
	switch {
	case rec.Disabled:
		return false, fmt.Sprintf("automatic recoveries are disabled for every cluster (by %s at %s: %s); `baton recoveries enable` turns them on%s",
			rec.By, rec.At.UTC().Format(time.RFC3339), rec.Reason, override)
	case t.Recoveries != nil && t.Recoveries.Disabled:
		r := t.Recoveries
		return false, fmt.Sprintf("automatic recoveries are disabled for %s (by %s at %s: %s); `baton recoveries enable --cluster %s` turns them on%s",
			t.Cluster, r.By, r.At.UTC().Format(time.RFC3339), r.Reason, t.Cluster, override)
	case downtimed:
		return false, fmt.Sprintf("primary %s of %s is %s%s", t.Primary.Name, t.Cluster, d, override)
	case t.Maintenance:
		return false, fmt.Sprintf("cluster %s is in maintenance%s", t.Cluster, override)
	case t.LastFailover != nil && now.Sub(t.LastFailover.At) < antiFlap:
		return false, fmt.Sprintf("the last failover of %s was %s ago, inside the anti-flap period of %s%s",
			t.Cluster, now.Sub(t.LastFailover.At).Round(time.Second), antiFlap, override)
	}
	return true, ""
}
