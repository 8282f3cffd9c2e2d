package tests

import (
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/baton-db/baton/internal/topology"
)

// spare is one of the sandbox's spare nodes (deploy/local/sandbox.sh SPARE_NODES), brought
// up for demo by node-up.
type spare struct {
	name, addr, zone string
	serverID         uint32
}

var (
	spare6 = spare{"node6", "127.0.1.6:3306", "a", 106}
	spare7 = spare{"node7", "127.0.1.7:3306", "b", 107}
)

// upSpare starts a spare node for demo (a fresh MariaDB 10.11 and its heartbeat agent), and
// takes it away again when the test ends (dropSpare). A leftover of an interrupted run is
// taken away first.
func upSpare(t *testing.T, s spare) {
	t.Helper()
	dropSpare(t, s)
	sandboxCmd(t, "node-up", s.name, "demo")
	t.Cleanup(func() { dropSpare(t, s) })
}

// dropSpare takes a spare node out of demo if it is a member (node remove, forced: it may
// be the last acker), deletes its eviction and fence records (a later node add of the name
// would be refused for the record, and the fenced-nodes gauge counts it), then stops and
// deletes the server and its agent (node-down).
func dropSpare(t *testing.T, s spare) {
	t.Helper()
	if _, member := readTopo(t).Find(s.name); member {
		if out, code := baton(t, "node", "remove", "--cluster", "demo", "--host", s.name, "--force", "--reason", "cleanup", "--as", "test"); code != 0 {
			t.Errorf("remove %s after the test: exit %d\n%s", s.name, code, out)
		}
	}
	for _, k := range []string{"evicted/", "fenced/"} {
		if _, err := consulKV.Delete("baton/clusters/demo/"+k+s.name, nil); err != nil {
			t.Errorf("delete %s%s: %v", k, s.name, err)
		}
	}
	sandboxCmd(t, "node-down", s.name)
}

// restoreSpareFromPrimary restores a backup of demo's primary onto a spare node, as the
// runbook asks before `node add` when the primary's binlogs no longer reach back to the
// first transaction (§3.2.3): the sandbox's rebuild-node loads a consistent dump with its
// GTID position and binlog state and starts replication; replication is then stopped and
// reset, so that node add attaches it itself (CHANGE MASTER from that position).
func restoreSpareFromPrimary(t *testing.T, s spare) {
	t.Helper()
	sandboxCmd(t, "rebuild-node", s.name)
	mustExecOn(t, s.addr, "STOP SLAVE", "RESET SLAVE ALL")
}

// binlogsFromTheStart reports whether a server's oldest binlog starts with an empty GTID
// list: a fresh server can then follow it from its first transaction. The sandbox's
// primaries usually have purged theirs (tests purge them, rebuilt nodes start from a dump).
func binlogsFromTheStart(t *testing.T, addr string) bool {
	t.Helper()
	db := adminDB(addr)
	defer db.Close()
	var first string
	rows, err := db.Query("SHOW BINARY LOGS")
	if err != nil {
		t.Fatal(err)
	}
	if rows.Next() {
		cols, _ := rows.Columns()
		vals := make([]any, len(cols))
		vals[0] = &first
		for i := 1; i < len(cols); i++ {
			vals[i] = new(sql.RawBytes)
		}
		if err := rows.Scan(vals...); err != nil {
			t.Fatal(err)
		}
	}
	rows.Close()
	events, err := db.Query(fmt.Sprintf("SHOW BINLOG EVENTS IN '%s' LIMIT 5", first))
	if err != nil {
		t.Fatal(err)
	}
	defer events.Close()
	for events.Next() {
		cols, _ := events.Columns()
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := events.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		m := map[string]string{}
		for i, c := range cols {
			m[c] = vals[i].String
		}
		if m["Event_type"] == "Gtid_list" {
			return strings.TrimSpace(m["Info"]) == "[]"
		}
	}
	return false
}

// readerPool lists the servers of demo's reader backend on one remote HAProxy ("haproxy-a"),
// each with its operational state ("2" is up), from its admin socket; nil while it reloads.
func readerPool(host string) map[string]string {
	out, err := unixCommand(filepath.Join(sandbox["SANDBOX_STATE"], host, "admin.sock"), "show servers state reader_demo\n")
	if err != nil {
		return nil
	}
	servers := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 5 && f[1] == "reader_demo" {
			servers[f[3]] = f[5]
		}
	}
	return servers
}

// inReaderPools is the remote HAProxies whose demo reader backend has node (up, when up is
// set: a server's name there starts with the node's).
func inReaderPools(node string, up bool) []string {
	var in []string
	for _, h := range []string{"haproxy-a", "haproxy-b"} {
		for name, state := range readerPool(h) {
			if strings.HasPrefix(name, node+"_") && (!up || state == "2") {
				in = append(in, h)
				break
			}
		}
	}
	return in
}

func isReadOnly(t *testing.T, addr string) bool {
	t.Helper()
	db := adminDB(addr)
	defer db.Close()
	var ro bool
	if err := db.QueryRow("SELECT @@GLOBAL.read_only").Scan(&ro); err != nil {
		t.Fatalf("read_only of %s: %v", addr, err)
	}
	return ro
}

// assertMember checks that a node added to demo is a member as Consul has it, replicates
// from the primary with both threads, is read-only, and is in both remote HAProxies'
// reader backends, up.
func assertMember(t *testing.T, s spare) topology.Topology {
	t.Helper()
	tp := readTopo(t)
	n, ok := tp.Find(s.name)
	if !ok || n.Name == tp.Primary.Name || n.Addr() != s.addr || n.Zone != s.zone || n.ServerID != s.serverID {
		t.Fatalf("%s is not a replica of demo in Consul as added: %+v (found %v; replicas %+v)", s.name, n, ok, tp.Replicas)
	}
	waitFor(t, 10*time.Second, func() bool {
		src, io, sql := replicationOf(t, n)
		return src == tp.Primary.IPv4 && io == "Yes" && sql == "Yes"
	})
	if !isReadOnly(t, s.addr) {
		t.Fatalf("%s is writable after its add", s.name)
	}
	waitFor(t, 15*time.Second, func() bool { return len(inReaderPools(s.name, true)) == 2 })
	return tp
}

// assertDetached checks that a node is no member of demo, replicates from nowhere and is
// read-only.
func assertDetached(t *testing.T, s spare) {
	t.Helper()
	tp := readTopo(t)
	if _, member := tp.Find(s.name); member {
		t.Fatalf("%s is still a member of demo", s.name)
	}
	if src, io, _ := replicationOf(t, topology.Node{Name: s.name, IPv4: strings.Split(s.addr, ":")[0], Port: 3306}); src != "" {
		t.Fatalf("%s still replicates from %s (IO %s)", s.name, src, io)
	}
	if !isReadOnly(t, s.addr) {
		t.Fatalf("%s is writable", s.name)
	}
}

// baton node add under load: a new server joins demo as a replica of the primary. A server
// that cannot follow the primary (its binlogs purged) is refused at the catch-up and left
// as it was, detached and read-only; restored from a backup of the primary, it is
// attached (CHANGE MASTER on Baton's replication account and TLS), catches up, is
// registered in Consul and taken into both remote HAProxies' reader pools, read-only, with
// every acked write on it as on every member. A second add of the name changes nothing.
func TestNodeAddUnderLoad(t *testing.T) {
	primaryInZone(t, "demo", "a")
	row, before, load := underLoad(t, "new replica added under load (node add)")
	upSpare(t, spare6)
	mustExecOn(t, spare6.addr, "SET GLOBAL read_only = 0") // a new server may come writable: node add makes it read-only
	add := []string{"node", "add", "--cluster", "demo", "--host", spare6.name, "--addr", spare6.addr, "--zone", spare6.zone, "--as", "alice", "--reason", "capacity"}

	if !binlogsFromTheStart(t, before.Primary.Addr()) {
		// The empty server lacks transactions the primary's binlogs no longer hold: the
		// catch-up fails with the server's error and the fix, and the attach is undone.
		out, code := baton(t, add...)
		if code != 1 || !strings.Contains(out, "restore a backup of the primary") {
			t.Fatalf("node add of an empty server to a primary with purged binlogs: exit %d, want 1 and the fix\n%s", code, out)
		}
		t.Logf("refused as expected: %s", lastLine(out))
		assertDetached(t, spare6)
		if tp := readTopo(t); evictedAddr(tp, spare6.addr) || tp.Epoch != before.Epoch {
			t.Fatalf("a failed add left a trace in Consul: evicted %+v, epoch %d -> %d", tp.Evicted, before.Epoch, tp.Epoch)
		}
		if in := inReaderPools(spare6.name, false); len(in) != 0 {
			t.Fatalf("a failed add is in the reader pool of %v", in)
		}
	} else {
		t.Logf("the primary %s's binlogs reach back to the first transaction: the empty-server case does not apply", before.Primary.Name)
	}
	restoreSpareFromPrimary(t, spare6)
	mustExecOn(t, spare6.addr, "SET GLOBAL read_only = 0")

	start := time.Now()
	out := mustBaton(t, add...)
	t.Logf("node add took %s:\n%s", time.Since(start).Round(time.Millisecond), out)
	wantAcks := clusterCfg.Acks(before.Primary.Zone, spare6.zone)
	if !strings.Contains(out, spare6.name+" ("+spare6.addr) || strings.Contains(out, "it acknowledges commits") != wantAcks {
		t.Fatalf("node add's result does not name %s, or says it acknowledges (want %v):\n%s", spare6.name, wantAcks, out)
	}
	tp := assertMember(t, spare6)

	// Again: exit 3, nothing changed.
	again, code := baton(t, add...)
	if code != exitRefused || !strings.Contains(again, "already a member of demo") {
		t.Fatalf("a second node add of %s: exit %d, want %d\n%s", spare6.name, code, exitRefused, again)
	}
	if after := readTopo(t); after.Epoch != tp.Epoch || replicaNames(after.Replicas) != replicaNames(tp.Replicas) || after.Primary.Name != tp.Primary.Name {
		t.Fatalf("a refused node add changed Consul: %s@%d %s -> %s@%d %s", tp.Primary.Name, tp.Epoch, replicaNames(tp.Replicas), after.Primary.Name, after.Epoch, replicaNames(after.Replicas))
	}
	// Every acked write is on every member, node6 included (assertHealthy reads the
	// topology again and runs lostOnMembers over it), and the members agree.
	assertHealthy(t, load, row)
	fmt.Printf("METRIC node_add %s: added under load in %s, %d acked writes on every member\n", spare6.name, time.Since(start).Round(time.Millisecond), row.acked)
}

// baton node replace under load: node7 (zone b) joins demo, and node6 (zone a), a member,
// leaves in the same run: node7 a replica in both reader pools, node6 out of them,
// detached and read-only, nothing lost. It builds its own state: node6 is added first.
func TestNodeReplaceUnderLoad(t *testing.T) {
	primaryInZone(t, "demo", "a")
	upSpare(t, spare6)
	restoreSpareFromPrimary(t, spare6)
	mustBaton(t, "node", "add", "--cluster", "demo", "--host", spare6.name, "--addr", spare6.addr, "--zone", spare6.zone, "--as", "test")
	assertMember(t, spare6)
	upSpare(t, spare7)
	restoreSpareFromPrimary(t, spare7)

	row, before, load := underLoad(t, "replica replaced under load (node replace)")
	start := time.Now()
	out := mustBaton(t, "node", "replace", "--cluster", "demo", "--host", spare6.name, "--with", spare7.name,
		"--addr", spare7.addr, "--zone", spare7.zone, "--as", "alice", "--reason", "hardware refresh")
	t.Logf("node replace took %s:\n%s", time.Since(start).Round(time.Millisecond), out)
	if wantAcks := clusterCfg.Acks(before.Primary.Zone, spare7.zone); strings.Contains(out, "it acknowledges commits") != wantAcks {
		t.Fatalf("node replace says node7 acknowledges: %v, want %v\n%s", !wantAcks, wantAcks, out)
	}
	if !strings.Contains(out, "replaced "+spare6.name) {
		t.Fatalf("node replace's result does not name %s as replaced:\n%s", spare6.name, out)
	}
	assertMember(t, spare7)
	assertDetached(t, spare6)
	if tp := readTopo(t); !evictedAddr(tp, spare6.addr) {
		t.Fatalf("%s has no removal record (evicted, with who and why): %+v", spare6.name, tp.Evicted)
	}
	waitFor(t, 15*time.Second, func() bool { return len(inReaderPools(spare6.name, false)) == 0 })
	assertHealthy(t, load, row)
	fmt.Printf("METRIC node_replace %s -> %s: under load in %s, %d acked writes on every member\n", spare6.name, spare7.name, time.Since(start).Round(time.Millisecond), row.acked)
}

func replicaNames(ns []topology.Node) string {
	var out []string
	for _, n := range ns {
		out = append(out, n.Name)
	}
	return strings.Join(out, ",")
}
