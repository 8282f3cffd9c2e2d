// Package heartbeat is the per-replica heartbeat agent. It follows the primary named in
// Consul and writes its own replica's row there; the row replicates back, and the replica
// measures its own lag against the clock of its own host.
package heartbeat

import (
	"context"
	"database/sql"
	"log/slog"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/baton-db/baton/internal/mysqladmin"
	"github.com/baton-db/baton/internal/topology"
)

// Reader is what the agent needs from Consul.
type Reader interface {
	Read(ctx context.Context, cluster string) (topology.Topology, error)
}

// Agent writes one node's heartbeat.
type Agent struct {
	Cluster, Node  string
	User, Password string
	Interval       time.Duration
	Topo           Reader
	Log            *slog.Logger

	primary string
	db      *sql.DB
}

// Run writes a heartbeat every Interval until ctx ends.
func (a *Agent) Run(ctx context.Context) error {
	t := time.NewTicker(a.Interval)
	defer t.Stop()
	defer a.close()
	var lastErr string
	for {
		if err := a.beat(ctx); err != nil && err.Error() != lastErr {
			a.Log.Warn("heartbeat not written", "node", a.Node, "primary", a.primary, "error", err)
			lastErr = err.Error()
		} else if err == nil && lastErr != "" {
			a.Log.Info("heartbeat written again", "node", a.Node, "primary", a.primary)
			lastErr = ""
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func (a *Agent) beat(ctx context.Context) error {
	topo, err := a.Topo.Read(ctx, a.Cluster)
	if err != nil {
		return err
	}
	self, ok := topo.Find(a.Node)
	if !ok || self.Name == topo.Primary.Name {
		return nil // the primary, or evicted: nothing to measure
	}
	if addr := topo.Primary.Addr(); addr != a.primary {
		a.close()
		c := mysql.NewConfig()
		c.User, c.Passwd, c.Net, c.Addr = a.User, a.Password, "tcp", addr
		c.Timeout, c.ReadTimeout, c.WriteTimeout = time.Second, 2*time.Second, 2*time.Second
		conn, err := mysql.NewConnector(c)
		if err != nil {
			return err
		}
		a.db, a.primary = sql.OpenDB(conn), addr
		a.db.SetMaxOpenConns(1)
		a.Log.Info("following primary", "node", a.Node, "primary", topo.Primary.Name, "addr", addr)
	}
	qctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, err = a.db.ExecContext(qctx, "INSERT INTO "+mysqladmin.HeartbeatTable+" (ts, server_id) VALUES (?, ?) "+
		"ON DUPLICATE KEY UPDATE ts = VALUES(ts)", time.Now().UTC().Format(mysqladmin.TSFormat), self.ServerID)
	return err
}

func (a *Agent) close() {
	if a.db != nil {
		_ = a.db.Close()
		a.db, a.primary = nil, ""
	}
}
