// Package flavor holds the SQL dialects of MariaDB 10.6+ and MySQL 8.0.23+/8.4 behind one
// interface. It builds statements only; mysqladmin runs them.
package flavor

import (
	"fmt"
	"strings"
)

// Source is where a replica replicates from.
type Source struct {
	Host           string
	Port           int
	User, Password string
	// HeartbeatPeriod (seconds) makes a replica notice a dead source fast.
	HeartbeatPeriod float64
	// SSL encrypts the replication link; SSLCA (a path on the replica's host) and
	// SSLVerifyServerCert make the replica check the source's certificate.
	SSL                 bool
	SSLCA               string
	SSLVerifyServerCert bool
}

// ssl is the TLS part of CHANGE MASTER / CHANGE REPLICATION SOURCE, in the given prefix.
func (s Source) ssl(prefix string) string {
	if !s.SSL {
		return ""
	}
	out := fmt.Sprintf(", %s_SSL=1", prefix)
	if s.SSLCA != "" {
		out += fmt.Sprintf(", %s_SSL_CA=%s", prefix, Quote(s.SSLCA))
	}
	if s.SSLVerifyServerCert {
		out += fmt.Sprintf(", %s_SSL_VERIFY_SERVER_CERT=1", prefix)
	}
	return out
}

// Flavor is one server dialect.
type Flavor interface {
	Name() string
	ReplicaStatus() string
	// ChangeSource points a stopped replica at src with GTID auto-position.
	ChangeSource(src Source) string
	StartReplica() string
	StopReplica() string
	// StopReceiving stops only the IO thread: what was received is final, and is applied.
	StopReceiving() string
	// ReceiverThreads selects the connection id of the replication IO thread, which a KILL
	// cuts off from its source at once (no row: none runs). STOP waits instead for a
	// semi-sync replica's IO thread to kill its dump thread on the source over a new
	// connection, up to the kill-connection timeout when the source is silent.
	ReceiverThreads() string
	// ResetReplica forgets the source entirely (for a promoted primary).
	ResetReplica() string
	// PrepareReplica runs before ChangeSource on a server that was a primary.
	PrepareReplica() []string
	// Executed selects the server's executed GTIDs, as one string.
	Executed() string
	// WaitExecuted waits for a GTID set with a timeout in seconds; it selects 0 on success.
	WaitExecuted(gtids string, timeout float64) string
	SetReadOnly(on bool) []string
	// FenceReadOnly turns read_only on, waiting at most FenceLockWait seconds for the lock
	// it needs: commits in flight hold it, and a fenced primary's commits may wait for an
	// acknowledgement that will not come. While it waits, new writes queue behind it (so
	// a steady load cannot starve it); a refused attempt leaves no statement queued.
	FenceReadOnly() []string
	// ProcesslistStateMillis is the expression, over information_schema.PROCESSLIST p, of
	// how long (ms) each session has been in its current state.
	ProcesslistStateMillis() string
	// ReadOnly selects read_only and super_read_only (0 where the flavour has none).
	ReadOnly() string
	// SetSemiSyncPrimary switches the primary side of semi-sync on or off.
	SetSemiSyncPrimary(on bool) []string
	// SetSemiSyncReplica says whether this replica acknowledges commits; it takes effect
	// when the IO thread starts.
	SetSemiSyncReplica(on bool) []string
	// SetSemiSyncTimeout sets how long (ms) a commit waits for an acknowledgement before the
	// primary falls back to asynchronous replication (NoFallback: it never does).
	SetSemiSyncTimeout(ms uint64) []string
	// SemiSync selects (primary enabled, replica enabled, replicas connected).
	SemiSync() string
	// PrimaryAcks selects (primary enabled, timeout in ms, "ON" while commits wait for an
	// acknowledgement, "OFF" once it fell back to asynchronous, sessions waiting for one).
	PrimaryAcks() string
	ParseGTIDs(s string) (GTIDSet, error)
	// ListReplicas lists the replicas connected to a primary (Server_id, Host, Port: the
	// replicas' report_host and report_port).
	ListReplicas() string
	// Onboarding selects (server_id, GTIDs enforced, replicas log what they apply), what
	// `baton cluster add` requires of every node.
	Onboarding() string
	// Status column names that differ between dialects.
	Columns() StatusColumns
}

// FenceLockWait (seconds; lock_wait_timeout takes whole seconds) is how long
// FenceReadOnly waits for commits in flight: an acknowledgement takes a millisecond or two
// while a replica acknowledges, and never comes while none does.
const FenceLockWait = 1

// StatusColumns names the replica-status columns a flavour reports.
type StatusColumns struct {
	SourceHost, SourcePort, IORunning, SQLRunning, IOError, SQLError, Lag string
	// Received is the GTIDs the IO thread has written to the relay log.
	Received string
}

// ByName returns the flavour called name.
// NoFallback is the longest semi-sync timeout both flavours take (about 49.7 days): a
// primary that no replica acknowledges keeps its commits waiting instead of acknowledging
// them asynchronously (Vitess's durability without the fallback).
const NoFallback uint64 = 4294967295

func ByName(name string) (Flavor, error) {
	switch name {
	case "mariadb":
		return MariaDB{}, nil
	case "mysql":
		return MySQL{}, nil
	}
	return nil, fmt.Errorf("unknown flavor %q: use mariadb or mysql", name)
}

// Quote returns s as a single-quoted SQL string literal.
func Quote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `'`, `\'`, "\x00", `\0`, "\n", `\n`, "\r", `\r`, "\x1a", `\Z`)
	return "'" + r.Replace(s) + "'"
}

func onOff(on bool) string {
	if on {
		return "ON"
	}
	return "OFF"
}

// MariaDB is MariaDB 10.6 and later.
type MariaDB struct{}

func (MariaDB) Name() string         { return "mariadb" }
func (MariaDB) ListReplicas() string { return "SHOW SLAVE HOSTS" }
func (MariaDB) Onboarding() string {
	return "SELECT @@server_id, @@gtid_strict_mode, @@log_slave_updates"
}
func (MariaDB) ReplicaStatus() string { return "SHOW SLAVE STATUS" }
func (MariaDB) ChangeSource(s Source) string {
	return fmt.Sprintf("CHANGE MASTER TO MASTER_HOST=%s, MASTER_PORT=%d, MASTER_USER=%s, MASTER_PASSWORD=%s, "+
		"MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1, MASTER_HEARTBEAT_PERIOD=%g%s",
		Quote(s.Host), s.Port, Quote(s.User), Quote(s.Password), hb(s.HeartbeatPeriod), s.ssl("MASTER"))
}
func (MariaDB) StartReplica() string  { return "START SLAVE" }
func (MariaDB) StopReplica() string   { return "STOP SLAVE" }
func (MariaDB) StopReceiving() string { return "STOP SLAVE IO_THREAD" }
func (MariaDB) ReceiverThreads() string {
	return "SELECT ID FROM information_schema.PROCESSLIST WHERE COMMAND = 'Slave_IO'"
}
func (MariaDB) ResetReplica() string { return "RESET SLAVE ALL" }

// A former primary has an empty gtid_slave_pos: start from what it has logged itself.
func (MariaDB) PrepareReplica() []string {
	return []string{"SET GLOBAL gtid_slave_pos = @@GLOBAL.gtid_binlog_pos"}
}

// Executed is the binlog state: the last GTID of every (domain, server) pair, which is
// what errant-transaction checks need. Positions for waiting come from the same state.
func (MariaDB) Executed() string { return "SELECT @@GLOBAL.gtid_binlog_state" }
func (MariaDB) WaitExecuted(gtids string, timeout float64) string {
	return fmt.Sprintf("SELECT MASTER_GTID_WAIT(%s, %g)", Quote(mariaPos(gtids)), timeout)
}
func (MariaDB) SetReadOnly(on bool) []string {
	return []string{"SET GLOBAL read_only = " + onOff(on)}
}
func (MariaDB) FenceReadOnly() []string {
	return []string{fmt.Sprintf("SET STATEMENT lock_wait_timeout = %d FOR SET GLOBAL read_only = ON", FenceLockWait)}
}
func (MariaDB) ProcesslistStateMillis() string { return "p.TIME_MS" }
func (MariaDB) ReadOnly() string               { return "SELECT @@GLOBAL.read_only, 0" }
func (MariaDB) SetSemiSyncPrimary(on bool) []string {
	return []string{"SET GLOBAL rpl_semi_sync_master_enabled = " + onOff(on)}
}
func (MariaDB) SetSemiSyncReplica(on bool) []string {
	return []string{"SET GLOBAL rpl_semi_sync_slave_enabled = " + onOff(on)}
}
func (MariaDB) SetSemiSyncTimeout(ms uint64) []string {
	return []string{fmt.Sprintf("SET GLOBAL rpl_semi_sync_master_timeout = %d", ms)}
}
func (MariaDB) SemiSync() string {
	return "SELECT @@GLOBAL.rpl_semi_sync_master_enabled, @@GLOBAL.rpl_semi_sync_slave_enabled, " +
		"(SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME='RPL_SEMI_SYNC_MASTER_CLIENTS')"
}
func (MariaDB) PrimaryAcks() string {
	return "SELECT @@GLOBAL.rpl_semi_sync_master_enabled, @@GLOBAL.rpl_semi_sync_master_timeout, " +
		"(SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME='RPL_SEMI_SYNC_MASTER_STATUS'), " +
		"(SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME='RPL_SEMI_SYNC_MASTER_WAIT_SESSIONS')"
}
func (MariaDB) ParseGTIDs(s string) (GTIDSet, error) { return parseMariaState(s) }
func (MariaDB) Columns() StatusColumns {
	return StatusColumns{"Master_Host", "Master_Port", "Slave_IO_Running", "Slave_SQL_Running",
		"Last_IO_Error", "Last_SQL_Error", "Seconds_Behind_Master", "Gtid_IO_Pos"}
}

// MySQL is MySQL 8.0.23 and later, including 8.4.
type MySQL struct{}

func (MySQL) Name() string         { return "mysql" }
func (MySQL) ListReplicas() string { return "SHOW REPLICAS" }
func (MySQL) Onboarding() string {
	return "SELECT @@server_id, @@gtid_mode = 'ON' AND @@enforce_gtid_consistency = 'ON', @@log_replica_updates"
}
func (MySQL) ReplicaStatus() string { return "SHOW REPLICA STATUS" }
func (MySQL) ChangeSource(s Source) string {
	return fmt.Sprintf("CHANGE REPLICATION SOURCE TO SOURCE_HOST=%s, SOURCE_PORT=%d, SOURCE_USER=%s, SOURCE_PASSWORD=%s, "+
		"SOURCE_AUTO_POSITION=1, SOURCE_CONNECT_RETRY=1, SOURCE_HEARTBEAT_PERIOD=%g, GET_SOURCE_PUBLIC_KEY=1%s",
		Quote(s.Host), s.Port, Quote(s.User), Quote(s.Password), hb(s.HeartbeatPeriod), s.ssl("SOURCE"))
}
func (MySQL) StartReplica() string  { return "START REPLICA" }
func (MySQL) StopReplica() string   { return "STOP REPLICA" }
func (MySQL) StopReceiving() string { return "STOP REPLICA IO_THREAD" }
func (MySQL) ReceiverThreads() string {
	return "SELECT PROCESSLIST_ID FROM performance_schema.threads WHERE NAME IN ('thread/sql/replica_io', 'thread/sql/slave_io') AND PROCESSLIST_ID IS NOT NULL"
}
func (MySQL) ResetReplica() string     { return "RESET REPLICA ALL" }
func (MySQL) PrepareReplica() []string { return nil }
func (MySQL) Executed() string         { return "SELECT @@GLOBAL.gtid_executed" }
func (MySQL) WaitExecuted(gtids string, timeout float64) string {
	return fmt.Sprintf("SELECT WAIT_FOR_EXECUTED_GTID_SET(%s, %g)", Quote(gtids), timeout)
}

// super_read_only implies read_only and also stops privileged users.
func (MySQL) SetReadOnly(on bool) []string {
	if on {
		return []string{"SET GLOBAL super_read_only = ON"}
	}
	return []string{"SET GLOBAL super_read_only = OFF", "SET GLOBAL read_only = OFF"}
}
func (MySQL) FenceReadOnly() []string {
	return []string{fmt.Sprintf("SET SESSION lock_wait_timeout = %d", FenceLockWait), "SET GLOBAL super_read_only = ON", "SET SESSION lock_wait_timeout = DEFAULT"}
}

// ProcesslistStateMillis: MySQL counts whole seconds.
func (MySQL) ProcesslistStateMillis() string { return "p.TIME * 1000" }
func (MySQL) ReadOnly() string               { return "SELECT @@GLOBAL.read_only, @@GLOBAL.super_read_only" }
func (MySQL) SetSemiSyncPrimary(on bool) []string {
	return []string{"SET GLOBAL rpl_semi_sync_source_enabled = " + onOff(on)}
}
func (MySQL) SetSemiSyncReplica(on bool) []string {
	return []string{"SET GLOBAL rpl_semi_sync_replica_enabled = " + onOff(on)}
}
func (MySQL) SetSemiSyncTimeout(ms uint64) []string {
	return []string{fmt.Sprintf("SET GLOBAL rpl_semi_sync_source_timeout = %d", ms)}
}
func (MySQL) SemiSync() string {
	return "SELECT @@GLOBAL.rpl_semi_sync_source_enabled, @@GLOBAL.rpl_semi_sync_replica_enabled, " +
		"(SELECT VARIABLE_VALUE FROM performance_schema.global_status WHERE VARIABLE_NAME='Rpl_semi_sync_source_clients')"
}
func (MySQL) PrimaryAcks() string {
	return "SELECT @@GLOBAL.rpl_semi_sync_source_enabled, @@GLOBAL.rpl_semi_sync_source_timeout, " +
		"(SELECT VARIABLE_VALUE FROM performance_schema.global_status WHERE VARIABLE_NAME='Rpl_semi_sync_source_status'), " +
		"(SELECT VARIABLE_VALUE FROM performance_schema.global_status WHERE VARIABLE_NAME='Rpl_semi_sync_source_wait_sessions')"
}
func (MySQL) ParseGTIDs(s string) (GTIDSet, error) { return parseMySQLSet(s) }
func (MySQL) Columns() StatusColumns {
	return StatusColumns{"Source_Host", "Source_Port", "Replica_IO_Running", "Replica_SQL_Running",
		"Last_IO_Error", "Last_SQL_Error", "Seconds_Behind_Source", "Retrieved_Gtid_Set"}
}

func hb(p float64) float64 {
	if p <= 0 {
		return 1
	}
	return p
}
