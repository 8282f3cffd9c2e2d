package tests

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
)

func TestWriteThroughLocalWriterReplicatesEverywhere(t *testing.T) {
	tp := readTopo(t)
	db := appDB(sandbox["LOCAL_WRITER_ADDR"])
	defer db.Close()
	id := time.Now().UnixNano()
	if _, err := db.Exec("INSERT INTO app.writes (id, note) VALUES (?, 'smoke')", id); err != nil {
		t.Fatalf("write through the local writer port: %v", err)
	}
	var sid uint32
	if err := db.QueryRow("SELECT @@server_id").Scan(&sid); err != nil {
		t.Fatal(err)
	}
	if sid != tp.Primary.ServerID {
		t.Fatalf("local writer reached server_id %d, primary is %s (%d)", sid, tp.Primary.Name, tp.Primary.ServerID)
	}
	for _, addr := range nodes() {
		n := adminDB(addr)
		deadline := time.Now().Add(5 * time.Second)
		for {
			var c int
			if err := n.QueryRow("SELECT COUNT(*) FROM app.writes WHERE id = ?", id).Scan(&c); err != nil {
				t.Fatal(err)
			}
			if c == 1 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("row %d did not replicate to %s", id, addr)
			}
			time.Sleep(20 * time.Millisecond)
		}
		n.Close()
	}
}

func TestReaderPortLandsOnReplica(t *testing.T) {
	tp := readTopo(t)
	replicas := map[uint32]bool{}
	for _, r := range tp.Replicas {
		replicas[r.ServerID] = true
	}
	for i := 0; i < 4; i++ {
		db := appDB(sandbox["LOCAL_READER_ADDR"])
		var sid uint32
		var ro bool
		err := db.QueryRow("SELECT @@server_id, @@read_only").Scan(&sid, &ro)
		db.Close()
		if err != nil {
			t.Fatal(err)
		}
		if !replicas[sid] || !ro {
			t.Fatalf("reader port reached server_id %d (read_only %v); replicas are %v", sid, ro, replicas)
		}
	}
}

func TestAppUserCannotWriteThroughReadOnly(t *testing.T) {
	tp := readTopo(t)
	db := appDB(tp.Replicas[0].Addr())
	defer db.Close()
	_, err := db.Exec("INSERT INTO app.writes (id, note) VALUES (?, 'must fail')", time.Now().UnixNano())
	if err == nil {
		t.Fatal("app user wrote to a read-only replica: it must not bypass read_only")
	}
	var grants []string
	rows, err := db.Query("SHOW GRANTS")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var g string
		if err := rows.Scan(&g); err != nil {
			t.Fatal(err)
		}
		grants = append(grants, g)
	}
	for _, g := range grants {
		for _, bad := range []string{"SUPER", "READ_ONLY ADMIN", "ALL PRIVILEGES"} {
			if contains(g, bad) {
				t.Fatalf("app user holds %s: %s", bad, g)
			}
		}
	}
}

// Changing the primary in Consul KV alone must re-route both remote HAProxies and, through
// them, the local one.
func TestConsulChangeReroutesEveryHAProxy(t *testing.T) {
	tp := readTopo(t)
	kv := topo.Client().KV()
	key := "baton/clusters/demo/primary"
	orig, _, err := kv.Get(key, nil)
	if err != nil || orig == nil {
		t.Fatalf("read %s: %v", key, err)
	}
	t.Cleanup(func() {
		if _, err := kv.Put(&api.KVPair{Key: key, Value: orig.Value}, nil); err != nil {
			t.Errorf("restore %s: %v", key, err)
		}
		waitRouting(t, tp.Primary.ServerID, 10*time.Second)
	})
	target := tp.Replicas[0]
	b, _ := json.Marshal(target)
	if _, err := kv.Put(&api.KVPair{Key: key, Value: b}, nil); err != nil {
		t.Fatal(err)
	}
	took := waitRouting(t, target.ServerID, 10*time.Second)
	fmt.Printf("METRIC consul_kv_to_all_haproxies_rerouted=%s (remote a, remote b and local reach %s)\n", took.Round(time.Millisecond), target.Name)
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

// A replica rebuilt from the primary (a new datadir loaded from a consistent dump) holds
// every acked write, replicates again, and can rejoin: the way back for a node that cannot
// recover from its crash or holds errant GTIDs.
func TestRebuildNodeFromThePrimary(t *testing.T) {
	tp := readTopo(t)
	name := tp.Replicas[0].Name
	load := startLoad(t, sandbox["LOCAL_WRITER_ADDR"], 200)
	time.Sleep(time.Second)
	sandboxCmd(t, "rebuild-node", name)
	time.Sleep(time.Second)
	load.Stop()
	node := tp.Replicas[0].Addr()
	if miss := missing(t, node, load.Acked(), 10*time.Second); len(miss) > 0 {
		t.Fatalf("%d of %d acked writes missing on the rebuilt %s", len(miss), len(load.Acked()), name)
	}
	out, code := baton(t, "rejoin", "--cluster", "demo", "--host", name)
	// It never left the replica pool, so rejoin says so; a rebuilt evicted node is readmitted.
	if code != 0 && !strings.Contains(out, "already a member") {
		t.Fatalf("rejoin after rebuild: exit %d\n%s", code, out)
	}
	assertHealthy(t, nil, nil)
	fmt.Printf("METRIC rebuild_node %s: %d acked writes during the rebuild, all present; replicating from %s\n",
		name, len(load.Acked()), tp.Primary.Name)
}

// consul-template relies on the reload command's contract: when it returns, the running
// HAProxy serves the new file, even with another reload in flight (HAProxy 2.6 reloads
// asynchronously and can drop a reload that reaches its master while it re-executes). The
// file keeps every address and only renames the servers.
func TestHAProxyReloadDuringAReloadTakesEffect(t *testing.T) {
	d := filepath.Join(root, "deploy/local/state/haproxy-a")
	cfgPath := filepath.Join(d, "haproxy.cfg")
	orig, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := os.WriteFile(cfgPath, orig, 0o644); err != nil {
			t.Errorf("restore %s: %v", cfgPath, err)
		}
		sandboxCmd(t, "haproxy-reload", "a")
		waitRouting(t, readTopo(t).Primary.ServerID, 10*time.Second)
	})
	for i := 0; i < 8; i++ {
		want := fmt.Sprintf("r%d_", i)
		renamed := regexp.MustCompile(`(?m)^(\s+server )(r\d+_)?`).ReplaceAll(orig, []byte("${1}"+want))
		for try := 0; ; try++ { // the master refuses connections while it re-executes
			_, err := unixCommand(filepath.Join(d, "master.sock"), "reload\n")
			if err == nil {
				break
			}
			if try == 40 {
				t.Fatalf("reload: %v", err)
			}
			time.Sleep(50 * time.Millisecond)
		}
		if err := os.WriteFile(cfgPath, renamed, 0o644); err != nil {
			t.Fatal(err)
		}
		sandboxCmd(t, "haproxy-reload", "a")
		out, err := unixCommand(filepath.Join(d, "admin.sock"), "show servers state\n")
		if err != nil {
			t.Fatalf("show servers state: %v", err)
		}
		for _, line := range strings.Split(out, "\n") {
			if f := strings.Fields(line); len(f) > 4 && !strings.HasPrefix(f[0], "#") && !strings.HasPrefix(f[3], want) {
				t.Fatalf("round %d: the reload command returned but HAProxy still serves %s from an older file", i, f[3])
			}
		}
	}
}

func unixCommand(sock, cmd string) (string, error) {
	c, err := net.DialTimeout("unix", sock, 2*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte(cmd)); err != nil {
		return "", err
	}
	_ = c.(*net.UnixConn).CloseWrite() // the CLI answers and closes once the input ends
	b, err := io.ReadAll(c)
	return string(b), err
}
