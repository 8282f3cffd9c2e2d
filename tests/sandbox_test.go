package tests

import (
	"encoding/json"
	"fmt"
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
		_ = rows.Scan(&g)
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
	assertHealthy(t, nil)
	fmt.Printf("METRIC rebuild_node %s: %d acked writes during the rebuild, all present; replicating from %s\n",
		name, len(load.Acked()), tp.Primary.Name)
}
