package mysqladmin

import (
	"context"
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
	all, err := scanAll(rows)
	if err != nil {
		return nil, err
	}
	out := make([]ReplicaHost, 0, len(all))
	for _, row := range all {
		var h ReplicaHost
		for col, v := range row {
			switch strings.ToLower(col) {
			case "server_id":
				id, _ := strconv.ParseUint(v, 10, 32)
				h.ServerID = uint32(id)
			case "host":
				h.Host = v
			case "port":
				h.Port, _ = strconv.Atoi(v)
			}
		}
		out = append(out, h)
	}
	return out, nil
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
