package activities

import (
	"fmt"
	"strings"
	"time"

	"github.com/baton-db/baton/internal/flavor"
	"github.com/baton-db/baton/internal/mysqladmin"
	"github.com/baton-db/baton/internal/topology"
)

// The pre-failover checks of docs/runbook.md §2.1, one pure function each: they judge what
// CheckPreconditions read and change nothing.

const (
	CheckReplicates = "candidate replicates from primary"
	CheckErrant     = "no errant GTIDs"
	CheckDDL        = "no running DDL"
	CheckLongDML    = "no long-running DML"
	CheckLag        = "candidate lag under limit"
	CheckHAProxies  = "HAProxy hosts healthy"
	CheckDowntime   = "candidate not downtimed"
)

// checkDowntime: a human has not taken the candidate out of service.
func checkDowntime(cand topology.Node, downtimed map[string]string) Check {
	c := Check{Name: CheckDowntime}
	if why, ok := downtimed[cand.Name]; ok {
		c.Detail = fmt.Sprintf("%s is %s; pick another replica, or end it with `baton downtime end --host %s`", cand.Name, why, cand.Name)
		return c
	}
	c.OK, c.Detail = true, "no downtime"
	return c
}

// checkReplicates: the candidate is a healthy replica of the current primary.
func checkReplicates(cand, primary topology.Node, st *mysqladmin.ReplicaStatus, err error) Check {
	c := Check{Name: CheckReplicates}
	switch {
	case err != nil:
		c.Detail = fmt.Sprintf("cannot read %s: %v", describe(cand), err)
	case st == nil:
		c.Detail = cand.Name + " is not a replica"
	case !replicatesFrom(st.SourceHost, st.SourcePort, primary):
		c.Detail = fmt.Sprintf("%s replicates from %s:%d, not from %s", cand.Name, st.SourceHost, st.SourcePort, describe(primary))
	case !st.IOConnected() || !st.SQLRunning:
		c.Detail = fmt.Sprintf("%s: IO thread %s, SQL thread running %v %s %s", cand.Name, st.IORunning, st.SQLRunning, st.IOError, st.SQLError)
	default:
		c.OK, c.Detail = true, fmt.Sprintf("%s: IO %s, SQL running", cand.Name, st.IORunning)
	}
	return c
}

// checkErrant: the candidate holds no transaction the primary lacks.
func checkErrant(cand Observed, primary flavor.GTIDSet) Check {
	c := Check{Name: CheckErrant}
	switch {
	case cand.GTIDs == nil || primary == nil:
		c.Detail = "cannot read the candidate's or the primary's executed GTIDs"
	default:
		if miss := flavor.Lacks(primary, cand.GTIDs); miss != "" {
			c.Detail = fmt.Sprintf("%s has transactions the primary lacks: %s; remove them (or inject empty transactions on the primary) before a switchover", cand.Node.Name, miss)
		} else {
			c.OK, c.Detail = true, cand.GTIDs.String()
		}
	}
	return c
}

// checkDDL and checkLongDML: nothing on the primary would make the catch-up after the
// demotion long, or roll back slowly when its session is ended.
func checkDDL(procs []mysqladmin.Process, err error) Check {
	if err != nil {
		return Check{Name: CheckDDL, Detail: err.Error()}
	}
	var ddl []string
	for _, p := range procs {
		if p.IsDDL() {
			ddl = append(ddl, fmt.Sprintf("id %d user %s %ds: %.80s", p.ID, p.User, int(p.Time.Seconds()), p.Info))
		}
	}
	return Check{Name: CheckDDL, OK: len(ddl) == 0, Detail: orNone(ddl, "wait for the schema change to finish")}
}

func checkLongDML(procs []mysqladmin.Process, err error, limit time.Duration) Check {
	if err != nil {
		return Check{Name: CheckLongDML, Detail: err.Error()}
	}
	var dml []string
	for _, p := range procs {
		if p.LongDML(limit) {
			dml = append(dml, fmt.Sprintf("id %d user %s trx %s: %.80s", p.ID, p.User, p.TrxAge.Round(time.Millisecond), p.Info))
		}
	}
	return Check{Name: CheckLongDML, OK: len(dml) == 0, Detail: orNone(dml, fmt.Sprintf("longer than %s; wait for it or end it", limit))}
}

// checkLag: the candidate's heartbeat lag is under max_lag.
func checkLag(cand Observed, limit time.Duration) Check {
	c := Check{Name: CheckLag}
	switch {
	case cand.LagMS < 0:
		c.Detail = fmt.Sprintf("no heartbeat row for %s: is its heartbeat agent running?", cand.Node.Name)
	case cand.LagMS > limit.Milliseconds():
		c.Detail = fmt.Sprintf("%s lags %d ms, limit %s; wait for it to catch up", cand.Node.Name, cand.LagMS, limit)
	default:
		c.OK, c.Detail = true, fmt.Sprintf("%d ms", cand.LagMS)
	}
	return c
}

// checkHAProxyHosts: every configured remote HAProxy host is registered in Consul and its
// checks pass (HAProxy, consul-template and the host's Consul agent itself).
func checkHAProxyHosts(hosts []topology.HAProxyHost, err error, want []configHAProxy) Check {
	if err != nil {
		return Check{Name: CheckHAProxies, Detail: fmt.Sprintf("%v; Consul must be up for a switchover", err)}
	}
	byID := map[string]bool{}
	var bad []string
	for _, h := range hosts {
		byID[h.ID] = true
		if len(h.Failing) > 0 {
			bad = append(bad, fmt.Sprintf("%s: %s", h.ID, strings.Join(h.Failing, ", ")))
		}
	}
	for _, w := range want {
		if !byID["haproxy-"+w.Name] {
			bad = append(bad, "haproxy-"+w.Name+" is not registered in Consul")
		}
	}
	return Check{Name: CheckHAProxies, OK: len(bad) == 0, Detail: orNone(bad, "restart what is down on those hosts")}
}

// failed returns the checks that did not pass.
func failed(checks []Check) []Check {
	var out []Check
	for _, c := range checks {
		if !c.OK {
			out = append(out, c)
		}
	}
	return out
}
