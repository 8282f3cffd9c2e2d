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

// Fence makes the server refuse writes (read_only; super_read_only on MySQL), turns off its
// semi-sync primary side, and ends its client sessions. It returns how many it ended.
func (c *Client) Fence(ctx context.Context, excluded map[string]bool) (int, error) {
	if err := c.SetReadOnly(ctx, true); err != nil {
		return 0, err
	}
	_ = c.SetSemiSyncPrimary(ctx, false) // nothing waits for an acknowledgement that cannot come
	return c.EndClientSessions(ctx, excluded)
}
