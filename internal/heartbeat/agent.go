// Package heartbeat is the per-node agent. On a replica it follows the primary named in
// Consul and writes its own replica's row there; the row replicates back, and the replica
// measures its own lag against the clock of its own host. On every node it guards its own
// server (guard.go): a node Consul has deposed or evicted is fenced from its own host.
package heartbeat

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"go.opentelemetry.io/otel/metric"

	"github.com/baton-db/baton/internal/flavor"
	"github.com/baton-db/baton/internal/mysqladmin"
	"github.com/baton-db/baton/internal/topology"
)

// Consul is what the agent needs from Consul.
type Consul interface {
	Read(ctx context.Context, cluster string) (topology.Topology, error)
	ReportReach(ctx context.Context, cluster, node string, r topology.Reach) error
	RecordFencing(ctx context.Context, cluster string, f topology.Fencing) error
	ReadLease(ctx context.Context, cluster string) (topology.Lease, uint64, error)
	WriteLease(ctx context.Context, cluster string, l topology.Lease, index uint64) (uint64, error)
}

// Agent writes one node's heartbeat.
type Agent struct {
	Cluster, Node string
	Interval      time.Duration
	// MySQL is the heartbeat user's connection settings; its SourceAddr is the replica
	// host's own address.
	MySQL mysqladmin.Options
	Topo  Consul
	Log   *slog.Logger
	// Guard is the guard account's connection settings on the agent's own node (empty User:
	// no guard).
	Guard mysqladmin.Options
	// Flavor is the node's SQL dialect (the guard's read_only and fence statements).
	Flavor flavor.Flavor
	// MysqldPIDFile, if set, lets the guard stop its node's mysqld (SIGKILL) when a fence
	// finds commits held waiting for an acknowledgement (mysqladmin.ErrCommitsHeld): the
	// one way to end them without acknowledging them.
	MysqldPIDFile string
	// Fences counts the guard's fencings (nil: not counted).
	Fences metric.Int64Counter
	// LeaseTTL, if positive, makes the agent of the primary hold the cluster's lease
	// (lease.go); it needs Guard.
	LeaseTTL time.Duration

	primary string
	db      *sql.DB
	reach   *topology.Reach

	self         *mysqladmin.Client // the guard's connection to its own node
	selfAddr     string
	primaryAt    uint64
	pending      bool // the last heartbeat write did not answer: the primary may still run it
	heldRecorded bool // a fence found commits held, and recorded it
	lastGuardErr string

	// The lease (lease.go) runs beside the heartbeat loop, on its own connections, so that
	// nothing the loop waits on delays a fence.
	mu           sync.Mutex
	last         *topology.Topology // the last topology the loop read, for the lease while Consul is down
	lastAt       time.Time          // when it was read
	renewed      time.Time          // start of the last successful renewal of this node's lease
	leaseIdx     uint64
	leaseErr     string
	failsafeSaid string
	actedAt      uint64                        // the epoch at which the lease's fence stopped this node
	reopen       *mysqladmin.PrimaryAcks       // fenced on a lapse: its semi-sync settings, restored when the lease is renewed
	reopenWrites bool                          // and writable again then: the fence is what made it read-only (mayReopen)
	leaseSelf    *mysqladmin.Client            // the lease's connection to its own node
	replicas     map[string]*mysqladmin.Client // the failsafe's connections
}

func (a *Agent) setLast(t topology.Topology) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.last, a.lastAt = &t, time.Now()
}

// Ready says whether the agent can do its job (its /readyz): it read its cluster from
// Consul lately, and its own node answers.
func (a *Agent) Ready(ctx context.Context) error {
	a.mu.Lock()
	t, at := a.last, a.lastAt
	a.mu.Unlock()
	if stale := time.Since(at); t == nil || stale > 3*a.Interval+time.Second {
		return fmt.Errorf("consul: cluster %s not read for %s", a.Cluster, stale.Round(time.Millisecond))
	}
	self, ok := t.Find(a.Node)
	if !ok {
		for _, e := range t.Evicted {
			if e.Node.Name == a.Node {
				self, ok = e.Node, true
			}
		}
	}
	if !ok {
		return fmt.Errorf("%s is not a node of %s in Consul", a.Node, a.Cluster)
	}
	o := a.MySQL
	o.ConnectTimeout, o.ReadTimeout = 500*time.Millisecond, 500*time.Millisecond
	db, err := o.OpenDB(self.Addr())
	if err != nil {
		return err
	}
	defer db.Close()
	if err := db.PingContext(ctx); err != nil {
		return fmt.Errorf("own node %s (%s): %w", a.Node, self.Addr(), err)
	}
	return nil
}

func (a *Agent) lastTopology() *topology.Topology {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.last
}

// Run writes a heartbeat every Interval until ctx ends.
func (a *Agent) Run(ctx context.Context) error {
	t := time.NewTicker(a.Interval)
	defer t.Stop()
	defer a.close()
	defer func() {
		if a.self != nil {
			_ = a.self.Close()
		}
	}()
	if a.LeaseTTL > 0 && a.Guard.User != "" {
		done := make(chan struct{})
		go func() { defer close(done); a.runLease(ctx) }()
		defer func() { <-done }()
	}
	var lastErr string
	for {
		topo, err := a.Topo.Read(ctx, a.Cluster)
		if err == nil {
			a.setLast(topo)
			if a.Guard.User != "" {
				a.guard(ctx, topo)
			}
			err = a.beat(ctx, topo)
		}
		if err != nil && err.Error() != lastErr {
			a.Log.Warn("heartbeat not written", "node", a.Node, "primary", a.primary, "error", err)
			lastErr = err.Error()
		} else if err == nil && lastErr != "" {
			a.Log.Info("heartbeat written again", "node", a.Node, "primary", a.primary)
			lastErr = ""
		}
		if ctx.Err() == nil {
			a.report(ctx, a.reaches(ctx, err))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func (a *Agent) beat(ctx context.Context, topo topology.Topology) error {
	self, ok := topo.Find(a.Node)
	if !ok || self.Name == topo.Primary.Name {
		a.close() // the primary, or evicted: nothing to measure
		return nil
	}
	if addr := topo.Primary.Addr(); addr != a.primary {
		a.close()
		o := a.MySQL
		o.ConnectTimeout, o.ReadTimeout = 500*time.Millisecond, 500*time.Millisecond
		db, err := o.OpenDB(addr)
		if err != nil {
			return err
		}
		a.db, a.primary, a.pending = db, addr, false
		a.db.SetMaxOpenConns(1)
		a.Log.Info("following primary", "node", a.Node, "primary", topo.Primary.Name, "addr", addr)
	}
	qctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	if a.pending {
		var held int
		if err := a.db.QueryRowContext(qctx, heldBeats).Scan(&held); err != nil {
			return err
		}
		if held > 0 {
			return errBeatHeld
		}
		a.pending = false
	}
	_, err := a.db.ExecContext(qctx, "INSERT INTO "+mysqladmin.HeartbeatTable+" (ts, server_id) VALUES (?, ?) "+
		"ON DUPLICATE KEY UPDATE ts = VALUES(ts)", time.Now().UTC().Format(mysqladmin.TSFormat), self.ServerID)
	a.pending = err != nil
	return err
}

// A heartbeat write that did not answer may still be running on the primary: a commit
// held for a semi-sync acknowledgement stays there, its connection closed by the client,
// for the semi-sync timeout (forever under ack_fallback none). Until it ends the agent
// writes no other, so that a primary holding its commits does not collect a connection
// from every agent every interval until max_connections refuses the application.
var errBeatHeld = errors.New("the primary still runs this host's previous heartbeat write (a commit waiting for a semi-sync acknowledgement?): none added until it ends")

// heldBeats counts the heartbeat writes that this host's earlier connections still run
// (an account sees its own threads without the PROCESS privilege).
const heldBeats = "SELECT COUNT(*) FROM information_schema.PROCESSLIST " +
	"WHERE USER = SUBSTRING_INDEX(CURRENT_USER(), '@', 1) AND ID <> CONNECTION_ID() " +
	"AND COMMAND IN ('Query', 'Execute') AND INFO LIKE 'INSERT INTO " + mysqladmin.HeartbeatTable + " %' " +
	"AND SUBSTRING_INDEX(HOST, ':', 1) = (SELECT SUBSTRING_INDEX(HOST, ':', 1) FROM information_schema.PROCESSLIST WHERE ID = CONNECTION_ID())"

// ReportEvery is how often an agent repeats an unchanged report, so that the detector can
// ignore the reports of agents that stopped (topology.ReachMaxAge).
const ReportEvery = 5 * time.Second

// reaches turns a heartbeat's outcome into "this host reaches the primary or not". Only a
// failure to connect or authenticate counts: a write that failed (a lock wait, read_only,
// a semi-sync stall, too many connections) on a server that answers a fresh connection is
// not a vote that it is dead.
func (a *Agent) reaches(ctx context.Context, beatErr error) error {
	if beatErr == nil || a.primary == "" {
		return beatErr
	}
	o := a.MySQL
	o.ConnectTimeout, o.ReadTimeout = 500*time.Millisecond, 500*time.Millisecond
	db, err := o.OpenDB(a.primary)
	if err != nil {
		return err
	}
	defer db.Close()
	pctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	return db.PingContext(pctx)
}

// report tells Consul whether this host reaches the primary: on every change, and again
// every ReportEvery so that a report's age shows the agent is alive.
func (a *Agent) report(ctx context.Context, err error) {
	if a.primary == "" {
		return
	}
	ok := err == nil
	if a.reach != nil && a.reach.OK == ok && a.reach.Primary == a.primary && time.Since(a.reach.At) < ReportEvery {
		return
	}
	if a.reach != nil && a.reach.OK == ok && a.reach.Primary == a.primary {
		r := *a.reach
		r.At = time.Now().UTC()
		if perr := a.Topo.ReportReach(ctx, a.Cluster, a.Node, r); perr == nil {
			a.reach = &r
		}
		return
	}
	now := time.Now().UTC()
	r := topology.Reach{Primary: a.primary, OK: ok, Since: now, At: now}
	if err != nil {
		r.Error = err.Error()
	}
	if perr := a.Topo.ReportReach(ctx, a.Cluster, a.Node, r); perr == nil {
		a.reach = &r
	}
}

func (a *Agent) close() {
	if a.db != nil {
		_ = a.db.Close()
		a.db, a.primary = nil, ""
	}
}
