package activities

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/baton-db/baton/internal/flavor"
	"github.com/baton-db/baton/internal/topology"
)

// Observed is what Baton could read of one replica.
type Observed struct {
	Node       topology.Node
	Reachable  bool
	Error      string
	IO         string
	SQLRunning bool
	SQLError   string
	GTIDs      flavor.GTIDSet
	// Received is what its IO thread received (MariaDB Gtid_IO_Pos, MySQL
	// Retrieved_Gtid_Set), applied or not: a semi-sync replica acknowledges on receipt.
	Received flavor.GTIDSet
	LagMS    int64 // -1 when unknown
}

// Holds is every transaction the replica has: executed, or received and still in its relay
// log. A candidate is compared by what it holds (it applies its relay log before its
// promotion); comparing executed sets alone ranks a replica that acknowledged more but
// applies slower below one that has less, and its relay log is thrown away at the re-point.
func (o Observed) Holds() flavor.GTIDSet { return flavor.Union(o.GTIDs, o.Received) }

// Policy is the promotion policy of a cluster.
type Policy struct {
	Prefer, MustNot []string
	// PreferNot are ranked below every other eligible replica.
	PreferNot []string
	// Zone is the old primary's zone: a candidate there keeps the application's routes short.
	Zone string
	// RequireSuperset excludes replicas whose GTIDs are not a superset of every other
	// reachable replica's (unplanned failover: never lose an acked write).
	RequireSuperset bool
	// Downtimed are the replicas a human took out of service, with why: never candidates.
	Downtimed map[string]string
	// SameZone keeps the promotion in Zone (prevent_cross_zone_failover): a replica in
	// another zone is never chosen.
	SameZone bool
	// MaxLag caps how far behind the primary's failure a candidate may be
	// (max_lag_unplanned; 0: no cap). Lag is measured to SinceFailure before the ranking.
	MaxLag time.Duration
	// SinceFailure is how long ago the primary was found dead when the replicas were
	// observed: a replica's heartbeat age less that is how far behind the failure it is.
	SinceFailure time.Duration
	// MustHold is what a primary fenced alive had executed (`--primary-alive`): a
	// candidate holds all of it.
	MustHold flavor.GTIDSet
}

// lagAtFailure is how far behind the primary's failure a replica was: the age of its own
// heartbeat row (one host's clock) less the time since the failure. The failure is when the
// detector found the primary dead, so the figure includes the detection time; negative
// means unknown.
func lagAtFailure(o Observed, sinceFailure time.Duration) time.Duration {
	if o.LagMS < 0 {
		return -1
	}
	return max(time.Duration(o.LagMS)*time.Millisecond-sinceFailure, 0)
}

// promotionRules are a cluster's promotion rules by node: the config's prefer and must_not,
// overridden node by node by the rules set at run time (Consul's promotion/<node>).
func promotionRules(prefer, mustNot []string, set map[string]topology.Promotion) map[string]string {
	out := map[string]string{}
	for _, n := range prefer {
		out[n] = "prefer"
	}
	for _, n := range mustNot {
		out[n] = "must_not"
	}
	for n, r := range set {
		out[n] = r.Rule
	}
	return out
}

// withRules puts rules (node → prefer, neutral, prefer_not, must_not) into p.
func (p Policy) withRules(rules map[string]string) Policy {
	p.Prefer, p.PreferNot, p.MustNot = nil, nil, nil
	for n, r := range rules {
		switch r {
		case "prefer":
			p.Prefer = append(p.Prefer, n)
		case "prefer_not":
			p.PreferNot = append(p.PreferNot, n)
		case "must_not":
			p.MustNot = append(p.MustNot, n)
		}
	}
	slices.Sort(p.Prefer)
	slices.Sort(p.PreferNot)
	slices.Sort(p.MustNot)
	return p
}

// downtimed describes every active downtime of t, by node.
func downtimed(t topology.Topology, now time.Time) map[string]string {
	out := map[string]string{}
	for n := range t.Downtimes {
		if d, ok := t.Downtimed(n, now); ok {
			out[n] = d.String()
		}
	}
	return out
}

// rankCandidates ranks the replicas and returns the index of the best one (-1 if none
// qualifies) and a report that says why each replica was or was not chosen. It is the pure
// decision of the ChooseCandidate activity, which observes the replicas first, and of
// CheckPreconditions.
func rankCandidates(obs []Observed, p Policy) (int, []ReplicaReport) {
	reports := make([]ReplicaReport, len(obs))
	var eligible []int
	for i, o := range obs {
		r := ReplicaReport{Node: o.Node, LagMS: o.LagMS, IO: o.IO, SQL: o.SQLRunning}
		if h := o.Holds(); h != nil {
			r.GTIDs = h.String()
		}
		switch {
		case slices.Contains(p.MustNot, o.Node.Name):
			r.Why = "excluded: listed in must_not"
		case p.Downtimed[o.Node.Name] != "":
			r.Why = "excluded: " + p.Downtimed[o.Node.Name]
		case !o.Reachable:
			r.Why = "excluded: unreachable (" + o.Error + ")"
		case p.SameZone && p.Zone != "" && o.Node.Zone != p.Zone:
			r.Why = fmt.Sprintf("excluded: in zone %s, and prevent_cross_zone_failover keeps the primary in zone %s (`baton failover --force` may cross)", o.Node.Zone, p.Zone)
		case p.MaxLag > 0 && lagAtFailure(o, p.SinceFailure) < 0:
			r.Why = fmt.Sprintf("excluded: its lag is unknown (no heartbeat row), and max_lag_unplanned is %s (`baton failover --force` promotes it anyway)", p.MaxLag)
		case p.MaxLag > 0 && lagAtFailure(o, p.SinceFailure) > p.MaxLag:
			r.Why = fmt.Sprintf("excluded: %s behind the primary's failure, over max_lag_unplanned %s (`baton failover --force` promotes it anyway)",
				lagAtFailure(o, p.SinceFailure).Round(time.Millisecond), p.MaxLag)
		case !o.SQLRunning:
			r.Why = "excluded: SQL thread not running " + o.SQLError
		case o.GTIDs == nil:
			r.Why = "excluded: executed GTIDs unknown"
		default:
			if p.RequireSuperset {
				for j, other := range obs {
					if j == i || !other.Reachable || other.Holds() == nil {
						continue
					}
					if miss := flavor.Lacks(o.Holds(), other.Holds()); miss != "" {
						r.Why = fmt.Sprintf("excluded: lacks %s that %s holds (executed or received)", miss, other.Node.Name)
						break
					}
				}
			}
		}
		if r.Why == "" && p.MustHold != nil {
			if miss := flavor.Lacks(o.Holds(), p.MustHold); miss != "" {
				r.Why = fmt.Sprintf("excluded: lacks %s that the fenced primary executed", miss)
			}
		}
		if r.Why == "" {
			r.Eligible = true
			eligible = append(eligible, i)
		}
		reports[i] = r
	}
	if len(eligible) == 0 {
		return -1, reports
	}
	score := func(i int) (int, int, int64, string) {
		o := obs[i]
		pref, zone := 1, 1
		if slices.Contains(p.Prefer, o.Node.Name) {
			pref = 0
		}
		if slices.Contains(p.PreferNot, o.Node.Name) {
			pref = 2
		}
		if p.Zone != "" && o.Node.Zone == p.Zone {
			zone = 0
		}
		lag := o.LagMS
		if lag < 0 {
			lag = 1 << 40
		}
		return pref, zone, lag, o.Node.Name
	}
	sort.SliceStable(eligible, func(a, b int) bool {
		pa, za, la, na := score(eligible[a])
		pb, zb, lb, nb := score(eligible[b])
		if pa != pb {
			return pa < pb
		}
		if za != zb {
			return za < zb
		}
		if la != lb {
			return la < lb
		}
		return na < nb
	})
	best := eligible[0]
	pref, zone, lag, _ := score(best)
	why := "chosen:"
	switch pref {
	case 0:
		why += " listed in prefer;"
	case 2:
		why += " prefer_not, but no other replica is eligible;"
	}
	if zone == 0 {
		why += " same zone as the old primary (" + p.Zone + ");"
	}
	if lag < 1<<40 {
		why += fmt.Sprintf(" lag %d ms;", lag)
	}
	reports[best].Why = why + fmt.Sprintf(" best of %d eligible", len(eligible))
	for _, i := range eligible[1:] {
		reports[i].Why = "eligible, ranked below " + obs[best].Node.Name
	}
	return best, reports
}

// catchUpSource is the way out when rankCandidates finds no candidate only because the
// replica that would be chosen lacks transactions another replica holds, and that other
// replica may not be promoted itself (must_not, downtimed, another zone under
// prevent_cross_zone_failover, too far behind): the chosen one first replicates from a
// donor that has executed everything any replica holds, then is promoted, and nothing any
// replica received is dropped. It returns the candidate and the donor (-1, -1 when there is
// no such pair) and the ranking's reports with the candidate's reason. The donor must have
// executed, not merely received, what it serves: a relay log is not served to replicas. Its
// SQL thread must run without an error: one stopped on an error may hold a transaction of
// its own (under gtid_strict_mode, a local write stops the next replicated one), which is
// not to be copied onto the new primary.
func catchUpSource(obs []Observed, p Policy) (cand, donor int, reports []ReplicaReport) {
	relaxed := p
	relaxed.RequireSuperset = false
	cand, reports = rankCandidates(obs, relaxed)
	if cand < 0 {
		return -1, -1, reports
	}
	var all flavor.GTIDSet
	for _, o := range obs {
		if o.Reachable {
			all = flavor.Union(all, o.Holds())
		}
	}
	if flavor.Lacks(obs[cand].Holds(), all) == "" {
		return -1, -1, reports // it lacks nothing: the superset rule excluded it for another reason
	}
	for i, o := range obs {
		if i == cand || !o.Reachable || !o.SQLRunning || o.SQLError != "" || o.GTIDs == nil || flavor.Lacks(o.GTIDs, all) != "" {
			continue
		}
		reports[cand].Why = fmt.Sprintf("chosen after it catches up from %s, which holds %s it lacks and may not be promoted (%s); %s",
			o.Node.Name, flavor.Lacks(obs[cand].Holds(), all), reports[i].Why, strings.TrimPrefix(reports[cand].Why, "chosen: "))
		return cand, i, reports
	}
	return -1, -1, reports
}
