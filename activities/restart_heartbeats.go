package activities

import (
	"context"
	"sort"
	"strings"
	"time"

	"github.com/baton-db/baton/internal/topology"
)

// HeartbeatInput lists the live replicas whose heartbeats must reach Primary.
type HeartbeatInput struct {
	Cluster  string
	Primary  topology.Node
	Replicas []topology.Node
	Timeout  time.Duration
}

// RestartHeartbeats waits until every live replica's heartbeat agent, which follows the
// primary named in Consul, has written its row on the new primary. Fresh means the row
// changed since the step started, so clocks are never compared.
func (a *Activities) RestartHeartbeats(ctx context.Context, in HeartbeatInput) (struct{}, error) {
	c, err := a.mysql(in.Cluster, in.Primary)
	if err != nil {
		return struct{}{}, err
	}
	before, err := c.HeartbeatRows(ctx)
	if err != nil {
		return struct{}{}, err
	}
	timeout := in.Timeout
	if timeout <= 0 {
		timeout = 20 * time.Second
	}
	fresh := map[string]bool{}
	err = poll(ctx, 100*time.Millisecond, timeout, func() (bool, error) {
		now, err := c.HeartbeatRows(ctx)
		if err != nil {
			return false, nil
		}
		for _, r := range in.Replicas {
			if ts, ok := now[r.ServerID]; ok && ts != before[r.ServerID] {
				fresh[r.Name] = true
			}
		}
		return len(fresh) == len(in.Replicas), nil
	})
	if err != nil {
		var stale []string
		for _, r := range in.Replicas {
			if !fresh[r.Name] {
				stale = append(stale, r.Name)
			}
		}
		sort.Strings(stale)
		return struct{}{}, nonRetryable(ErrHeartbeatsStale,
			"no fresh heartbeat on %s from %s within %s; check the heartbeat agents on those hosts (lag cannot be measured until they write)",
			in.Primary.Name, strings.Join(stale, ", "), timeout)
	}
	return struct{}{}, nil
}
