package mysqladmin

import (
	"context"
	"fmt"
)

// EndClientSessions kills every session but the server's own, replication's and those of
// the excluded users, so pooled application connections reconnect through HAProxy instead
// of staying on a server that must not take writes.
func (c *Client) EndClientSessions(ctx context.Context, excluded map[string]bool) (int, error) {
	procs, err := c.Processlist(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, p := range procs {
		if !p.IsClient(excluded) {
			continue
		}
		if err := c.Kill(ctx, p.ID); err != nil {
			return n, fmt.Errorf("end session %d of %s on %s: %w", p.ID, p.User, c.Addr, err)
		}
		n++
	}
	return n, nil
}

// Writable reports whether unprivileged clients could write here (MySQL: whether anyone
// could: super_read_only is what stops privileged users).
func (c *Client) Writable(ctx context.Context) (bool, error) {
	ro, super, err := c.ReadOnly(ctx)
	if err != nil {
		return false, err
	}
	if c.Flavor.Name() == "mysql" {
		return !super, nil
	}
	return !ro, nil
}

// Fence makes the server refuse writes (read_only; super_read_only on MySQL), ends its
// client sessions, and turns off its semi-sync primary side. The sessions are ended first:
// SET GLOBAL read_only waits for commits in flight, and a primary that wakes up from a
// freeze has commits waiting for a semi-sync acknowledgement that will never come (ended,
// their clients get an error, not an acknowledgement). Semi-sync goes off last, once no
// commit can be waiting. It returns how many sessions it ended.
func (c *Client) Fence(ctx context.Context, excluded map[string]bool) (int, error) {
	n, err := c.EndClientSessions(ctx, excluded)
	if err != nil {
		return n, err
	}
	if err := c.SetReadOnly(ctx, true); err != nil {
		return n, err
	}
	m, err := c.EndClientSessions(ctx, excluded) // any that connected in between
	if err != nil {
		return n + m, err
	}
	_ = c.SetSemiSyncPrimary(ctx, false)
	return n + m, nil
}
