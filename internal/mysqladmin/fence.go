package mysqladmin

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/baton-db/baton/internal/flavor"
)

// EndClientSessions kills every session but the server's own, replication's and those of
// the excluded users, so pooled application connections reconnect through HAProxy instead
// of staying on a server that must not take writes.
func (c *Client) EndClientSessions(ctx context.Context, excluded map[string]bool) (int, error) {
	return c.endSessions(ctx, excluded, true)
}

func (c *Client) endSessions(ctx context.Context, excluded map[string]bool, committing bool) (int, error) {
	procs, err := c.Processlist(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, p := range procs {
		if !p.IsClient(excluded) || !committing && p.Committing() {
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

// ErrCommitsHeld: read_only could not be set because commits are held waiting for a
// semi-sync acknowledgement. None of them can be acknowledged while no replica acks (the
// timeout is NoFallback), and every new commit joins them.
var ErrCommitsHeld = errors.New("commits are held waiting for a semi-sync acknowledgement that cannot come (timeout at its maximum): no session ended, read_only pending")

// Fence makes the server refuse writes (read_only; super_read_only on MySQL) and ends its
// client sessions, without letting a commit that waits for a semi-sync acknowledgement
// succeed. The semi-sync timeout goes to NoFallback first (a wait that times out is
// acknowledged). Then read_only, which waits up to flavor.FenceLockWait for the commits in
// flight (new writes queue behind it meanwhile, so no load starves it; under load a commit
// is nearly always waiting a millisecond for its acknowledgement). If it times out while a
// client's commit has waited HeldCommitAge, the commits are held: Fence ends no session and
// returns ErrCommitsHeld. Ending sessions while commits were held, or turning semi-sync
// off as an earlier version did, returned success to clients of commits that no replica
// had (the zone-partition test: 6 to 8 acknowledged writes from a fenced primary after the
// failover's publish, all lost). Such a server takes no acknowledged write (every new
// commit joins the wait); only stopping it ends the held commits without acknowledging
// them, which its own host's agent may do (heartbeat.Agent.MysqldPIDFile). Otherwise (a
// long statement or an explicit lock held it) the sessions not committing are ended and
// read_only is tried once more; then the sessions that connected in between are ended too.
// It returns how many sessions it ended.
func (c *Client) Fence(ctx context.Context, excluded map[string]bool) (int, error) {
	if err := c.exec(ctx, c.Flavor.SetSemiSyncTimeout(flavor.NoFallback)...); err != nil && !unknownVariable(err) {
		return 0, err
	}
	roErr := c.fenceReadOnly(ctx)
	if lockTimeout(roErr) {
		procs, err := c.Processlist(ctx)
		if err != nil {
			return 0, err
		}
		if heldCommits(procs, excluded) {
			return 0, ErrCommitsHeld
		}
	} else if roErr != nil {
		return 0, roErr
	}
	n, err := c.endSessions(ctx, excluded, false)
	if err != nil {
		return n, err
	}
	if roErr != nil {
		if roErr = c.fenceReadOnly(ctx); lockTimeout(roErr) {
			return n, ErrCommitsHeld
		} else if roErr != nil {
			return n, roErr
		}
	}
	m, err := c.endSessions(ctx, excluded, false) // any that connected in between
	return n + m, err
}

// HeldCommitAge: a client's commit that has waited this long for its acknowledgement when
// read_only gives up is held. One takes a millisecond or two while a replica acknowledges;
// commits that queued behind read_only start their wait only once it gives up.
const HeldCommitAge = 500 * time.Millisecond

// heldCommits reports whether a client session has been committing for HeldCommitAge.
func heldCommits(procs []Process, excluded map[string]bool) bool {
	return slices.ContainsFunc(procs, func(p Process) bool {
		return p.IsClient(excluded) && p.Committing() && p.StateAge >= HeldCommitAge
	})
}

func lockTimeout(err error) bool {
	return err != nil && strings.Contains(err.Error(), "Lock wait timeout")
}

func (c *Client) fenceReadOnly(ctx context.Context) error {
	conn, err := c.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	for _, s := range c.Flavor.FenceReadOnly() {
		if _, err := conn.ExecContext(ctx, s); err != nil {
			_ = conn.Raw(func(any) error { return driver.ErrBadConn }) // not back to the pool with its session settings
			return redactErr(s, c.Addr, err)
		}
	}
	return nil
}

// unknownVariable: a MySQL server without the semi-sync plugin has no timeout to set.
func unknownVariable(err error) bool { return strings.Contains(err.Error(), "Unknown system variable") }
