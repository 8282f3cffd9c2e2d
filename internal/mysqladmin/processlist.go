package mysqladmin

import (
	"context"
	"database/sql"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// Process is one row of the processlist.
type Process struct {
	ID      uint64
	User    string
	Host    string
	Command string
	Time    time.Duration
	State   string
	// StateAge is how long it has been in State (whole seconds on MySQL).
	StateAge time.Duration
	Info     string
	// TrxAge is how long the session's open InnoDB transaction has run (0 if none).
	TrxAge time.Duration
	// TrxRowsModified counts the rows its open transaction changed.
	TrxRowsModified int64
}

const processlistSQL = `SELECT p.ID, p.USER, p.HOST, p.COMMAND, p.TIME, COALESCE(p.STATE,''), COALESCE(p.INFO,''),
  COALESCE(TIMESTAMPDIFF(MICROSECOND, t.trx_started, NOW(6)), 0), COALESCE(t.trx_rows_modified, 0), CAST(%s AS UNSIGNED)
FROM information_schema.PROCESSLIST p
LEFT JOIN information_schema.INNODB_TRX t ON t.trx_mysql_thread_id = p.ID
WHERE p.ID <> CONNECTION_ID()`

// Processlist returns every other session on the server.
func (c *Client) Processlist(ctx context.Context) ([]Process, error) {
	rows, err := c.db.QueryContext(ctx, fmt.Sprintf(processlistSQL, c.Flavor.ProcesslistStateMillis()))
	if err != nil {
		return nil, fmt.Errorf("processlist of %s: %w", c.Addr, err)
	}
	defer rows.Close()
	var out []Process
	for rows.Next() {
		var p Process
		var secs int64
		var trxMicros, stateMillis int64
		var host sql.NullString
		if err := rows.Scan(&p.ID, &p.User, &host, &p.Command, &secs, &p.State, &p.Info, &trxMicros, &p.TrxRowsModified, &stateMillis); err != nil {
			return nil, err
		}
		p.Host = host.String
		p.Time = time.Duration(secs) * time.Second
		p.TrxAge = time.Duration(trxMicros) * time.Microsecond
		p.StateAge = time.Duration(stateMillis) * time.Millisecond
		out = append(out, p)
	}
	return out, rows.Err()
}

var (
	ddlRE = regexp.MustCompile(`(?is)^\s*(/\*.*?\*/\s*)*(ALTER|CREATE|DROP|RENAME|TRUNCATE|OPTIMIZE)\s`)
	dmlRE = regexp.MustCompile(`(?is)^\s*(/\*.*?\*/\s*)*(INSERT|UPDATE|DELETE|REPLACE|LOAD\s+DATA)\s`)
)

// IsDDL reports whether the session is running a schema change.
// Committing reports whether the session is inside a commit: binlogged and waiting for a
// semi-sync acknowledgement, or queued in the group commit behind one that is. Ending such a
// session does not undo its commit: MariaDB then skips the wait, and the commits queued
// behind it return success to their clients (the zone-partition test saw 8 such
// acknowledgements from a fenced primary, lost with it).
func (p Process) Committing() bool {
	s := strings.ToLower(p.State)
	return strings.Contains(s, "semi-sync") || strings.Contains(s, "commit")
}

func (p Process) IsDDL() bool { return p.Command == "Query" && ddlRE.MatchString(p.Info) }

// LongDML reports whether the session runs a DML statement, or holds a write transaction,
// for longer than limit.
func (p Process) LongDML(limit time.Duration) bool {
	if p.Command == "Query" && dmlRE.MatchString(p.Info) && p.Time >= limit {
		return true
	}
	return p.TrxRowsModified > 0 && p.TrxAge >= limit
}

// IsClient reports whether the session belongs to an application rather than to the
// server itself, replication or one of the excluded users.
func (p Process) IsClient(excluded map[string]bool) bool {
	switch {
	case p.User == "system user" || p.User == "event_scheduler" || p.User == "":
		return false
	case p.Command == "Binlog Dump" || p.Command == "Binlog Dump GTID" || p.Command == "Daemon":
		return false
	}
	return !excluded[p.User]
}
