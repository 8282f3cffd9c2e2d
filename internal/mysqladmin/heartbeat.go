package mysqladmin

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// HeartbeatTable is pt-heartbeat's table, one row per writer, keyed by server_id.
const HeartbeatTable = "baton.heartbeat"

// CreateHeartbeatSchema creates the heartbeat table on a new cluster's primary.
func (c *Client) CreateHeartbeatSchema(ctx context.Context) error {
	return c.exec(ctx, "CREATE DATABASE IF NOT EXISTS baton",
		`CREATE TABLE IF NOT EXISTS `+HeartbeatTable+` (ts varchar(26) NOT NULL, server_id int unsigned NOT NULL PRIMARY KEY,
			file varchar(255) DEFAULT NULL, position bigint unsigned DEFAULT NULL, relay_master_log_file varchar(255) DEFAULT NULL,
			exec_master_log_pos bigint unsigned DEFAULT NULL)`)
}

// TSFormat is pt-heartbeat's timestamp format (UTC).
const TSFormat = "2006-01-02T15:04:05.000000"

// HeartbeatLag returns how old this server's own heartbeat row is, on this server. The
// row was written to the primary by the agent on this server's host, so the age is measured
// with one clock and skew between hosts cannot distort it. ok is false when there is no row.
func (c *Client) HeartbeatLag(ctx context.Context) (lag time.Duration, ok bool, err error) {
	var micros sql.NullInt64
	err = c.db.QueryRowContext(ctx, `SELECT TIMESTAMPDIFF(MICROSECOND, STR_TO_DATE(ts, '%Y-%m-%dT%H:%i:%s.%f'), UTC_TIMESTAMP(6))
		FROM `+HeartbeatTable+` WHERE server_id = @@GLOBAL.server_id`).Scan(&micros)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil || !micros.Valid {
		return 0, false, err
	}
	return time.Duration(micros.Int64) * time.Microsecond, true, nil
}

// HeartbeatRows returns every heartbeat row's ts by server_id.
func (c *Client) HeartbeatRows(ctx context.Context) (map[uint32]string, error) {
	rows, err := c.db.QueryContext(ctx, "SELECT server_id, ts FROM "+HeartbeatTable)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[uint32]string{}
	for rows.Next() {
		var id uint32
		var ts string
		if err := rows.Scan(&id, &ts); err != nil {
			return nil, err
		}
		out[id] = ts
	}
	return out, rows.Err()
}
