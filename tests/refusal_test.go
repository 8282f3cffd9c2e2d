package tests

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// refuse runs a switchover that must be refused with a message containing want, and checks
// that Consul did not move.
func refuse(t *testing.T, want string, args ...string) {
	t.Helper()
	refuseCmd(t, want, append([]string{"switchover"}, args...)...)
}

// refuseCmd runs a baton command that must fail, say want, and leave Consul as it was.
func refuseCmd(t *testing.T, want string, args ...string) {
	t.Helper()
	before := readTopo(t)
	out, code := baton(t, args...)
	if code != exitUsage && code != exitRefused {
		t.Fatalf("baton %v: exit %d; want a refusal that changed nothing (exit %d or %d)\n%s", args, code, exitUsage, exitRefused, out)
	}
	if !strings.Contains(out, want) {
		t.Fatalf("refusal of %v does not say %q:\n%s", args, want, out)
	}
	after := readTopo(t)
	if after.Primary.Name != before.Primary.Name || after.Epoch != before.Epoch {
		t.Fatalf("Consul changed: %s@%d -> %s@%d", before.Primary.Name, before.Epoch, after.Primary.Name, after.Epoch)
	}
	t.Logf("refused as expected: %s", lastLine(out))
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

func mustExec(t *testing.T, db *sql.DB, stmts ...string) {
	t.Helper()
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

func TestSwitchoverRefusals(t *testing.T) {
	t.Run("unknown cluster", func(t *testing.T) {
		before := snapshot(t)
		refuse(t, `unknown cluster "nope"`, "--cluster", "nope")
		assertUnchanged(t, before)
	})
	t.Run("candidate not a replica", func(t *testing.T) {
		before := snapshot(t)
		refuse(t, "is not a member of cluster demo", "--cluster", "demo", "--to", "127.0.9.9:3306")
		assertUnchanged(t, before)
	})
	t.Run("candidate is the primary", func(t *testing.T) {
		before := snapshot(t)
		refuse(t, "is already the primary", "--cluster", "demo", "--to", readTopo(t).Primary.Name)
		assertUnchanged(t, before)
	})
	t.Run("errant GTID", func(t *testing.T) {
		before := snapshot(t)
		r := readTopo(t).Replicas[0]
		db := adminDB(r.Addr())
		defer db.Close()
		conn, err := db.Conn(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		// A transaction written on the replica itself, in its own GTID domain.
		for _, s := range []string{"SET SESSION sql_log_bin=0", "CREATE TABLE IF NOT EXISTS baton.errant_probe (id INT PRIMARY KEY)",
			"SET SESSION sql_log_bin=1", "SET SESSION gtid_domain_id=77", "INSERT INTO baton.errant_probe VALUES (1)"} {
			if _, err := conn.ExecContext(context.Background(), s); err != nil {
				t.Fatalf("%s: %v", s, err)
			}
		}
		t.Cleanup(func() {
			c := adminDB(r.Addr())
			defer c.Close()
			removeDomain(t, c, 77)
		})
		refuse(t, fmt.Sprintf("has transactions the primary lacks: 77-%d-1", r.ServerID), "--cluster", "demo", "--to", r.Name)
		removeDomain(t, db, 77)
		assertUnchanged(t, before)
	})
	t.Run("long-running DML", func(t *testing.T) {
		before := snapshot(t)
		release := holdWrite(t)
		refuse(t, "no long-running DML", "--cluster", "demo")
		release()
		assertUnchanged(t, before)
	})
	t.Run("several checks fail at once", func(t *testing.T) {
		before := snapshot(t)
		cand := readTopo(t).Replicas[0]
		mustExecOn(t, cand.Addr(), "STOP SLAVE SQL_THREAD")
		t.Cleanup(func() { mustExecOn(t, cand.Addr(), "START SLAVE SQL_THREAD") })
		release := holdWrite(t)
		out, code := baton(t, "switchover", "--cluster", "demo", "--to", cand.Name)
		release()
		if code == 0 || !strings.Contains(out, "candidate replicates from primary") || !strings.Contains(out, "no long-running DML") ||
			!strings.Contains(out, "check(s) failed") {
			t.Fatalf("want both failed checks reported at once:\n%s", out)
		}
		t.Logf("refused: %s", lastLine(out))
		mustExecOn(t, cand.Addr(), "START SLAVE SQL_THREAD")
		assertUnchanged(t, before)
	})
	t.Run("running DDL", func(t *testing.T) {
		before := snapshot(t)
		primary := readTopo(t).Primary.Addr()
		db := adminDB(primary)
		defer db.Close()
		holder, err := db.Begin() // holds a metadata lock, so the ALTER below keeps running
		if err != nil {
			t.Fatal(err)
		}
		if _, err := holder.Exec("SELECT * FROM app.ddl_target"); err != nil {
			t.Fatal(err)
		}
		ddl, err := db.Conn(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		var ddlID int64
		if err := ddl.QueryRowContext(context.Background(), "SELECT CONNECTION_ID()").Scan(&ddlID); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() {
			_, err := ddl.ExecContext(context.Background(), "ALTER TABLE app.ddl_target ADD COLUMN probe INT")
			done <- err
		}()
		waitFor(t, 5*time.Second, func() bool {
			var n int
			err := db.QueryRow("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = ? AND INFO LIKE 'ALTER TABLE%'", ddlID).Scan(&n)
			return err == nil && n == 1
		})
		refuse(t, "no running DDL", "--cluster", "demo")
		mustExec(t, db, fmt.Sprintf("KILL QUERY %d", ddlID))
		<-done
		_ = holder.Rollback()
		ddl.Close()
		assertUnchanged(t, before)
	})
	t.Run("consul-template stopped on one HAProxy host", func(t *testing.T) {
		before := snapshot(t)
		pidFile := filepath.Join(sandbox["SANDBOX_STATE"], "pids", "consul-template-b.pid")
		b, err := os.ReadFile(pidFile)
		if err != nil {
			t.Fatal(err)
		}
		pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		if err := syscall.Kill(pid, syscall.SIGINT); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { sandboxCmd(t, "up"); waitHAProxyChecks(t, true) })
		waitHAProxyChecks(t, false)
		refuse(t, "haproxy-b: consul-template is critical", "--cluster", "demo")
		sandboxCmd(t, "up")
		waitHAProxyChecks(t, true)
		assertUnchanged(t, before)
	})
	t.Run("Consul agent dead on one HAProxy host", func(t *testing.T) {
		before := snapshot(t)
		if err := syscall.Kill(pidOf(t, "consul-agent-b"), syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { sandboxCmd(t, "up"); waitHAProxyChecks(t, true) })
		waitHAProxyChecks(t, false) // the agent's serfHealth fails within seconds
		refuse(t, "the Consul agent of node haproxy-b: Serf Health Status is critical", "--cluster", "demo")
		sandboxCmd(t, "up")
		waitHAProxyChecks(t, true)
		assertUnchanged(t, before)
	})
	t.Run("lagging candidate", func(t *testing.T) {
		before := snapshot(t)
		r := readTopo(t).Replicas[0]
		db := adminDB(r.Addr())
		defer db.Close()
		mustExec(t, db, "STOP SLAVE", "CHANGE MASTER TO MASTER_DELAY=5", "START SLAVE")
		t.Cleanup(func() {
			c := adminDB(r.Addr())
			defer c.Close()
			mustExec(t, c, "STOP SLAVE", "CHANGE MASTER TO MASTER_DELAY=0", "START SLAVE")
		})
		waitFor(t, 15*time.Second, func() bool { return lagMS(db) > 2500 })
		refuse(t, "lags", "--cluster", "demo", "--to", r.Name)
		mustExec(t, db, "STOP SLAVE", "CHANGE MASTER TO MASTER_DELAY=0", "START SLAVE")
		waitFor(t, 15*time.Second, func() bool { l := lagMS(db); return l >= 0 && l < 1000 })
		assertUnchanged(t, before)
	})
}

func lagMS(db *sql.DB) int64 {
	var us sql.NullInt64
	err := db.QueryRow("SELECT TIMESTAMPDIFF(MICROSECOND, STR_TO_DATE(ts, '%Y-%m-%dT%H:%i:%s.%f'), UTC_TIMESTAMP(6)) FROM baton.heartbeat WHERE server_id = @@server_id").Scan(&us)
	if err != nil || !us.Valid {
		return -1
	}
	return us.Int64 / 1000
}

// removeDomain deletes an injected GTID domain from a replica's binlog state. MariaDB refuses
// while an older binlog still holds the domain's events, and PURGE skips a file that is not
// yet checkpointed (crash recovery may need it), so it retries until the purge has taken.
func removeDomain(t *testing.T, db *sql.DB, domain int) {
	t.Helper()
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var lastErr error
	var warnings []string
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(300 * time.Millisecond) {
		var state string
		if err := conn.QueryRowContext(ctx, "SELECT @@GLOBAL.gtid_binlog_state").Scan(&state); err != nil {
			t.Fatal(err)
		}
		if !hasDomain(state, domain) {
			return
		}
		for _, s := range []string{"SET SESSION sql_log_bin=0", "DROP TABLE IF EXISTS baton.errant_probe", "FLUSH BINARY LOGS"} {
			if _, err := conn.ExecContext(ctx, s); err != nil {
				t.Fatalf("%s: %v", s, err)
			}
		}
		var file, pos, doDB, ignoreDB string
		if err := conn.QueryRowContext(ctx, "SHOW MASTER STATUS").Scan(&file, &pos, &doDB, &ignoreDB); err != nil {
			t.Fatalf("SHOW MASTER STATUS: %v", err)
		}
		if _, err := conn.ExecContext(ctx, fmt.Sprintf("PURGE BINARY LOGS TO '%s'", file)); err != nil {
			t.Fatalf("PURGE BINARY LOGS TO '%s': %v", file, err)
		}
		warnings = showWarnings(ctx, conn)
		if _, lastErr = conn.ExecContext(ctx, fmt.Sprintf("FLUSH BINARY LOGS DELETE_DOMAIN_ID=(%d)", domain)); lastErr == nil {
			continue // the loop checks the state once more
		}
	}
	t.Fatalf("GTID domain %d is still in the binlog state after 20 s: %v; purge warnings: %v", domain, lastErr, warnings)
}

func hasDomain(state string, domain int) bool {
	for _, g := range strings.Split(state, ",") {
		if strings.HasPrefix(strings.TrimSpace(g), fmt.Sprintf("%d-", domain)) {
			return true
		}
	}
	return false
}

func showWarnings(ctx context.Context, conn *sql.Conn) []string {
	rows, err := conn.QueryContext(ctx, "SHOW WARNINGS")
	if err != nil {
		return []string{err.Error()}
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var level, code, msg string
		if rows.Scan(&level, &code, &msg) == nil {
			out = append(out, msg)
		}
	}
	return out
}

func waitFor(t *testing.T, limit time.Duration, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %s", limit)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitHAProxyChecks waits until every HAProxy host's checks in Consul are passing (or not).
func waitHAProxyChecks(t *testing.T, passing bool) {
	t.Helper()
	waitFor(t, 15*time.Second, func() bool {
		hosts, err := topo.HAProxies(context.Background())
		if err != nil {
			return false
		}
		failing := 0
		for _, h := range hosts {
			failing += len(h.Failing)
		}
		return (failing == 0) == passing
	})
}

// holdWrite opens a write transaction through the local writer and keeps it open past the
// sandbox's long_dml (2 s); release rolls it back.
func holdWrite(t *testing.T) (release func()) {
	t.Helper()
	db := appDB(sandbox["LOCAL_WRITER_ADDR"])
	tx, err := db.Begin()
	if err != nil {
		db.Close()
		t.Fatal(err)
	}
	if _, err := tx.Exec("INSERT INTO app.writes (id, note) VALUES (?, 'held open')", time.Now().UnixNano()); err != nil {
		_ = tx.Rollback()
		db.Close()
		t.Fatal(err)
	}
	time.Sleep(2500 * time.Millisecond)
	var once sync.Once
	release = func() {
		once.Do(func() {
			_ = tx.Rollback() // the test's own transaction; its outcome does not matter
			db.Close()
		})
	}
	t.Cleanup(release)
	return release
}
