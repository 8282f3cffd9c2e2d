package tests

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// The operator's CLI needs only Temporal: with a config that has nothing but the temporal
// section (no secrets_file, no consul or mysql settings) and no secret in its environment,
// status, the dry runs, a downtime and its end, a promotion rule, the recoveries switch, a
// switchover with approval and a cluster's settings all work (cluster add: catalog_test.go): the
// worker runs them (the Inspect and Operate workflows) with its own accounts and token.
func TestCLIWithoutDatabaseOrConsulSecrets(t *testing.T) {
	cfg := temporalOnlyConfig(t)
	run := func(want int, args ...string) string {
		t.Helper()
		out, code := batonConfig(t, cfg, args...)
		if code != want {
			t.Fatalf("baton %s with a temporal-only config: exit %d, want %d\n%s", strings.Join(args, " "), code, want, out)
		}
		return out
	}
	topo := readTopo(t)

	if out := run(0, "status"); !strings.Contains(out, "automatic recoveries:") || !strings.Contains(out, "CLUSTER") || !strings.Contains(out, "demo") {
		t.Errorf("status:\n%s", out)
	}
	var st struct {
		Clusters []struct {
			Cluster string `json:"cluster"`
			Nodes   []struct {
				Name string `json:"name"`
				Role string `json:"role"`
			} `json:"nodes"`
			WatchedBy string `json:"watched_by"`
		} `json:"clusters"`
	}
	out := run(0, "status", "--cluster", "demo", "-o", "json")
	if err := json.Unmarshal([]byte(out), &st); err != nil || len(st.Clusters) != 1 || st.Clusters[0].Cluster != "demo" {
		t.Fatalf("status --cluster demo -o json: %v\n%s", err, out)
	}
	primary := ""
	for _, n := range st.Clusters[0].Nodes {
		if n.Role == "primary" {
			primary = n.Name
		}
	}
	if primary != topo.Primary.Name || st.Clusters[0].WatchedBy == "" {
		t.Errorf("status -o json: primary %q (Consul: %q), watched by %q", primary, topo.Primary.Name, st.Clusters[0].WatchedBy)
	}
	run(3, "status", "--cluster", "nope") // the worker refuses an unknown cluster

	if out := run(0, "switchover", "--cluster", "demo", "--dry-run"); !strings.Contains(out, "DRY RUN: planned switchover of demo") ||
		!strings.Contains(out, "primary:   "+topo.Primary.Name) || !strings.Contains(out, "candidate: ") || !strings.Contains(out, "steps that would run:") {
		t.Errorf("switchover --dry-run:\n%s", out)
	}
	// The primary is alive: the failover would be a no-op, and says so.
	if out := run(0, "failover", "--cluster", "demo", "--dry-run"); !strings.Contains(out, "DRY RUN: unplanned failover of demo") ||
		!strings.Contains(out, "confirm: ") || !strings.Contains(out, "no-op") {
		t.Errorf("failover --dry-run:\n%s", out)
	}

	if len(topo.Replicas) == 0 {
		t.Fatal("demo has no replica")
	}
	replica := topo.Replicas[0].Name
	t.Cleanup(func() { baton(t, "downtime", "end", "--host", replica) })
	if out := run(0, "downtime", "--host", replica, "--for", "1m", "--reason", "test", "--as", "alice"); !strings.Contains(out, replica+" of demo is downtimed until") ||
		!strings.Contains(out, "by alice (test); as replica") {
		t.Errorf("downtime:\n%s", out)
	}
	if _, ok := readTopo(t).Downtimes[replica]; !ok {
		t.Errorf("the downtime of %s is not in Consul", replica)
	}
	if out := run(0, "downtime", "end", "--host", replica); !strings.Contains(out, "downtime of "+replica+" (demo) ended") {
		t.Errorf("downtime end:\n%s", out)
	}
	if _, ok := readTopo(t).Downtimes[replica]; ok {
		t.Errorf("the downtime of %s is still in Consul", replica)
	}
	run(3, "downtime", "end", "--host", replica)                                           // it has none now
	run(3, "downtime", "--host", "node9", "--for", "1m", "--reason", "x", "--as", "alice") // not a member

	// A promotion rule, set through the worker, reaches Consul.
	t.Cleanup(func() { baton(t, "node", "set", "--host", replica, "--promotion", "neutral") })
	if out := run(0, "node", "set", "--host", replica, "--promotion", "prefer_not", "--as", "alice"); !strings.Contains(out, replica+" of demo: promotion prefer_not, set by alice") {
		t.Errorf("node set:\n%s", out)
	}
	if r := readTopo(t).Promotions[replica]; r.Rule != "prefer_not" || r.By != "alice" {
		t.Errorf("the rule of %s in Consul: %+v", replica, r)
	}
	run(2, "node", "set", "--host", replica, "--promotion", "sometimes")
	run(3, "node", "set", "--host", "node9", "--promotion", "prefer", "--as", "alice") // not a member

	if out := run(0, "recoveries"); !strings.Contains(out, "automatic recoveries are") {
		t.Errorf("recoveries:\n%s", out)
	}
	var rec struct {
		Enabled bool   `json:"enabled"`
		Cluster string `json:"cluster"`
	}
	out = run(0, "recoveries", "--cluster", "demo", "-o", "json")
	if err := json.Unmarshal([]byte(out), &rec); err != nil || rec.Cluster != "demo" {
		t.Errorf("recoveries --cluster demo -o json: %v\n%s", err, out)
	}

	// A switchover with approval: started, approved and finished by CLIs that hold no secret.
	waitSwitchoverReady(t)
	done := make(chan string, 1)
	go func() {
		out, _ := batonConfig(t, cfg, "switchover", "--cluster", "demo", "--require-approval")
		done <- out
	}()
	waitFor(t, 15*time.Second, func() bool {
		return len(listWorkflows(t, "BatonCluster = 'demo' AND BatonStep = 'waiting for approval' AND ExecutionStatus = 'Running'")) == 1
	})
	t.Cleanup(func() { baton(t, "abort", "--cluster", "demo", "--as", "alice", "--reason", "test failed") })
	run(0, "approve", "--cluster", "demo", "--as", "alice")
	if out := <-done; !strings.Contains(out, "approve by alice") || !strings.Contains(out, "succeeded planned") {
		t.Fatalf("switchover with approval from a temporal-only CLI:\n%s", out)
	}
	if tp := readTopo(t); tp.Primary.Name == topo.Primary.Name {
		t.Fatal("the approved switchover did not move the primary")
	}

	// A cluster's settings, read and changed through the worker: the catalog in Consul.
	if out := run(0, "cluster", "show", "--name", "demo"); !strings.Contains(out, "cluster demo: last change") || !strings.Contains(out, "durability: cross_zone") {
		t.Errorf("cluster show:\n%s", out)
	}
	t.Cleanup(func() { baton(t, "cluster", "set", "--name", "demo", "--as", "cleanup", "long_dml=2s") })
	if out := run(0, "cluster", "set", "--name", "demo", "--as", "alice", "long_dml=3s"); !strings.Contains(out, "long_dml=3s, by alice") {
		t.Errorf("cluster set:\n%s", out)
	}
	run(2, "cluster", "set", "--name", "demo", "long_dmll=3s") // no such setting: refused before Temporal
	run(3, "cluster", "set", "--name", "nope", "long_dml=3s")  // not in the catalog
}
