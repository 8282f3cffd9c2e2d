package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/baton-db/baton/internal/topology"
	"github.com/baton-db/baton/workflows"
)

// Consul as production runs it: three servers (127.0.5.1-3, raft) behind the client agent on
// 127.0.0.1:8500 that Baton uses. These cases take the raft leader or the quorum away; the
// other Consul cases (faults_test.go) freeze the client agent, Consul as Baton sees it.

// consulServers are the servers' HTTP addresses, in the order of their process names
// (consul-server-1 is the first).
func consulServers() []string { return strings.Fields(sandbox["CONSUL_SERVER_ADDRS"]) }

// consulHTTP GETs path from a Consul agent with the sandbox's management token.
func consulHTTP(addr, path string, timeout time.Duration) (string, int, error) {
	tok, err := os.ReadFile(filepath.Join(sandbox["SANDBOX_STATE"], "consul-management.token"))
	if err != nil {
		return "", 0, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+addr+path, nil)
	req.Header.Set("X-Consul-Token", strings.TrimSpace(string(tok)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), resp.StatusCode, err
}

// consulLeaderVia asks an agent for the raft leader and returns its server number (1-3), or
// 0 when the agent knows no leader.
func consulLeaderVia(addr string) (int, error) {
	body, code, err := consulHTTP(addr, "/v1/status/leader", 2*time.Second)
	if err != nil {
		return 0, err
	}
	if code != http.StatusOK {
		return 0, fmt.Errorf("%s: HTTP %d %s", addr, code, body)
	}
	var leader string
	if err := json.Unmarshal([]byte(body), &leader); err != nil {
		return 0, err
	}
	host, _, _ := strings.Cut(leader, ":")
	for i, s := range consulServers() {
		if strings.HasPrefix(s, host+":") && host != "" {
			return i + 1, nil
		}
	}
	return 0, nil
}

// consulLeader is the current raft leader's server number, as the client agent sees it.
func consulLeader(t *testing.T) int {
	t.Helper()
	n, err := consulLeaderVia(sandbox["CONSUL_HTTP_ADDR"])
	if err != nil || n == 0 {
		t.Fatalf("no Consul leader: %d %v", n, err)
	}
	return n
}

// waitConsulWhole waits until the three servers are raft voters that autopilot calls healthy
// (failure tolerance 1) and the KV answers through the client agent; it returns how long
// that took.
func waitConsulWhole(t *testing.T, limit time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	last := ""
	for {
		var h struct {
			Healthy          bool
			FailureTolerance int
			Servers          []struct {
				Name           string
				Healthy, Voter bool
			}
		}
		body, code, err := consulHTTP(sandbox["CONSUL_HTTP_ADDR"], "/v1/operator/autopilot/health", 2*time.Second)
		if err == nil && code == http.StatusOK && json.Unmarshal([]byte(body), &h) == nil {
			voters := 0
			for _, s := range h.Servers {
				if s.Healthy && s.Voter {
					voters++
				}
			}
			peers, _, _ := consulHTTP(sandbox["CONSUL_HTTP_ADDR"], "/v1/status/peers", 2*time.Second)
			_, _, kvErr := consulKV.Get("baton/clusters/demo/epoch", nil)
			if h.Healthy && h.FailureTolerance == 1 && voters == 3 && strings.Count(peers, ":8300") == 3 && kvErr == nil {
				return time.Since(start)
			}
			last = fmt.Sprintf("autopilot healthy=%v tolerance=%d healthy voters=%d; peers %s; kv %v", h.Healthy, h.FailureTolerance, voters, strings.TrimSpace(peers), kvErr)
		} else {
			last = fmt.Sprintf("autopilot health: HTTP %d %v %s", code, err, body)
		}
		if time.Since(start) > limit {
			t.Fatalf("Consul's three servers not whole within %s: %s", limit, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// readTopoThrough reads demo's topology, retrying errors for up to limit: for some seconds
// after a Consul server dies, the agents still route a share of requests to it, and those
// fail at once (HTTP 500, connection refused) instead of waiting.
func readTopoThrough(t *testing.T, limit time.Duration) topology.Topology {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		tp, err := topo.Read(context.Background(), "demo")
		if err == nil {
			return tp
		}
		if time.Now().After(deadline) {
			t.Fatalf("Consul did not answer for %s: %v", limit, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// fencedSince lists the fencing records of every cluster written after since.
func fencedSince(t *testing.T, since time.Time) []string {
	t.Helper()
	pairs, _, err := consulKV.List("baton/clusters/", nil)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, p := range pairs {
		if !strings.Contains(p.Key, "/fenced/") {
			continue
		}
		var f topology.Fencing
		if err := json.Unmarshal(p.Value, &f); err != nil || f.At.After(since) {
			out = append(out, fmt.Sprintf("%s: %s", p.Key, p.Value))
		}
	}
	return out
}

// The Consul raft leader dies (SIGKILL) just as an unplanned failover starts: the failover's
// Consul reads and its publish meet an election, wait it out through the client agent, and
// the failover completes once, with nothing acked lost. The killed server then rejoins.
func TestConsulLeaderKilledDuringFailoverPublish(t *testing.T) {
	waitConsulWhole(t, 30*time.Second)
	row, before, l := underLoad(t, "Consul raft leader SIGKILLed as an unplanned failover starts (new leader elected, failover finished)")
	leader := consulLeader(t)
	leaderPID := pidOf(t, fmt.Sprintf("consul-server-%d", leader))
	c := temporalClient(t)
	killed := time.Now()
	signalNode(t, before.Primary.Name, syscall.SIGKILL)
	t.Cleanup(func() { restartAndRejoin(t, before.Primary.Name) })
	t.Cleanup(func() { // a failover that failed leaves the dead node named primary: fail over by hand first
		if tp := readTopoThrough(t, 30*time.Second); tp.Primary.Name == before.Primary.Name {
			out, code := baton(t, "failover", "--cluster", "demo", "--force")
			t.Logf("cleanup: %s is still the primary in Consul; baton failover --force: exit %d: %s", before.Primary.Name, code, lastLine(out))
			waitFor(t, 60*time.Second, func() bool { return readTopoThrough(t, 10*time.Second).Primary.Name != before.Primary.Name })
		}
	})
	// The failover exists: kill the leader now (its first steps read Consul, then it publishes).
	var started time.Time
	for deadline := time.Now().Add(20 * time.Second); started.IsZero(); time.Sleep(10 * time.Millisecond) {
		d, err := c.DescribeWorkflowExecution(context.Background(), workflows.WorkflowID("demo"), "")
		if err == nil && d.GetWorkflowExecutionInfo().GetType().GetName() == "UnplannedFailover" &&
			d.GetWorkflowExecutionInfo().GetStartTime().AsTime().After(killed) {
			started = time.Now()
		}
		if time.Now().After(deadline) {
			t.Fatal("no UnplannedFailover started within 20 s of the primary's kill")
		}
	}
	if err := syscall.Kill(leaderPID, syscall.SIGKILL); err != nil {
		t.Fatalf("kill consul-server-%d: %v", leader, err)
	}
	leaderKilled := time.Now()
	restarted := false
	t.Cleanup(func() { // runs before the rejoin above: the rejoin needs Consul whole
		if !restarted {
			sandboxCmd(t, "start-consul-server", strconv.Itoa(leader))
			waitConsulWhole(t, 60*time.Second)
		}
	})
	t.Logf("failover started %s after the kill; consul-server-%d (the leader) killed %s later",
		started.Sub(killed).Round(time.Millisecond), leader, leaderKilled.Sub(started).Round(time.Millisecond))
	step := make(chan string, 1)
	go func() { // where the failover was when the leader died (a query, so it may answer late)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var s string
		if v, err := c.QueryWorkflow(ctx, workflows.WorkflowID("demo"), "", workflows.QueryCurrentStep); err != nil || v.Get(&s) != nil {
			s = fmt.Sprintf("unknown (%v)", err)
		}
		step <- s
	}()
	// A new leader among the two others.
	var elected time.Duration
	waitFor(t, 20*time.Second, func() bool {
		for i, s := range consulServers() {
			if i+1 == leader {
				continue
			}
			if n, err := consulLeaderVia(s); err == nil && n != 0 && n != leader {
				elected = time.Since(leaderKilled)
				return true
			}
		}
		return false
	})
	fmt.Printf("METRIC consul_leader_election=%s (leader consul-server-%d SIGKILLed -> new leader)\n", elected.Round(time.Millisecond), leader)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var res workflows.Result
	failed := ""
	if err := c.GetWorkflow(ctx, workflows.WorkflowID("demo"), "").Get(ctx, &res); err != nil || res.Outcome != "succeeded" || res.Kind != "unplanned" {
		// A failure, but the cluster must still end with one new primary: the detector may
		// start the failover again, and the checks below then hold for that one.
		failed = fmt.Sprintf("the failover running when the Consul leader died ended with %v (outcome %q)", err, res.Outcome)
		t.Errorf("%s", failed)
		waitFor(t, 60*time.Second, func() bool { return readTopoThrough(t, 10*time.Second).Primary.Name != before.Primary.Name })
		res = lastFailover(t)
		t.Logf("a second failover finished it %s after the kill", time.Since(killed).Round(time.Millisecond))
	}
	done := time.Since(killed)
	t.Logf("the failover was at %q when the leader died", <-step)
	for _, s := range res.Steps {
		t.Logf("  step %-22s %s", s.Name, s.Duration.Round(time.Millisecond))
	}
	fmt.Printf("METRIC consul_leader_killed_failover=%s (primary kill -> failover finished, leader killed %s after the kill)\n",
		done.Round(time.Millisecond), leaderKilled.Sub(killed).Round(time.Millisecond))
	after := readTopoThrough(t, 10*time.Second)
	if after.Epoch != before.Epoch+1 || after.Primary.Name == before.Primary.Name || after.Primary.Name != res.To {
		t.Fatalf("after the failover: primary %s epoch %d (was %s %d, the failover promoted %s)", after.Primary.Name, after.Epoch, before.Primary.Name, before.Epoch, res.To)
	}
	waitRouting(t, after.Primary.ServerID, 15*time.Second)
	if runs := failoverRuns(t, killed); len(runs) != 1 && failed == "" {
		t.Fatalf("%d UnplannedFailover runs for one dead primary, want 1", len(runs))
	}
	time.Sleep(time.Second)
	l.Stop()
	gap := outage(t, "consul_leader_killed_outage", l)
	row.note = strings.TrimPrefix(fmt.Sprintf("%s; failover in %s, new Consul leader in %s, client outage %s", failed, done.Round(100*time.Millisecond), elected.Round(100*time.Millisecond), gap.Round(100*time.Millisecond)), "; ")
	assertHealthy(t, l, row)
	sandboxCmd(t, "start-consul-server", strconv.Itoa(leader))
	restarted = true
	took := waitConsulWhole(t, 60*time.Second)
	fmt.Printf("METRIC consul_server_rejoin=%s (consul-server-%d restarted -> three healthy voters)\n", took.Round(time.Millisecond), leader)
}

// Two of the three Consul servers stop (SIGSTOP) for 20 s while every database is healthy:
// Consul has no quorum, so Baton can read and write nothing in it. Nothing may move: no
// failover, no node fenced, and the application's writes go on through HAProxy the whole time.
func TestConsulQuorumLostWhileDatabasesHealthy(t *testing.T) {
	waitConsulWhole(t, 30*time.Second)
	row, before, l := underLoad(t, "Consul quorum lost for 20 s (two of three servers SIGSTOPped), databases healthy: nothing moves")
	assertDetectorWatching(t, "demo")
	log := detectorLogFrom(t)
	agentLog := agentLogFrom(t, before.Primary.Name)
	leader := consulLeader(t)
	stopped := []int{leader, leader%3 + 1} // the leader and one follower
	survivor := 6 - stopped[0] - stopped[1]
	var pids []int
	for _, n := range stopped {
		pid := pidOf(t, fmt.Sprintf("consul-server-%d", n))
		pids = append(pids, pid)
		t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGCONT) })
	}
	since := time.Now()
	for i, pid := range pids {
		if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
			t.Fatalf("stop consul-server-%d: %v", stopped[i], err)
		}
	}
	resume := func() {
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGCONT)
		}
	}
	// The fault is in place: the survivor knows no leader, and the KV does not answer.
	waitFor(t, 10*time.Second, func() bool {
		n, err := consulLeaderVia(consulServers()[survivor-1])
		return err == nil && n == 0
	})
	lost := time.Now()
	if body, code, err := consulHTTP(sandbox["CONSUL_HTTP_ADDR"], "/v1/kv/baton/clusters/demo/epoch", 3*time.Second); err == nil && code == http.StatusOK {
		t.Fatalf("with two servers stopped the KV still answers: %s", body)
	}
	t.Logf("consul-server-%d and -%d stopped; consul-server-%d has no leader %s later", stopped[0], stopped[1], survivor, lost.Sub(since).Round(time.Millisecond))
	// For the whole window the primary stays writable and every replica read-only: nobody
	// fences (a fence would be recorded only once Consul is back, so the nodes are asked).
	for time.Since(since) < 20*time.Second {
		for _, n := range append([]topology.Node{before.Primary}, before.Replicas...) {
			db := adminDB(n.Addr())
			var ro bool
			err := db.QueryRow("SELECT @@read_only").Scan(&ro)
			db.Close()
			if err != nil || ro != (n.Name != before.Primary.Name) {
				resume()
				t.Fatalf("%s %s into the quorum loss: read_only=%v (%v); the primary is %s", n.Name, time.Since(since).Round(time.Millisecond), ro, err, before.Primary.Name)
			}
		}
		time.Sleep(500 * time.Millisecond)
	}
	resume()
	resumed := time.Now()
	back := waitConsulWhole(t, 30*time.Second)
	fmt.Printf("METRIC consul_quorum_back=%s (two servers resumed -> three healthy voters, KV answers)\n", back.Round(time.Millisecond))
	// Some seconds with Consul back: nothing acts late on what it could not do in the window.
	assertNoFailover(t, since, before.Primary.Name, 5*time.Second)
	// The detector reads the topology again (its last "cannot read topology" is 3 s old), so
	// that the next case finds it watching; how long that took is reported.
	var blind time.Duration
	waitFor(t, 60*time.Second, func() bool {
		lines := linesFor(log(), "demo", "cannot read topology")
		if len(lines) == 0 {
			return true
		}
		at, err := time.Parse(time.RFC3339Nano, strings.TrimPrefix(strings.Fields(lines[len(lines)-1])[0], "time="))
		blind = at.Sub(resumed.Add(back))
		return err == nil && time.Since(at) > 3*time.Second
	})
	fmt.Printf("METRIC consul_quorum_detector_stale_after_back=%s (quorum back and the KV answering -> the detector's last failed topology read)\n", blind.Round(time.Millisecond))
	// It was 17 s while the watch's next query blocked for its full wait, and up to 13 s
	// while a query sent during the outage waited the blocking query's limit.
	if blind > 5*time.Second {
		t.Errorf("the detector could not read the topology for %s after Consul's quorum was back: blind to a dead primary", blind.Round(time.Millisecond))
	}
	// The lease was under test: the primary's agent could not renew it, and stayed put
	// because every replica followed its node.
	if !strings.Contains(agentLog(), "staying writable (failsafe)") {
		t.Errorf("the primary's agent never took the failsafe (its lease was not at stake?):\n%s", agentLog())
	}
	assertDetectorWatching(t, "demo")
	l.Stop()
	gap := outage(t, "consul_quorum_lost_longest_write_gap", l)
	inWindow := l.AckedAfter(since) - l.AckedAfter(resumed)
	t.Logf("%d writes acked during the %s without quorum (%s)", inWindow, resumed.Sub(since).Round(time.Millisecond), l)
	row.note = fmt.Sprintf("%d writes acked in the 20 s without quorum; longest gap %s", inWindow, gap.Round(time.Millisecond))
	if gap > 2*time.Second {
		t.Errorf("the application's writes stopped for %s while only Consul was down", gap.Round(time.Millisecond))
	}
	if after := readTopo(t); after.Epoch != before.Epoch || after.Primary.Name != before.Primary.Name {
		t.Fatalf("Consul moved: primary %s epoch %d (was %s %d)", after.Primary.Name, after.Epoch, before.Primary.Name, before.Epoch)
	}
	if f := fencedSince(t, since); len(f) > 0 {
		t.Fatalf("nodes fenced while Consul had no quorum:\n  %s", strings.Join(f, "\n  "))
	}
	assertHealthy(t, l, row)
}
