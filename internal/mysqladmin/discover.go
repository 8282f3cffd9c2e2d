package mysqladmin

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
)

// ReplicaHost is one replica a primary lists (its report_host and report_port).
type ReplicaHost struct {
	ServerID uint32
	Host     string
	Port     int
}

// ReplicaHosts lists the replicas connected to this primary.
func (c *Client) ReplicaHosts(ctx context.Context) ([]ReplicaHost, error) {
	rows, err := c.db.QueryContext(ctx, c.Flavor.ListReplicas())
	if err != nil {
		return nil, fmt.Errorf("list the replicas of %s: %w", c.Addr, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	var out []ReplicaHost
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		var h ReplicaHost
		for i, col := range cols {
			switch strings.ToLower(col) {
			case "server_id":
				id, _ := strconv.ParseUint(vals[i].String, 10, 32)
				h.ServerID = uint32(id)
			case "host":
				h.Host = vals[i].String
			case "port":
				h.Port, _ = strconv.Atoi(vals[i].String)
			}
		}
		out = append(out, h)
	}
	return out, rows.Err()
}

// Onboarding is what `baton cluster add` requires of a node.
type Onboarding struct {
	ServerID          uint32
	GTIDEnforced      bool
	LogReplicaUpdates bool
}

// OnboardingSettings reads them.
func (c *Client) OnboardingSettings(ctx context.Context) (Onboarding, error) {
	var o Onboarding
	err := c.db.QueryRowContext(ctx, c.Flavor.Onboarding()).Scan(&o.ServerID, &o.GTIDEnforced, &o.LogReplicaUpdates)
	if err != nil {
		return o, fmt.Errorf("server settings of %s: %w", c.Addr, err)
	}
	return o, nil
}

// UserExists reports whether an account named user exists (any host).
func (c *Client) UserExists(ctx context.Context, user string) (bool, error) {
	var n int
	if err := c.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM mysql.user WHERE User = ?", user).Scan(&n); err != nil {
		return false, fmt.Errorf("read the accounts of %s: %w", c.Addr, err)
	}
	return n > 0, nil
}
