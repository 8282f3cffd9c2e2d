package tests

import (
	"database/sql"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/baton-db/baton/internal/loadgen"
	"github.com/baton-db/baton/internal/topology"
	"github.com/baton-db/baton/tests/sandboxkit"
)

// lostOnMembers stops the load and waits (up to limit, for replication) until every acked
// write is on every live member. It returns the acked ids and, per member, how many of
// them it lacks, plus the ids missing on at least one member (sandboxkit.LostOnMembers).
func lostOnMembers(tp topology.Topology, l *loadgen.Load, limit time.Duration) (ids []int64, perMember map[string]string, lost map[int64]bool) {
	l.Stop()
	ids = l.Acked()
	perMember, lost = kit.LostOnMembers(tp, ids, limit)
	return ids, perMember, lost
}

// memberProblems is the one check of every live member (sandboxkit.MemberProblems): the
// GTID sets agree both ways and the semi-sync flags follow the durability policy.
func memberProblems(tp topology.Topology, cfgAcks func(primaryZone, replicaZone string) bool, limit time.Duration) []string {
	return kit.MemberProblems(tp, cfgAcks, limit)
}

func semiSyncStatus(db *sql.DB) (status, clients string) { return sandboxkit.SemiSyncStatus(db) }

// describeLost is the per-member text of lostOnMembers, sorted.
func describeLost(per map[string]string) string {
	var parts []string
	for n, s := range per {
		parts = append(parts, n+": "+s)
	}
	sort.Strings(parts)
	return strings.Join(parts, "; ")
}

// nodesOf returns a sandbox cluster's MySQL addresses.
func nodesOf(cluster string) []string {
	if cluster == "demo2" {
		return strings.Fields(sandbox["DEMO2_MYSQL_NODES"])
	}
	return nodes()
}

// waitRoutingOf waits until the cluster's writer endpoints reach serverID (demo: both
// remote HAProxies and the local one; demo2: its local writer).
func waitRoutingOf(t *testing.T, cluster string, serverID uint32, limit time.Duration) {
	t.Helper()
	if cluster == "demo" {
		waitRouting(t, serverID, limit)
		return
	}
	waitFor(t, limit, func() bool {
		id, err := serverIDVia(sandbox["DEMO2_LOCAL_WRITER_ADDR"])
		return err == nil && id == serverID
	})
}

// replicationOf reads a node's source address and thread states.
func replicationOf(t *testing.T, n topology.Node) (src, io, sql string) {
	t.Helper()
	db := adminDB(n.Addr())
	defer db.Close()
	m := replicaStatus(t, db)
	return m["Master_Host"], m["Slave_IO_Running"], m["Slave_SQL_Running"]
}
