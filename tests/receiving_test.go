package tests

import (
	"context"
	"testing"
	"time"

	"github.com/baton-db/baton/internal/flavor"
	"github.com/baton-db/baton/internal/mysqladmin"
	"github.com/baton-db/baton/internal/topology"
)

// The failover cuts the replicas' IO threads with a KILL (WaitRelayLog): an acknowledging
// replica's IO thread is off its source at once although, its source silent to new
// connections, the thread lingers about a second on its way out; and the abort path's
// restart (the primary answered after all) leaves replication running, not stopped by
// that lingering thread.
func TestCutReceivingStopsAtOnceAndTheRestartSticks(t *testing.T) {
	before := readTopo(t)
	acker := ackingReplica(t, before)
	c, err := mysqladmin.Open(acker.Addr(), flavor.MariaDB{}, mysqladmin.Options{User: secrets.AdminUser, Password: secrets.AdminPassword,
		TLS: adminTLS, SourceAddr: "127.0.4.9", ConnectTimeout: time.Second, ReadTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// New connections from the replica's mysqld to the primary go unanswered, as from a
	// silent host: the IO thread's way out waits on one.
	unblock := cut(t, [][]string{{"INPUT", "-s", "127.0.0.1", "-d", before.Primary.IPv4, "-p", "tcp", "--dport", "3306", "--syn", "-j", "DROP"}})
	if err := c.CutReceiving(ctx); err != nil {
		t.Fatalf("cut receiving on %s: %v", acker.Name, err)
	}
	var receiving int
	if err := c.DB().QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE COMMAND = 'Slave_IO'").Scan(&receiving); err != nil {
		t.Fatal(err)
	}
	if receiving != 0 {
		t.Fatalf("%s's IO thread still receives after CutReceiving returned", acker.Name)
	}
	unblock()
	if err := c.RestartReplica(ctx); err != nil {
		t.Fatalf("restart replication on %s: %v", acker.Name, err)
	}
	// It must be running, and stay so, once the killed thread has ended.
	time.Sleep(1500 * time.Millisecond)
	waitFor(t, 10*time.Second, func() bool { return replicatingAll(t, before) })
}

// ackingReplica is a replica whose IO thread acknowledges the primary's commits.
func ackingReplica(t *testing.T, tp topology.Topology) topology.Node {
	t.Helper()
	for _, r := range tp.Replicas {
		db := adminDB(r.Addr())
		var name, on string
		err := db.QueryRow("SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync_slave_status'").Scan(&name, &on)
		db.Close()
		if err == nil && on == "ON" {
			return r
		}
	}
	t.Fatalf("no replica of %s acknowledges: %+v", tp.Primary.Name, tp.Replicas)
	return topology.Node{}
}
