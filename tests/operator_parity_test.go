package tests

import (
	"encoding/json"
	"strings"
	"syscall"
	"testing"
	"time"
)

// statusJSON is the part of `baton status --json` these tests read.
type statusJSON struct {
	Recoveries struct {
		Disabled bool
		By       string `json:"by"`
	} `json:"recoveries"`
	Clusters []struct {
		Cluster   string `json:"cluster"`
		Epoch     uint64 `json:"epoch"`
		WatchedBy string `json:"watched_by"`
		Nodes     []struct {
			Name      string `json:"name"`
			Role      string `json:"role"`
			LagMS     int64  `json:"lag_ms"`
			Downtime  string `json:"downtime"`
			Promotion string `json:"promotion"`
		} `json:"nodes"`
		Acknowledged *struct {
			By string `json:"by"`
		} `json:"acknowledged"`
		Workflow *struct {
			Type string `json:"type"`
			Step string `json:"step"`
		} `json:"workflow"`
		Problems []string `json:"problems"`
	} `json:"clusters"`
}

func status(t *testing.T, args ...string) statusJSON {
	t.Helper()
	out, code := baton(t, append([]string{"status", "--json"}, args...)...)
	if code != 0 {
		t.Fatalf("status exit %d: %s", code, out)
	}
	var s statusJSON
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("status --json: %v in\n%s", err, out)
	}
	return s
}

// problemsOf returns the problems status lists for a cluster, joined.
func problemsOf(s statusJSON, cluster string) string {
	for _, c := range s.Clusters {
		if c.Cluster == cluster {
			return strings.Join(c.Problems, "\n")
		}
	}
	return "cluster " + cluster + " not shown"
}

func mustBaton(t *testing.T, args ...string) string {
	t.Helper()
	out, code := baton(t, args...)
	if code != 0 {
		t.Fatalf("baton %s: exit %d\n%s", strings.Join(args, " "), code, out)
	}
	return out
}

func TestDowntimedReplicaIsNeverACandidate(t *testing.T) {
	// With the primary in zone b its two replicas tie on zone and are ranked by lag, which
	// moves: in zone a the zone mate is the one candidate before and after the downtime.
	primaryInZone(t, "demo", "a")
	waitSwitchoverReady(t)
	plan := mustBaton(t, "switchover", "--cluster", "demo", "--dry-run")
	chosen := ""
	for _, l := range strings.Split(plan, "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "candidate:" {
			chosen = f[1]
		}
	}
	if chosen == "" {
		t.Fatalf("no candidate in the dry run:\n%s", plan)
	}
	mustBaton(t, "downtime", "--host", chosen, "--for", "10m", "--reason", "disk replacement", "--as", "alice")
	t.Cleanup(func() { baton(t, "downtime", "end", "--host", chosen) })
	if p := problemsOf(status(t), "demo"); !strings.Contains(p, chosen+" is downtimed by alice until") {
		t.Fatalf("status does not list the downtime:\n%s", p)
	}
	plan = mustBaton(t, "switchover", "--cluster", "demo", "--dry-run")
	if !strings.Contains(plan, "excluded: downtimed by alice") || strings.Contains(plan, "candidate: "+chosen) {
		t.Fatalf("the downtimed %s is still a candidate:\n%s", chosen, plan)
	}
	before := snapshot(t)
	refuse(t, "candidate not downtimed", "--cluster", "demo", "--to", chosen)
	if after := snapshot(t); after.String() != before.String() {
		t.Fatalf("a refused switchover changed the cluster:\nbefore %s\nafter  %s", before, after)
	}
	mustBaton(t, "downtime", "end", "--host", chosen)
	if plan = mustBaton(t, "switchover", "--cluster", "demo", "--dry-run"); !strings.Contains(plan, "candidate: "+chosen) {
		t.Fatalf("after the downtime ended, %s is not chosen again:\n%s", chosen, plan)
	}
	// Bad input is refused by name and changes nothing.
	refuseCmd(t, `node "node9" is not a member of any cluster`, "downtime", "--host", "node9", "--for", "1h", "--reason", "x")
	refuseCmd(t, "--reason is required", "downtime", "--host", chosen, "--for", "1h")
	refuseCmd(t, "--for 0s", "downtime", "--host", chosen, "--for", "0s", "--reason", "x")
}

// The global switch and a primary's downtime hold the detector; an expired downtime lets
// it fail over by itself; status lists the failover until a human acknowledges it.
func TestGlobalSwitchAndPrimaryDowntimeHoldAutomaticFailover(t *testing.T) {
	row, before, load := underLoad(t, "primary killed while recoveries are off, then downtimed")
	mustBaton(t, "recoveries", "disable", "--reason", "DC migration", "--as", "bob")
	t.Cleanup(func() { baton(t, "recoveries", "enable") })
	if s := status(t); !s.Recoveries.Disabled || s.Recoveries.By != "bob" {
		t.Fatalf("status recoveries %+v", s.Recoveries)
	}
	killed := time.Now()
	signalNode(t, before.Primary.Name, syscall.SIGKILL)
	t.Cleanup(func() { restartAndRejoin(t, before.Primary.Name) })
	waitLog(t, "DeadPrimary: no failover: automatic recoveries are disabled for every cluster (by bob", 15*time.Second)
	assertNoFailover(t, killed, before.Primary.Name, 2*time.Second)

	// Recoveries back on, but the dead primary is downtimed for a few seconds more.
	mustBaton(t, "downtime", "--host", before.Primary.Name, "--for", "8s", "--reason", "planned reboot", "--as", "carol")
	mustBaton(t, "recoveries", "enable", "--as", "bob")
	waitLog(t, "is downtimed by carol until", 15*time.Second)
	// It expires by itself: the detector then fails over, with no human.
	after := waitNewPrimary(t, before.Primary.Name, 30*time.Second)
	res := lastFailover(t)
	if res.To != after.Primary.Name {
		t.Fatalf("failover %+v", res)
	}
	if d := time.Since(killed); d < 8*time.Second {
		t.Fatalf("failed over %s after the kill, inside the downtime", d)
	}
	assertHealthy(t, load, row)

	if p := problemsOf(status(t), "demo"); !strings.Contains(p, "unacknowledged failover "+before.Primary.Name+" -> "+after.Primary.Name) {
		t.Fatalf("status does not list the unacknowledged failover:\n%s", p)
	}
	mustBaton(t, "ack", "--cluster", "demo", "--comment", "disk on node was full", "--as", "alice")
	s := status(t)
	if p := problemsOf(s, "demo"); strings.Contains(p, "unacknowledged") {
		t.Fatalf("still unacknowledged after baton ack:\n%s", p)
	}
	if c := s.Clusters[0]; c.Acknowledged == nil || c.Acknowledged.By != "alice" {
		t.Fatalf("acknowledged %+v", c.Acknowledged)
	}
}

// waitLog waits for a line in the detector's log written during this test.
func waitLog(t *testing.T, want string, limit time.Duration) {
	t.Helper()
	start := len(detectorLog(t))
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if strings.Contains(detectorLog(t)[min(start, len(detectorLog(t))):], want) {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("the detector did not log %q within %s", want, limit)
}
