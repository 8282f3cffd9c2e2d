package sandboxkit

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/baton-db/baton/internal/flavor"
	"github.com/baton-db/baton/internal/loadgen"
	"github.com/baton-db/baton/internal/topology"
)

// Members are a cluster's live members as Consul names them: the primary first, then the
// replica pool. Evicted nodes are not members; their rejoin is checked on its own.
func Members(tp topology.Topology) []topology.Node {
	return append([]topology.Node{tp.Primary}, tp.Replicas...)
}

// LostOnMembers waits (up to limit, for replication) until every id in ids is on every
// live member. It returns, per member, how many of them it lacks, and the ids missing on
// at least one member. A member that cannot be read counts every id as missing there: an
// unreadable copy is no copy.
func (k *Kit) LostOnMembers(tp topology.Topology, ids []int64, limit time.Duration) (perMember map[string]string, lost map[int64]bool) {
	perMember, lost = map[string]string{}, map[int64]bool{}
	for _, n := range Members(tp) {
		db := k.AdminDB(n.Addr())
		miss, err := loadgen.Missing(context.Background(), db, ids, limit)
		db.Close()
		switch {
		case err != nil:
			perMember[n.Name] = fmt.Sprintf("unreadable (%v)", err)
			for _, id := range ids {
				lost[id] = true
			}
		case len(miss) > 0:
			perMember[n.Name] = fmt.Sprintf("lacks %d, e.g. %v", len(miss), miss[:min(3, len(miss))])
			for _, id := range miss {
				lost[id] = true
			}
		}
	}
	return perMember, lost
}

// MemberProblems checks what every member of a healthy cluster must show, and returns one
// line per problem (none when healthy):
//   - the GTID sets agree both ways: each replica holds what the primary held when the
//     check began (it caught up), and the primary holds everything each replica has (no
//     errant transaction, the mark a split brain leaves);
//   - the semi-sync flags follow the durability policy: the primary waits for an ack when
//     a replica may give one, each replica acknowledges exactly when the policy says it
//     does, and the primary's semi-sync is active (not fallen back to asynchronous) with as
//     many acknowledging clients as the policy gives it.
func (k *Kit) MemberProblems(tp topology.Topology, cfgAcks func(primaryZone, replicaZone string) bool, limit time.Duration) []string {
	var out []string
	p := k.AdminDB(tp.Primary.Addr())
	defer p.Close()
	before, err := GTIDs(p)
	if err != nil {
		return []string{fmt.Sprintf("primary %s: executed GTIDs: %v", tp.Primary.Name, err)}
	}
	ackers := 0
	for _, r := range tp.Replicas {
		db := k.AdminDB(r.Addr())
		var have flavor.GTIDSet
		deadline := time.Now().Add(limit)
		for {
			have, err = GTIDs(db)
			if err == nil && flavor.Lacks(have, before) == "" || time.Now().After(deadline) {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		switch {
		case err != nil:
			out = append(out, fmt.Sprintf("replica %s: executed GTIDs: %v", r.Name, err))
		case flavor.Lacks(have, before) != "":
			out = append(out, fmt.Sprintf("replica %s still lacks %s of the primary's after %s", r.Name, flavor.Lacks(have, before), limit))
		default:
			now, perr := GTIDs(p) // read after the replica's, so it can only be larger
			if perr == nil {
				if errant := flavor.Lacks(now, have); errant != "" {
					out = append(out, fmt.Sprintf("replica %s holds %s that the primary %s lacks (errant)", r.Name, errant, tp.Primary.Name))
				}
			}
		}
		want := cfgAcks(tp.Primary.Zone, r.Zone)
		if want {
			ackers++
		}
		// A replica restarted by the test comes back with its option file's setting; the
		// detector sets it to the policy within a pass over the replicas (4 s) once no
		// operation is open.
		var slave bool
		deadline = time.Now().Add(limit)
		for {
			err = db.QueryRow("SELECT @@GLOBAL.rpl_semi_sync_slave_enabled").Scan(&slave)
			if err == nil && slave == want || time.Now().After(deadline) {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		if err != nil {
			out = append(out, fmt.Sprintf("replica %s: semi-sync flag: %v", r.Name, err))
		} else if slave != want {
			out = append(out, fmt.Sprintf("replica %s (zone %s) acknowledges=%v after %s; the durability policy says %v for a primary in zone %s", r.Name, r.Zone, slave, limit, want, tp.Primary.Zone))
		}
		db.Close()
	}
	var master bool
	if err := p.QueryRow("SELECT @@GLOBAL.rpl_semi_sync_master_enabled").Scan(&master); err != nil {
		return append(out, fmt.Sprintf("primary %s: semi-sync flag: %v", tp.Primary.Name, err))
	}
	if master != (ackers > 0) {
		out = append(out, fmt.Sprintf("primary %s waits for acks=%v with %d acknowledging replicas", tp.Primary.Name, master, ackers))
	}
	if ackers > 0 {
		// An acknowledging replica that has just been repointed takes a moment to connect.
		var status, clients string
		deadline := time.Now().Add(limit)
		for {
			status, clients = SemiSyncStatus(p)
			if status == "ON" && clients == fmt.Sprint(ackers) || time.Now().After(deadline) {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if status != "ON" || clients != fmt.Sprint(ackers) {
			out = append(out, fmt.Sprintf("primary %s: semi-sync status %s with %s acknowledging clients; want ON with %d (writes would be acked by this server alone)", tp.Primary.Name, status, clients, ackers))
		}
	}
	return out
}

// GTIDs reads a MariaDB server's executed GTID set.
func GTIDs(db *sql.DB) (flavor.GTIDSet, error) {
	var raw string
	if err := db.QueryRow(flavor.MariaDB{}.Executed()).Scan(&raw); err != nil {
		return nil, err
	}
	return flavor.MariaDB{}.ParseGTIDs(raw)
}

// SemiSyncStatus reads the primary side's semi-sync status and client count.
func SemiSyncStatus(db *sql.DB) (status, clients string) {
	rows, err := db.Query("SHOW GLOBAL STATUS WHERE Variable_name IN ('Rpl_semi_sync_master_status', 'Rpl_semi_sync_master_clients')")
	if err != nil {
		return err.Error(), "?"
	}
	defer rows.Close()
	for rows.Next() {
		var k, v string
		if rows.Scan(&k, &v) == nil {
			switch strings.ToLower(k) {
			case "rpl_semi_sync_master_status":
				status = v
			case "rpl_semi_sync_master_clients":
				clients = v
			}
		}
	}
	return status, clients
}

// ReplicaStatus reads SHOW SLAVE STATUS as column -> value (empty when not a replica).
func ReplicaStatus(ctx context.Context, db *sql.DB) (map[string]string, error) {
	rows, err := db.QueryContext(ctx, "SHOW SLAVE STATUS")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	out := map[string]string{}
	if !rows.Next() {
		return out, rows.Err()
	}
	vals := make([]sql.RawBytes, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if err := rows.Scan(ptrs...); err != nil {
		return nil, err
	}
	for i, c := range cols {
		out[c] = string(vals[i])
	}
	return out, nil
}
