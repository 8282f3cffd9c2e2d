package activities

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/baton-db/baton/internal/config"
	"github.com/baton-db/baton/internal/flavor"
	"github.com/baton-db/baton/internal/mysqladmin"
	"github.com/baton-db/baton/internal/topology"
)

var (
	tMate = topology.Node{Name: "node3", IPv4: "127.0.1.3", Port: 3306, Zone: "a", ServerID: 103}
	tNew  = topology.Node{Name: "node6", IPv4: "127.0.1.6", Port: 3306, Zone: "a", ServerID: 106}
)

func demoTopo() topology.Topology {
	return topology.Topology{Cluster: "demo", Primary: tPrimary, Replicas: []topology.Node{tCand, tMate}, Epoch: 7, EpochIndex: 70,
		Evicted: []topology.Eviction{{Node: topology.Node{Name: "node4", IPv4: "127.0.1.4", Port: 3306, Zone: "b", ServerID: 104}, Reason: "primary died: killed"}}}
}

func TestNewNodeFromTheAddress(t *testing.T) {
	lookup := func(host string) ([]net.IP, error) {
		if host == "db6.example" {
			return []net.IP{net.ParseIP("::1"), net.ParseIP("10.0.0.6")}, nil
		}
		return nil, errors.New("no such host")
	}
	for _, c := range []struct {
		addr, ipv4, fqdn, err string
	}{
		{"127.0.1.6:3306", "127.0.1.6", "", ""},
		{"db6.example:3307", "10.0.0.6", "db6.example", ""},
		{"127.0.1.6", "", "", "not host:port"},
		{"[::1]:3306", "", "", "over IPv4"},
		{"127.0.1.6:x", "", "", "not a port"},
		{"nowhere.example:3306", "", "", "no IPv4 address"},
	} {
		n, err := newNode(AddNodeInput{Host: "node6", Addr: c.addr, Zone: "a"}, lookup)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: %v, want %q", c.addr, err, c.err)
			}
			continue
		}
		if err != nil || n.IPv4 != c.ipv4 || n.FQDN != c.fqdn || n.Name != "node6" || n.Zone != "a" {
			t.Errorf("%s: %+v %v", c.addr, n, err)
		}
	}
}

// The one decision whether a server may join: every reason at once, errant transactions
// alone typed ErrantGTIDs.
func TestNewNodeProblems(t *testing.T) {
	running := func(host string) *mysqladmin.ReplicaStatus {
		return &mysqladmin.ReplicaStatus{SourceHost: host, SourcePort: 3306, IORunning: "Yes", SQLRunning: true}
	}
	with := func(f func(*newNodeFacts)) newNodeFacts {
		facts := newNodeFacts{Topo: demoTopo(), Node: tNew}
		f(&facts)
		return facts
	}
	for _, c := range []struct {
		name  string
		facts newNodeFacts
		typ   string
		want  []string // each in one problem; none when it may join
	}{
		{"a fresh server", with(func(*newNodeFacts) {}), ErrNodeRefused, nil},
		{"a server that follows this primary already", with(func(f *newNodeFacts) { f.Status = running("127.0.1.1") }), ErrNodeRefused, nil},
		{"a reset replica (no source)", with(func(f *newNodeFacts) { f.Status = &mysqladmin.ReplicaStatus{} }), ErrNodeRefused, nil},
		{"a member's name", with(func(f *newNodeFacts) { f.Node.Name = "node3" }), ErrNodeRefused, []string{"node3 is already a replica of demo"}},
		{"the primary's address", with(func(f *newNodeFacts) { f.Node.IPv4 = "127.0.1.1" }), ErrNodeRefused, []string{"127.0.1.1:3306 is the address of node1, the primary of demo"}},
		{"a replica's server_id", with(func(f *newNodeFacts) { f.Node.ServerID = 102 }), ErrNodeRefused, []string{"server_id 102 is also node2's"}},
		{"an evicted node's name", with(func(f *newNodeFacts) { f.Node.Name = "node4" }), ErrNodeRefused, []string{"node4 is evicted from demo", "baton rejoin --cluster demo --host node4"}},
		{"an evicted node's server_id", with(func(f *newNodeFacts) { f.Node.ServerID = 104 }), ErrNodeRefused, []string{"server_id 104 is also node4's (evicted"}},
		{"server_id 0", with(func(f *newNodeFacts) { f.Node.ServerID = 0 }), ErrNodeRefused, []string{"server_id is 0"}},
		{"a bad zone", with(func(f *newNodeFacts) { f.Node.Zone = "A B" }), ErrNodeRefused, []string{`zone "A B"`}},
		{"onboarding's problems", with(func(f *newNodeFacts) {
			f.Settings = []error{errors.New("replica 127.0.1.6:3306: log_slave_updates/log_replica_updates is OFF")}
		}), ErrNodeRefused, []string{"log_slave_updates"}},
		{"replicates from elsewhere", with(func(f *newNodeFacts) { f.Status = running("127.0.1.4") }), ErrNodeRefused, []string{"replicates from 127.0.1.4:3306, not from the primary node1"}},
		{"a source of replicas", with(func(f *newNodeFacts) { f.Sources = 2 }), ErrNodeRefused, []string{"2 replica(s) replicate from it"}},
		{"errant transactions alone", with(func(f *newNodeFacts) { f.Errant = "0-106-3" }), ErrErrantGTIDs, []string{"lacks: 0-106-3"}},
		{"errant and more", with(func(f *newNodeFacts) { f.Errant = "0-106-3"; f.Sources = 1 }), ErrNodeRefused, []string{"replicate from it", "0-106-3"}},
	} {
		typ, problems := newNodeProblems(c.facts)
		all := strings.Join(problems, " | ")
		if len(c.want) == 0 {
			if len(problems) != 0 {
				t.Errorf("%s: refused: %s", c.name, all)
			}
			continue
		}
		if typ != c.typ {
			t.Errorf("%s: type %s, want %s (%s)", c.name, typ, c.typ, all)
		}
		for _, w := range c.want {
			if !strings.Contains(all, w) {
				t.Errorf("%s: %q lacks %q", c.name, all, w)
			}
		}
	}
}

// A replacement takes out a replica, never the primary; the last acker only when the new
// node acknowledges in its place, or forced.
func TestReplaceProblem(t *testing.T) {
	tp := demoTopo() // primary node1 in zone a; node2 (zone b) is the only acker under cross_zone
	acks := func(n topology.Node) bool { return n.Zone != tp.Primary.Zone }
	inB := tNew
	inB.Zone = "b"
	lone := tp
	lone.Replicas = []topology.Node{tCand}
	for _, c := range []struct {
		name  string
		tp    topology.Topology
		old   string
		n     topology.Node
		force bool
		typ   string // "" when it may go
	}{
		{"a zone mate (no acker)", tp, "node3", tNew, false, ""},
		{"by address", tp, "127.0.1.3:3306", tNew, false, ""},
		{"the primary", tp, "node1", tNew, false, ErrNodeIsPrimary},
		{"not a member", tp, "node9", tNew, false, ErrUnknownNode},
		{"itself", tp, "node3", topology.Node{Name: "node3", Zone: "a"}, false, ErrNodeRefused},
		{"the last acker for a node that may not acknowledge", tp, "node2", tNew, false, ErrLastAcker},
		{"the last acker for one that acknowledges in its place", tp, "node2", inB, false, ""},
		{"the last acker, forced", tp, "node2", tNew, true, ""},
		{"the only replica, for a node that acknowledges", lone, "node2", inB, false, ""},
	} {
		old, typ, why := replaceProblem(c.tp, c.old, c.n, acks, c.force)
		if typ != c.typ {
			t.Errorf("%s: type %q (%s), want %q", c.name, typ, why, c.typ)
		}
		if c.typ == "" && (why != "" || old.Name == "") {
			t.Errorf("%s: %q, old %+v", c.name, why, old)
		}
		if c.typ == ErrNodeIsPrimary && !strings.Contains(why, "switch over first") {
			t.Errorf("%s: %q does not say to switch over first", c.name, why)
		}
	}
}

// A replication error no wait fixes fails the catch-up at once, with the server's error
// and the fix; a connecting IO thread is waited for.
func TestAttachVerdict(t *testing.T) {
	st := func(f func(*mysqladmin.ReplicaStatus)) *mysqladmin.ReplicaStatus {
		s := &mysqladmin.ReplicaStatus{SourceHost: "127.0.1.1", SourcePort: 3306, IORunning: "Yes", SQLRunning: true}
		f(s)
		return s
	}
	for _, c := range []struct {
		name string
		st   *mysqladmin.ReplicaStatus
		want []string // none: keep waiting
	}{
		{"running", st(func(*mysqladmin.ReplicaStatus) {}), nil},
		{"connecting", st(func(s *mysqladmin.ReplicaStatus) {
			s.IORunning, s.IOError = "Connecting", "error connecting to master: 2003"
		}), nil},
		{"purged binlogs", st(func(s *mysqladmin.ReplicaStatus) {
			s.IORunning, s.IOError = "No", "Got fatal error 1236 from master when reading data from binary log: 'Could not find GTID state requested by slave in any binlog files'"
		}), []string{"1236", "purged", "restore a backup of the primary node1 onto node6 first"}},
		{"SQL error", st(func(s *mysqladmin.ReplicaStatus) {
			s.SQLRunning, s.SQLError = false, "Error 'Table 'app.writes' doesn't exist' on query"
		}), []string{"app.writes", "restore a backup"}},
		{"reset meanwhile", nil, []string{"does not replicate any more"}},
		{"re-pointed meanwhile", st(func(s *mysqladmin.ReplicaStatus) { s.SourceHost = "127.0.1.2" }), []string{"replicates from 127.0.1.2:3306 now"}},
		{"IO thread stopped", st(func(s *mysqladmin.ReplicaStatus) { s.IORunning = "No" }), []string{"IO thread stopped"}},
		{"SQL thread stopped", st(func(s *mysqladmin.ReplicaStatus) { s.SQLRunning = false }), []string{"SQL thread stopped"}},
	} {
		err := attachVerdict(tNew, tPrimary, c.st)
		if len(c.want) == 0 {
			if err != nil {
				t.Errorf("%s: %v", c.name, err)
			}
			continue
		}
		var app *temporal.ApplicationError
		if !errors.As(err, &app) || !app.NonRetryable() || app.Type() != ErrReplicationBroken {
			t.Errorf("%s: %v, want a non-retryable %s", c.name, err, ErrReplicationBroken)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(app.Message(), w) {
				t.Errorf("%s: %q lacks %q", c.name, app.Message(), w)
			}
		}
	}
}

// The catch-up's rounds: a round reached within catchup_timeout ends it; a later one starts
// another; no progress for catchup_timeout, or more than the whole bound, fails it.
func TestCatchUpRounds(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	type look struct {
		at       int
		executed string
		reached  bool
		want     catchUpStep
	}
	for _, c := range []struct {
		name  string
		looks []look
	}{
		{"current at once", []look{{1, "0-101-10", true, caughtUp}}},
		{"a backlog, then a short round", []look{
			{5, "0-101-100", false, keepWaiting}, {15, "0-101-900", false, keepWaiting}, {25, "0-101-1000", true, nextRound},
			{27, "0-101-1010", true, caughtUp}}},
		{"stalled", []look{{5, "0-101-100", false, keepWaiting}, {14, "0-101-100", false, keepWaiting}, {16, "0-101-100", false, stalled}}},
		{"progress but never there", []look{{20, "a", false, keepWaiting}, {40, "b", false, keepWaiting}, {61, "c", false, tooLong}}},
		{"the last round reached too late", []look{{30, "a", true, nextRound}, {50, "b", false, keepWaiting}, {61, "c", true, tooLong}}},
	} {
		cu := catchUp{limit: 10 * time.Second, max: time.Minute, start: t0, round: t0, progressAt: t0}
		for i, l := range c.looks {
			if got := cu.next(at(l.at), l.executed, l.reached); got != l.want {
				t.Errorf("%s: look %d (t+%ds): %v, want %v", c.name, i, l.at, got, l.want)
				break
			}
		}
	}
}

// fakeNew is a new server: a fakeServer that also answers onboarding's reads.
type fakeNew struct {
	*fakeServer
	o      mysqladmin.Onboarding
	users  []string
	hosts  []mysqladmin.ReplicaHost
	noSemi bool
	// afterPoint is its replication once a CHANGE MASTER ran (nil: not a replica).
	afterPoint *mysqladmin.ReplicaStatus
}

func (f *fakeNew) PointAt(ctx context.Context, src flavor.Source, fromBinlog, acks bool) error {
	if err := f.fakeServer.PointAt(ctx, src, fromBinlog, acks); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.status = f.afterPoint
	return nil
}

func (f *fakeNew) OnboardingSettings(context.Context) (mysqladmin.Onboarding, error) {
	return f.o, f.record("settings")
}
func (f *fakeNew) ReplicaHosts(context.Context) ([]mysqladmin.ReplicaHost, error) {
	return f.hosts, f.record("hosts")
}
func (f *fakeNew) SemiSync(context.Context) (mysqladmin.SemiSync, error) {
	if f.noSemi {
		return mysqladmin.SemiSync{}, errors.New("Unknown system variable 'rpl_semi_sync_slave_enabled'")
	}
	return mysqladmin.SemiSync{}, f.record("semisync?")
}
func (f *fakeNew) UserExists(_ context.Context, u string) (bool, error) {
	return slices.Contains(f.users, u), f.record("user?")
}

// writes is what a fake did, but its reads.
func writes(f *fakeServer) []string {
	return slices.DeleteFunc(slices.Clone(f.did), func(s string) bool {
		return slices.Contains([]string{"ping", "status", "executed", "ro?", "settings", "hosts", "semisync?", "user?", "wait"}, s)
	})
}

// addFixture is a cluster demo (primary node1 zone a, node2 zone b, node3 zone a) under
// cross_zone, and a new server node6 (zone a) that passes every check.
func addFixture() (*Activities, *fakeTopo, *fakeServer, *fakeNew) {
	primary := &fakeServer{executed: "0-101-20,0-102-5", writable: true}
	node := &fakeNew{fakeServer: &fakeServer{executed: "0-101-10"}, o: mysqladmin.Onboarding{ServerID: 106, GTIDEnforced: true, LogReplicaUpdates: true},
		users: []string{"repl", "hb"}}
	servers := map[string]*fakeServer{tPrimary.Addr(): primary, tCand.Addr(): {}, tMate.Addr(): {}}
	a := fakeActivities(servers)
	cc := a.Config.Clusters["demo"]
	cc.Durability = config.DurabilityCrossZone
	a.Config.Clusters["demo"] = cc
	a.Config.Secrets.ReplUser, a.Config.Secrets.HeartbeatUser = "repl", "hb"
	a.Dial = func(addr string, _ flavor.Flavor, _ mysqladmin.Options) (Server, error) {
		if addr == tNew.Addr() {
			return node, nil
		}
		return servers[addr], nil
	}
	topo := &fakeTopo{t: demoTopo()}
	a.Topo = topo
	return a, topo, primary, node
}

func TestCheckNewNode(t *testing.T) {
	in := AddNodeInput{Cluster: "demo", Host: "node6", Addr: "127.0.1.6:3306", Zone: "a", By: "alice"}
	t.Run("a writable server that passes is made read-only, after every check", func(t *testing.T) {
		a, _, _, node := addFixture()
		node.writable = true
		plan, err := a.CheckNewNode(context.Background(), in)
		if err != nil {
			t.Fatal(err)
		}
		if plan.Node != tNew || plan.Primary != tPrimary || plan.EpochIndex != 70 || plan.Acks || !plan.MadeReadOnly ||
			plan.CatchUpTimeout != time.Second || plan.MaxCatchUp != DefaultMaxCatchUp {
			t.Fatalf("plan %+v", plan)
		}
		if w := writes(node.fakeServer); !slices.Equal(w, []string{"read_only"}) {
			t.Fatalf("the check wrote %v; want read_only alone", w)
		}
		if last := node.did[len(node.did)-1]; last != "executed" {
			t.Fatalf("its GTIDs were not read again after it was made read-only: %v", node.did)
		}
	})
	t.Run("in zone b it acknowledges under cross_zone", func(t *testing.T) {
		a, _, _, _ := addFixture()
		b := in
		b.Zone = "b"
		plan, err := a.CheckNewNode(context.Background(), b)
		if err != nil || !plan.Acks || plan.MadeReadOnly {
			t.Fatalf("%+v %v", plan, err)
		}
	})
	for _, c := range []struct {
		name  string
		in    func(AddNodeInput) AddNodeInput
		setup func(*fakeNew)
		typ   string
		want  string
	}{
		{"a member's name", func(in AddNodeInput) AddNodeInput { in.Host = "node3"; return in }, nil, ErrNodeRefused, "already a member of demo"},
		{"errant transactions", nil, func(n *fakeNew) { n.executed = "0-101-10,0-106-2" }, ErrErrantGTIDs, "0-106-2"},
		{"a missing account and no semi-sync", nil, func(n *fakeNew) { n.users = []string{"repl"}; n.noSemi = true }, ErrNodeRefused, `account "hb" does not exist`},
		{"another cluster's replica", nil, func(n *fakeNew) {
			n.status = &mysqladmin.ReplicaStatus{SourceHost: "127.0.1.4", SourcePort: 3306, IORunning: "Yes", SQLRunning: true}
		}, ErrNodeRefused, "replicates from 127.0.1.4:3306"},
		{"a taken server_id", nil, func(n *fakeNew) { n.o.ServerID = 103 }, ErrNodeRefused, "server_id 103 is also node3's"},
		{"a server that does not answer", nil, func(n *fakeNew) { n.down = true }, ErrNodeRefused, "does not answer with Baton's admin account"},
		{"a replacement of the primary", func(in AddNodeInput) AddNodeInput { in.Replace = "node1"; return in }, nil, ErrNodeIsPrimary, "switch over first"},
		{"a replacement of the last acker by a node that may not acknowledge", func(in AddNodeInput) AddNodeInput { in.Replace = "node2"; return in }, nil, ErrLastAcker, "--force"},
	} {
		t.Run("refused: "+c.name, func(t *testing.T) {
			a, topo, primary, node := addFixture()
			node.writable = true // a refusal leaves even that as it is
			if c.setup != nil {
				c.setup(node)
			}
			req := in
			if c.in != nil {
				req = c.in(in)
			}
			_, err := a.CheckNewNode(context.Background(), req)
			var app *temporal.ApplicationError
			if !errors.As(err, &app) || app.Type() != c.typ || !app.NonRetryable() || !strings.Contains(app.Message(), c.want) {
				t.Fatalf("%v; want a non-retryable %s saying %q", err, c.typ, c.want)
			}
			if w := append(writes(node.fakeServer), writes(primary)...); len(w) != 0 || len(topo.readmits) != 0 {
				t.Fatalf("a refusal changed something: %v, readmitted %v", w, topo.readmits)
			}
		})
	}
	t.Run("a replacement of the last acker by one that acknowledges in its place", func(t *testing.T) {
		a, _, _, _ := addFixture()
		b := in
		b.Zone, b.Replace = "b", "node2"
		plan, err := a.CheckNewNode(context.Background(), b)
		if err != nil || plan.Replace == nil || plan.Replace.Name != "node2" || !plan.Acks {
			t.Fatalf("%+v %v", plan, err)
		}
	})
}

func TestAttachNodeIsSilentAndRestoreIsTheFix(t *testing.T) {
	a, _, _, node := addFixture()
	inB := tNew // in zone b, the durability policy would have it acknowledge
	inB.Zone = "b"
	plan := NewNodePlan{Cluster: "demo", Node: inB, Primary: tPrimary, Epoch: 7, EpochIndex: 70, Acks: true}
	node.afterPoint = &mysqladmin.ReplicaStatus{SourceHost: tPrimary.IPv4, SourcePort: 3306, IORunning: "Yes", SQLRunning: true}
	if _, err := a.AttachNode(context.Background(), plan); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(node.did, "point") || slices.Contains(node.pointAcks, true) {
		t.Fatalf("attach: %v, acks %v; want a CHANGE MASTER that acknowledges nothing", node.did, node.pointAcks)
	}
	// Consul moved since the check: nothing is done.
	a, topo, _, node := addFixture()
	topo.t.EpochIndex = 71
	if _, err := a.AttachNode(context.Background(), plan); err == nil || !strings.Contains(err.Error(), ErrEpochChanged) || len(node.did) != 0 {
		t.Fatalf("attach after a change of epoch: %v, did %v", err, node.did)
	}
	// The primary's binlogs no longer hold what it lacks.
	a, _, _, node = addFixture()
	node.afterPoint = &mysqladmin.ReplicaStatus{SourceHost: tPrimary.IPv4, SourcePort: 3306, IORunning: "No",
		IOError: "Got fatal error 1236 from master when reading data from binary log"}
	_, err := a.AttachNode(context.Background(), plan)
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || app.Type() != ErrReplicationBroken || !strings.Contains(app.Message(), "1236") ||
		!strings.Contains(app.Message(), "restore a backup of the primary node1 onto node6 first") || strings.Contains(app.Message(), "rebuild node6") {
		t.Fatalf("attach to purged binlogs: %v", err)
	}
}

func TestWaitCaughtUp(t *testing.T) {
	plan := NewNodePlan{Cluster: "demo", Node: tNew, Primary: tPrimary, CatchUpTimeout: time.Second, MaxCatchUp: time.Minute}
	a, _, _, node := addFixture()
	node.status = &mysqladmin.ReplicaStatus{SourceHost: tPrimary.IPv4, SourcePort: 3306, IORunning: "Yes", SQLRunning: true}
	res, err := a.WaitCaughtUp(context.Background(), plan)
	if err != nil || res.Rounds != 1 || !slices.Contains(node.did, "wait") {
		t.Fatalf("%+v %v (did %v)", res, err, node.did)
	}
	node.status.SQLRunning, node.status.SQLError = false, "Could not execute Update_rows_v1 event on table baton.heartbeat; Can't find record"
	_, err = a.WaitCaughtUp(context.Background(), plan)
	if err == nil || !strings.Contains(err.Error(), "restore a backup") || !strings.Contains(err.Error(), "baton.heartbeat") {
		t.Fatalf("a SQL error: %v", err)
	}
	// A dead primary: the add gives way (a failover cannot start beside it).
	plan.CatchUpTimeout = 10 * time.Second
	a, _, primary, node := addFixture()
	node.status = &mysqladmin.ReplicaStatus{SourceHost: tPrimary.IPv4, SourcePort: 3306, IORunning: "Connecting", SQLRunning: true, IOError: "error reconnecting to master: 2003"}
	primary.executed = "0-101-20"
	calls := 0
	primary.onWait = nil
	node.onWait = func() {
		calls++
		if calls == 1 {
			primary.mu.Lock()
			primary.down = true
			primary.mu.Unlock()
		}
	}
	start := time.Now()
	_, err = a.WaitCaughtUp(context.Background(), plan)
	if err == nil || !strings.Contains(err.Error(), "stopped answering") || time.Since(start) > 10*time.Second {
		t.Fatalf("a primary that stops answering: %v after %s", err, time.Since(start))
	}
}

// conflictTopo refuses the registration's CAS: the epoch moved.
type conflictTopo struct{ *fakeTopo }

func (conflictTopo) Readmit(context.Context, string, uint64, topology.Node) error {
	return fmt.Errorf("readmit node6: %w", topology.ErrConflict)
}

func TestRegisterNode(t *testing.T) {
	plan := NewNodePlan{Cluster: "demo", Node: tNew, Primary: tPrimary, Epoch: 7, EpochIndex: 70}
	running := &mysqladmin.ReplicaStatus{SourceHost: tPrimary.IPv4, SourcePort: 3306, IORunning: "Yes", SQLRunning: true}
	a, topo, primary, node := addFixture()
	node.status = running
	if res, err := a.RegisterNode(context.Background(), plan); err != nil || res.Acks || !slices.Equal(topo.readmits, []string{"node6"}) {
		t.Fatalf("%+v %v, readmitted %v", res, err, topo.readmits)
	}
	if len(writes(node.fakeServer)) != 0 || len(writes(primary)) != 0 {
		t.Fatalf("a node that may not acknowledge: %v, primary %v", node.did, primary.did)
	}
	// An acker acknowledges once it is a member, and the primary waits for it.
	a, topo, primary, node = addFixture()
	node.status = running
	topo.onAdmit = func() { _ = node.record("registered") }
	acker := plan
	acker.Acks = true
	if res, err := a.RegisterNode(context.Background(), acker); err != nil || !res.Acks {
		t.Fatalf("%+v %v", res, err)
	}
	if i := slices.Index(node.did, "registered"); i < 0 || !slices.Contains(node.did[i:], "acks") || !slices.Contains(primary.did, "semisync") {
		t.Fatalf("node %v, primary %v; want acks after the registration and the primary's semi-sync on", node.did, primary.did)
	}
	// A retry that finds it registered goes on; the epoch's CAS failing is no retry's job.
	a, topo, _, node = addFixture()
	node.status = running
	topo.t.Replicas = append(topo.t.Replicas, tNew)
	if _, err := a.RegisterNode(context.Background(), plan); err != nil || len(topo.readmits) != 0 {
		t.Fatalf("a retry: %v, readmitted again %v", err, topo.readmits)
	}
	a, topo, _, node = addFixture()
	node.status = running
	a.Topo = conflictTopo{topo}
	_, err := a.RegisterNode(context.Background(), plan)
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || app.Type() != ErrEpochChanged || !app.NonRetryable() {
		t.Fatalf("a CAS conflict: %v", err)
	}
}

func TestUndoAttach(t *testing.T) {
	plan := NewNodePlan{Cluster: "demo", Node: tNew, Primary: tPrimary}
	a, _, _, node := addFixture()
	node.status = &mysqladmin.ReplicaStatus{SourceHost: tPrimary.IPv4, SourcePort: 3306, IORunning: "No", IOError: "1236"}
	res, err := a.UndoAttach(context.Background(), plan)
	if err != nil || !res.Detached || !slices.Equal(writes(node.fakeServer), []string{"read_only", "reset"}) {
		t.Fatalf("%+v %v, did %v", res, err, node.did)
	}
	// Registered after all: a member is never detached by an undo.
	a, topo, _, node := addFixture()
	topo.t.Replicas = append(topo.t.Replicas, tNew)
	res, err = a.UndoAttach(context.Background(), plan)
	if err != nil || res.Detached || !strings.Contains(res.Note, "node remove") || len(node.did) != 0 {
		t.Fatalf("%+v %v, did %v", res, err, node.did)
	}
}
