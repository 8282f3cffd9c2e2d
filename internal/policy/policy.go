// Package policy decides whether a failover may start. The detector asks before it starts
// one and the workflow asks again when it confirms, with the same function.
package policy

import (
	"fmt"
	"time"

	"github.com/baton-db/baton/internal/topology"
)

// Failover says whether an automatic failover of t's cluster may start at now, and why not.
// Force (a human's `baton failover --force`) overrides maintenance and the anti-flap period.
func Failover(t topology.Topology, antiFlap time.Duration, now time.Time, force bool) (ok bool, why string) {
	if force {
		return true, ""
	}
	switch {
	case t.Maintenance:
		return false, fmt.Sprintf("cluster %s is in maintenance; use `baton failover --force` to fail over anyway", t.Cluster)
	case t.LastFailover != nil && now.Sub(t.LastFailover.At) < antiFlap:
		return false, fmt.Sprintf("the last failover of %s was %s ago, inside the anti-flap period of %s; use `baton failover --force` to fail over anyway",
			t.Cluster, now.Sub(t.LastFailover.At).Round(time.Second), antiFlap)
	}
	return true, ""
}
