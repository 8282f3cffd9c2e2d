package activities

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/baton-db/baton/internal/config"
	"github.com/baton-db/baton/internal/flavor"
	"github.com/baton-db/baton/internal/mysqladmin"
	"github.com/baton-db/baton/internal/topology"
)

var (
	tPrimary = topology.Node{Name: "node1", IPv4: "127.0.1.1", Port: 3306, Zone: "a", ServerID: 101}
	tCand    = topology.Node{Name: "node2", IPv4: "127.0.1.2", Port: 3306, Zone: "b", ServerID: 102}
)

func TestPreChecks(t *testing.T) {
	healthy := &mysqladmin.ReplicaStatus{SourceHost: "127.0.1.1", SourcePort: 3306, IORunning: "Yes", SQLRunning: true}
	cases := []struct {
		name   string
		check  Check
		ok     bool
		detail string
	}{
		{"replicates", checkReplicates(tCand, tPrimary, healthy, nil), true, "IO Yes"},
		{"unreadable", checkReplicates(tCand, tPrimary, nil, errors.New("connection refused")), false, "cannot read node2"},
		{"not a replica", checkReplicates(tCand, tPrimary, nil, nil), false, "not a replica"},
		{"other source", checkReplicates(tCand, tPrimary, &mysqladmin.ReplicaStatus{SourceHost: "127.0.1.3", SourcePort: 3306, IORunning: "Yes", SQLRunning: true}, nil), false, "replicates from 127.0.1.3:3306"},
		{"SQL stopped", checkReplicates(tCand, tPrimary, &mysqladmin.ReplicaStatus{SourceHost: "127.0.1.1", SourcePort: 3306, IORunning: "Yes", SQLError: "dup key"}, nil), false, "dup key"},
		{"no errant", checkErrant(Observed{Node: tCand, GTIDs: gtids(t, "0-101-10")}, gtids(t, "0-101-12")), true, "0-101-10"},
		{"errant", checkErrant(Observed{Node: tCand, GTIDs: gtids(t, "0-101-10,0-102-3")}, gtids(t, "0-101-12")), false, "0-102-3"},
		{"GTIDs unknown", checkErrant(Observed{Node: tCand}, gtids(t, "0-101-12")), false, "cannot read"},
		{"no DDL", checkDDL([]mysqladmin.Process{{ID: 1, Command: "Query", Info: "SELECT 1"}}, nil), true, "none"},
		{"DDL", checkDDL([]mysqladmin.Process{{ID: 7, User: "app", Command: "Query", Info: "ALTER TABLE t ADD c INT", Time: 3 * time.Second}}, nil), false, "id 7 user app"},
		{"processlist unreadable", checkDDL(nil, errors.New("timeout")), false, "timeout"},
		{"long DML", checkLongDML([]mysqladmin.Process{{ID: 8, User: "app", Command: "Query", Info: "UPDATE t SET x=1", Time: 20 * time.Second, TrxAge: 20 * time.Second}}, nil, 10*time.Second), false, "id 8 user app"},
		{"short DML", checkLongDML([]mysqladmin.Process{{ID: 8, User: "app", Command: "Query", Info: "UPDATE t SET x=1", Time: time.Second, TrxAge: time.Second}}, nil, 10*time.Second), true, "none"},
		{"lag ok", checkLag(Observed{Node: tCand, LagMS: 100}, 2*time.Second), true, "100 ms"},
		{"lag high", checkLag(Observed{Node: tCand, LagMS: 3000}, 2*time.Second), false, "lags 3000 ms"},
		{"no heartbeat", checkLag(Observed{Node: tCand, LagMS: -1}, 2*time.Second), false, "heartbeat agent"},
		{"HAProxies healthy", checkHAProxyHosts([]topology.HAProxyHost{{ID: "haproxy-a"}, {ID: "haproxy-b"}}, nil, []configHAProxy{{Name: "a"}, {Name: "b"}}), true, "none"},
		{"consul-template down", checkHAProxyHosts([]topology.HAProxyHost{{ID: "haproxy-a", Failing: []string{"consul-template"}}, {ID: "haproxy-b"}}, nil, []configHAProxy{{Name: "a"}, {Name: "b"}}), false, "haproxy-a: consul-template"},
		{"host not registered", checkHAProxyHosts([]topology.HAProxyHost{{ID: "haproxy-a"}}, nil, []configHAProxy{{Name: "a"}, {Name: "b"}}), false, "haproxy-b is not registered"},
		{"Consul down", checkHAProxyHosts(nil, errors.New("connection refused"), nil), false, "Consul must be up"},
	}
	for _, c := range cases {
		if c.check.OK != c.ok || !strings.Contains(c.check.Detail, c.detail) {
			t.Errorf("%s: %+v, want ok=%v and %q", c.name, c.check, c.ok, c.detail)
		}
	}
	if got := failed([]Check{{Name: "a", OK: true}, {Name: "b"}, {Name: "c"}}); len(got) != 2 || got[0].Name != "b" {
		t.Errorf("failed() = %+v", got)
	}
}

// fakeServer is a Server with canned answers that records the statements it was asked for.
type fakeServer struct {
	mu       sync.Mutex
	down     bool
	status   *mysqladmin.ReplicaStatus
	executed string
	lagMS    int64
	did      []string
	onWait   func() // runs when a GTID wait returns (what replication delivered meanwhile)
	writable bool   // read_only is off (a primary)
	// pointAcks is whether each PointAt made it acknowledge.
	pointAcks []bool
	// pointedAt is the source host of each PointAt.
	pointedAt []string
	stopIO    time.Duration // how long StopReceiving waits for its IO thread to end
}

func (f *fakeServer) record(s string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return errors.New("connection refused")
	}
	f.did = append(f.did, s)
	return nil
}
func (f *fakeServer) Dialect() flavor.Flavor     { return flavor.MariaDB{} }
func (f *fakeServer) Ping(context.Context) error { return f.record("ping") }
func (f *fakeServer) Close() error               { return nil }
func (f *fakeServer) Executed(context.Context) (string, error) {
	return f.executed, f.record("executed")
}
func (f *fakeServer) ReplicaStatus(context.Context) (*mysqladmin.ReplicaStatus, error) {
	if err := f.record("status"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.status == nil {
		return nil, nil
	}
	st := *f.status
	return &st, nil
}
func (f *fakeServer) WaitExecuted(context.Context, string, time.Duration) error {
	if f.onWait != nil {
		f.onWait()
	}
	return f.record("wait")
}
func (f *fakeServer) ReadOnly(context.Context) (bool, bool, error) {
	return !f.writable, false, f.record("ro?")
}
func (f *fakeServer) SetReadOnly(_ context.Context, on bool) error { return f.record("read_only") }
func (f *fakeServer) SetSemiSyncPrimary(context.Context, bool) error {
	return f.record("semisync")
}
func (f *fakeServer) SetSemiSyncTimeout(_ context.Context, ms uint64) error {
	return f.record(fmt.Sprintf("semisync timeout %d", ms))
}
func (f *fakeServer) SetAcks(context.Context, bool) error { return f.record("acks") }
func (f *fakeServer) PointAt(_ context.Context, src flavor.Source, fromBinlog, acks bool) error {
	f.mu.Lock()
	f.pointAcks = append(f.pointAcks, acks)
	f.pointedAt = append(f.pointedAt, src.Host)
	f.mu.Unlock()
	if fromBinlog {
		return f.record("point from binlog")
	}
	return f.record("point")
}
func (f *fakeServer) StartReplica(context.Context) error {
	if err := f.record("start"); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.status != nil && f.status.SQLError == "" {
		f.status.SQLRunning = true
	}
	return nil
}
func (f *fakeServer) CutReceiving(context.Context) error { return f.record("cut io") }
func (f *fakeServer) StopReceiving(context.Context) error {
	time.Sleep(f.stopIO)
	return f.record("stop io")
}
func (f *fakeServer) RestartReplica(ctx context.Context) error      { return f.StartReplica(ctx) }
func (f *fakeServer) StopReplica(context.Context) error             { return f.record("stop replica") }
func (f *fakeServer) ServerID(context.Context) (uint32, error)      { return 0, nil }
func (f *fakeServer) SetServerID(context.Context, uint32) error     { return f.record("set server_id") }
func (f *fakeServer) StopAndResetReplication(context.Context) error { return f.record("reset") }
func (f *fakeServer) Processlist(context.Context) ([]mysqladmin.Process, error) {
	return nil, f.record("processlist")
}
func (f *fakeServer) EndClientSessions(context.Context, map[string]bool) (int, error) {
	return 0, f.record("end sessions")
}
func (f *fakeServer) Fence(context.Context, map[string]bool) (int, error) {
	return 0, f.record("fence")
}
func (f *fakeServer) HeartbeatRows(context.Context) (map[uint32]string, error) {
	return nil, f.record("rows")
}
func (f *fakeServer) HeartbeatLag(context.Context) (time.Duration, bool, error) {
	return time.Duration(f.lagMS) * time.Millisecond, true, f.record("lag")
}

func fakeActivities(servers map[string]*fakeServer) *Activities {
	cfg := &config.Config{Clusters: map[string]config.ClusterConfig{"demo": {Flavor: "mariadb", CatchUpTimeout: time.Second}}}
	cfg.Detector.ProbeTimeout = 100 * time.Millisecond
	return &Activities{Config: cfg, Dial: func(addr string, _ flavor.Flavor, _ mysqladmin.Options) (Server, error) {
		if s, ok := servers[addr]; ok {
			return s, nil
		}
		return nil, fmt.Errorf("dial %s: connection refused", addr)
	}}
}

// A SQL thread stopped without an error is started and its replica stays a candidate; one
// stopped on an error is excluded with the error; an unreachable replica is left out of the
// plan (Lost), not waited for.
func TestChooseCandidateAfterAnOperatorStoppedSQLThreads(t *testing.T) {
	stopped := &fakeServer{executed: "0-101-20", lagMS: 50,
		status: &mysqladmin.ReplicaStatus{SourceHost: "127.0.1.1", SourcePort: 3306, IORunning: "Connecting"}}
	broken := &fakeServer{executed: "0-101-20", lagMS: 10,
		status: &mysqladmin.ReplicaStatus{SourceHost: "127.0.1.1", SourcePort: 3306, IORunning: "Connecting", SQLError: "Duplicate entry"}}
	gone := &fakeServer{down: true}
	n3 := topology.Node{Name: "node3", IPv4: "127.0.1.3", Port: 3306, Zone: "a", ServerID: 103}
	n4 := topology.Node{Name: "node4", IPv4: "127.0.1.4", Port: 3306, Zone: "a", ServerID: 104}
	a := fakeActivities(map[string]*fakeServer{tCand.Addr(): stopped, n3.Addr(): broken, n4.Addr(): gone})
	plan, err := a.ChooseCandidate(context.Background(), ConfirmResult{Cluster: "demo", Primary: tPrimary,
		Replicas: []topology.Node{tCand, n3, n4}, Epoch: 7})
	if err != nil {
		t.Fatal(err)
	}
	if plan.Candidate.Name != "node2" || !strings.Contains(strings.Join(stopped.did, ","), "start") {
		t.Fatalf("candidate %s; node2 did %v", plan.Candidate.Name, stopped.did)
	}
	if strings.Contains(strings.Join(broken.did, ","), "start") {
		t.Fatal("a SQL thread stopped on an error was restarted")
	}
	var why string
	for _, r := range plan.Replicas {
		if r.Node.Name == "node3" {
			why = r.Why
		}
	}
	if !strings.Contains(why, "Duplicate entry") {
		t.Fatalf("node3's exclusion does not name its error: %q", why)
	}
	if len(plan.Lost) != 1 || plan.Lost[0].Name != "node4" || len(plan.Others) != 1 || plan.Others[0].Name != "node3" {
		t.Fatalf("lost %v others %v", plan.Lost, plan.Others)
	}
}
