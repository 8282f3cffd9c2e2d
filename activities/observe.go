package activities

import (
	"context"
	"fmt"

	"github.com/baton-db/baton/internal/config"
	"github.com/baton-db/baton/internal/mysqladmin"
	"github.com/baton-db/baton/internal/topology"
)

// observe reads one replica's replication state, executed GTIDs and heartbeat lag.
func (a *Activities) observe(ctx context.Context, cluster string, n topology.Node) Observed {
	o := Observed{Node: n, LagMS: -1}
	c, err := a.mysql(cluster, n)
	if err != nil {
		o.Error = err.Error()
		return o
	}
	st, err := c.ReplicaStatus(ctx)
	if err != nil {
		o.Error = err.Error()
		return o
	}
	o.Reachable = true
	if st == nil {
		o.IO, o.SQLError = "none", "(not a replica)"
	} else {
		o.IO, o.SQLRunning, o.SQLError = st.IORunning, st.SQLRunning, st.SQLError
		if st.Received != "" {
			o.Received, _ = c.Dialect().ParseGTIDs(st.Received)
		}
	}
	if raw, err := c.Executed(ctx); err == nil {
		o.GTIDs, _ = c.Dialect().ParseGTIDs(raw)
	}
	if lag, ok, err := c.HeartbeatLag(ctx); err == nil && ok {
		o.LagMS = lag.Milliseconds()
	}
	return o
}

// replicates reports whether n's replication source is src.
func replicatesFrom(srcHost string, srcPort int, n topology.Node) bool {
	return srcHost == n.IPv4 && srcPort == n.Port
}

func describe(n topology.Node) string { return fmt.Sprintf("%s (%s)", n.Name, n.Addr()) }

type configHAProxy = config.HAProxy

func (a *Activities) replicaStatus(ctx context.Context, cluster string, n topology.Node) (*mysqladmin.ReplicaStatus, error) {
	c, err := a.mysql(cluster, n)
	if err != nil {
		return nil, err
	}
	return c.ReplicaStatus(ctx)
}
