package tests

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/baton-db/baton/internal/config"
	"github.com/baton-db/baton/internal/loadgen"
)

// temporalOnlyConfig writes a baton config that has nothing but the temporal section (no
// secrets_file, no consul or mysql settings) and clears every secret from the environment:
// what such a CLI does, the worker does with its own accounts and token.
func temporalOnlyConfig(t *testing.T) string {
	t.Helper()
	for _, k := range []string{"MYSQL_ADMIN_USER", "MYSQL_ADMIN_PASSWORD", "MYSQL_REPL_USER", "MYSQL_REPL_PASSWORD",
		"MYSQL_HEARTBEAT_USER", "MYSQL_HEARTBEAT_PASSWORD", "CONSUL_HTTP_TOKEN", "CONSUL_HTTP_ADDR", "BATON_CONFIG", "BATON_SECRETS_FILE"} {
		t.Setenv(k, "")
	}
	queue := "baton"
	if full, err := config.LoadCLI(sandbox["BATON_CONFIG"], nil); err == nil && full.Temporal.TaskQueue != "" {
		queue = full.Temporal.TaskQueue
	}
	cfg := filepath.Join(t.TempDir(), "cli.yaml")
	body := "temporal:\n  address: " + sandbox["TEMPORAL_ADDRESS"] + "\n  namespace: " + sandbox["TEMPORAL_NAMESPACE"] + "\n  task_queue: " + queue + "\n"
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// temporalOnlyCLI runs baton with a temporalOnlyConfig.
func temporalOnlyCLI(t *testing.T) func(args ...string) (string, int) {
	t.Helper()
	cfg := temporalOnlyConfig(t)
	return func(args ...string) (string, int) {
		t.Helper()
		return batonConfig(t, cfg, args...)
	}
}

// A cluster added while everything runs, with no file edit and no restart: `baton cluster
// add` enters it in the catalog, the remote HAProxies route it on new ports within seconds,
// a detector watches it, `cluster set` changes it live, its primary's kill -9 under load
// fails over with every acknowledged write on the survivor; `cluster remove` stops all of it.
// Every cluster verb runs with a temporal-only config and no secret in the environment: the
// worker prepares, discovers, seeds, enters, lists and removes.
func TestClusterAddedAtRunTimeIsWatchedServedAndRouted(t *testing.T) {
	row := fault(t, "cluster added at run time (no file edit, no restart): its primary kill -9 under load")
	const c = "demo3"
	cli := temporalOnlyCLI(t)
	cliJSON := func(v any, args ...string) {
		t.Helper()
		out, code := cli(append(args, "-o", "json")...)
		if code != 0 {
			t.Fatalf("baton %v -o json with a temporal-only config: exit %d\n%s", args, code, out)
		}
		if err := json.Unmarshal([]byte(out), v); err != nil {
			t.Fatalf("baton %v -o json: %v\n%s", args, err, out)
		}
	}
	t.Cleanup(func() {
		sandboxCmd(t, "node-down", "node6")
		sandboxCmd(t, "node-down", "node7")
	})
	sandboxCmd(t, "node-up", "node6", c)
	sandboxCmd(t, "node-up", "node7", c)
	t.Cleanup(func() { cli("cluster", "remove", "--name", c, "--yes") }) // before the nodes go

	added := time.Now()
	out, code := cli("cluster", "add", "--name", c, "--primary", "127.0.1.6:3306",
		"--names", "127.0.1.6=node6,127.0.1.7=node7", "--zones", "127.0.1.6=a,127.0.1.7=b",
		"--init", "--attach", "127.0.1.7:3306", "--set", "durability=cross_zone", "--set", "anti_flap=0s")
	if code != 0 {
		t.Fatalf("cluster add (exit %d):\n%s", code, out)
	}
	// The next free port pair after demo's and demo2's, on both remote HAProxies.
	writerA, writerB := "127.0.2.1:3326", "127.0.2.2:3326"
	if !strings.Contains(out, "writer "+writerA) || !strings.Contains(out, "writer "+writerB) {
		t.Fatalf("cluster add does not name the frontends %s and %s:\n%s", writerA, writerB, out)
	}
	waitFor(t, 15*time.Second, func() bool {
		a, errA := serverIDVia(writerA)
		b, errB := serverIDVia(writerB)
		return errA == nil && errB == nil && a == 106 && b == 106
	})
	t.Logf("both remote HAProxies route %s to node6 %s after cluster add began", c, time.Since(added).Round(time.Millisecond))
	assertDetectorWatching(t, c)
	var list []struct {
		Cluster   string   `json:"cluster"`
		Epoch     uint64   `json:"epoch"`
		Primary   string   `json:"primary"`
		Replicas  []string `json:"replicas"`
		InCatalog bool     `json:"in_catalog"`
	}
	cliJSON(&list, "cluster", "list")
	listed := false
	for _, e := range list {
		if e.Cluster == c {
			listed = e.Primary == "node6" && e.Epoch == 1 && len(e.Replicas) == 1 && e.Replicas[0] == "node7" && e.InCatalog
		}
	}
	if !listed {
		t.Fatalf("cluster list does not show %s (node6, node7, epoch 1, in the catalog): %+v", c, list)
	}

	// Its settings change at run time, validated, recorded with who; a bad value changes nothing.
	var view struct {
		Settings map[string]any
		By       string
	}
	if out, code := cli("cluster", "set", "--name", c, "--as", "carol", "max_lag=3s"); code != 0 || !strings.Contains(out, "max_lag=3s") {
		t.Fatalf("cluster set (exit %d):\n%s", code, out)
	}
	cliJSON(&view, "cluster", "show", "--name", c)
	if view.Settings["max_lag"] != "3s" || view.By != "carol" {
		t.Fatalf("cluster show after set: %+v", view)
	}
	out, code = cli("cluster", "set", "--name", c, "--as", "carol", "durability=paxos")
	if (code != exitUsage && code != exitRefused) || !strings.Contains(out, "durability") || !strings.Contains(out, "nothing was changed") {
		t.Fatalf("a bad value: exit %d, want a refusal naming durability:\n%s", code, out)
	}
	cliJSON(&view, "cluster", "show", "--name", c)
	if view.Settings["durability"] != "cross_zone" {
		t.Fatalf("a refused change changed the settings: %+v", view)
	}

	mustExecOn(t, "127.0.1.6:3306", "CREATE DATABASE IF NOT EXISTS app", loadgen.Schema)
	l := startLoad(t, writerB, 200)
	time.Sleep(2 * time.Second)
	before := readTopoOf(t, c)
	if before.Primary.Name != "node6" {
		t.Fatalf("primary of %s is %s, want node6", c, before.Primary.Name)
	}
	killed := time.Now()
	signalNode(t, "node6", syscall.SIGKILL)
	var after = before
	waitFor(t, 30*time.Second, func() bool { after = readTopoOf(t, c); return after.Primary.Name == "node7" })
	waitFor(t, 15*time.Second, func() bool { id, err := serverIDVia(writerB); return err == nil && id == 107 })
	t.Logf("%s failed over to node7 and routed %s after the kill", c, time.Since(killed).Round(time.Millisecond))
	res := clusterResult(t, c)
	if res.Kind != "unplanned" || res.To != "node7" || res.Outcome != "succeeded" {
		t.Fatalf("failover result %+v", res)
	}
	time.Sleep(time.Second)
	l.Stop()
	ids, per, lost := lostOnMembers(after, l, 15*time.Second)
	row.loaded, row.acked, row.lost = true, len(ids), len(lost)
	if len(ids) == 0 || len(lost) > 0 {
		row.note = describeLost(per)
		t.Fatalf("%d of %d acked writes lost on a live member: %s", len(lost), len(ids), row.note)
	}

	// Removed: nothing watches it, no HAProxy routes it.
	log := detectorLogFrom(t)
	if out, code := cli("cluster", "remove", "--name", c, "--yes"); code != 0 || !strings.Contains(out, "removed "+c+" from Consul") {
		t.Fatalf("cluster remove (exit %d):\n%s", code, out)
	}
	waitDetectorLine(t, log, c, 10*time.Second, "no longer watching cluster")
	waitFor(t, 15*time.Second, func() bool {
		conn, err := net.DialTimeout("tcp", writerA, time.Second)
		if err == nil {
			conn.Close()
		}
		return err != nil
	})
	time.Sleep(3 * time.Second)
	if n := probeConnections(t, after.Primary.Addr()); n != 0 {
		t.Fatalf("%d detector probe(s) still on %s's primary after cluster remove", n, c)
	}
	cliJSON(&list, "cluster", "list")
	for _, e := range list {
		if e.Cluster == c {
			t.Fatalf("%s is still listed after cluster remove: %+v", c, e)
		}
	}
	t.Logf("removed: not watched, not routed")
}
