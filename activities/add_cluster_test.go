package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/baton-db/baton/internal/config"
	"github.com/baton-db/baton/internal/flavor"
	"github.com/baton-db/baton/internal/mysqladmin"
	"github.com/baton-db/baton/internal/topology"
)

// catStore is a ClusterStore in memory: topologies, catalog entries (with a CAS index) and
// the remote HAProxy hosts; what the cluster verbs do not call panics (the nil Topology).
type catStore struct {
	Topology
	topos   map[string]topology.Topology
	entries map[string]topology.CatalogEntry
	bad     map[string]error // malformed catalog entries
	hosts   []topology.HAProxyHost
	index   uint64
	seeds   int
	removed []string
	putErr  error
}

func newCatStore() *catStore {
	return &catStore{topos: map[string]topology.Topology{}, entries: map[string]topology.CatalogEntry{}, bad: map[string]error{},
		hosts: []topology.HAProxyHost{{ID: "haproxy-b", Zone: "b", Writer: "127.0.2.2:3306"}, {ID: "haproxy-a", Zone: "a", Writer: "127.0.2.1:3306"}}}
}

func (s *catStore) Read(_ context.Context, c string) (topology.Topology, error) {
	t, ok := s.topos[c]
	if !ok {
		return t, fmt.Errorf("%w %q", topology.ErrUnknownCluster, c)
	}
	return t, nil
}
func (s *catStore) HAProxies(context.Context) ([]topology.HAProxyHost, error) { return s.hosts, nil }
func (s *catStore) Clusters(context.Context) ([]string, error) {
	var out []string
	for c := range s.topos {
		out = append(out, c)
	}
	slices.Sort(out)
	return out, nil
}
func (s *catStore) ListCatalog(context.Context, uint64, time.Duration) (topology.Catalog, error) {
	c := topology.Catalog{Entries: map[string]topology.CatalogEntry{}, Problems: map[string]error{}}
	for n, e := range s.entries {
		c.Entries[n] = e
	}
	for n, err := range s.bad {
		c.Problems[n] = err
	}
	return c, nil
}
func (s *catStore) CatalogEntry(_ context.Context, c string) (topology.CatalogEntry, bool, error) {
	e, ok := s.entries[c]
	return e, ok, nil
}
func (s *catStore) PutCatalogEntry(_ context.Context, c string, e topology.CatalogEntry, index uint64) error {
	if s.putErr != nil {
		return s.putErr
	}
	if old, ok := s.entries[c]; (ok && old.Index != index) || (!ok && index != 0) {
		return topology.ErrChanged
	}
	// As Consul stores it: JSON.
	b, _ := json.Marshal(e)
	var stored topology.CatalogEntry
	_ = json.Unmarshal(b, &stored)
	s.index++
	stored.Index = s.index
	s.entries[c] = stored
	return nil
}
func (s *catStore) Seed(_ context.Context, c string, p topology.Node, rs []topology.Node) error {
	if _, ok := s.topos[c]; ok {
		return fmt.Errorf("%w: %s has a primary or an epoch", topology.ErrExists, c)
	}
	s.seeds++
	s.topos[c] = topology.Topology{Cluster: c, Epoch: 1, Primary: p, Replicas: rs}
	return nil
}
func (s *catStore) Remove(_ context.Context, c string) error {
	delete(s.entries, c)
	delete(s.topos, c)
	s.removed = append(s.removed, c)
	return nil
}

// onboardFake is a server as onboarding sees it (onboard.Admin) on top of the steps' fake.
type onboardFake struct {
	*fakeServer
	id       uint32
	replicas []mysqladmin.ReplicaHost
	users    []string
	// pointedAt is the replication source PointAt was given.
	pointedAt flavor.Source
}

func (f *onboardFake) OnboardingSettings(context.Context) (mysqladmin.Onboarding, error) {
	return mysqladmin.Onboarding{ServerID: f.id, GTIDEnforced: true, LogReplicaUpdates: true}, f.record("onboarding")
}
func (f *onboardFake) ReplicaHosts(context.Context) ([]mysqladmin.ReplicaHost, error) {
	return f.replicas, f.record("replica hosts")
}
func (f *onboardFake) SemiSync(context.Context) (mysqladmin.SemiSync, error) {
	return mysqladmin.SemiSync{}, f.record("semisync?")
}
func (f *onboardFake) UserExists(_ context.Context, u string) (bool, error) {
	return slices.Contains(f.users, u), f.record("user?")
}
func (f *onboardFake) CreateHeartbeatSchema(context.Context) error { return f.record("schema") }
func (f *onboardFake) SetReadOnly(_ context.Context, on bool) error {
	f.writable = !on
	return f.record(fmt.Sprintf("read_only=%v", on))
}

// PointAt makes the server replicate from src, as the real one does.
func (f *onboardFake) PointAt(ctx context.Context, src flavor.Source, wasPrimary, acks bool) error {
	f.pointedAt = src
	f.status = &mysqladmin.ReplicaStatus{SourceHost: src.Host, SourcePort: src.Port, IORunning: "Yes", SQLRunning: true}
	return f.fakeServer.PointAt(ctx, src, wasPrimary, acks)
}

const (
	addrP = "127.0.1.6:3306"
	addrR = "127.0.1.7:3306"
)

// newServers is a primary (new: read-only, --init opens it) and a server to attach.
func newServers() (p, r *onboardFake) {
	users := []string{"repl", "heartbeat"}
	p = &onboardFake{fakeServer: &fakeServer{}, id: 106, users: users, replicas: []mysqladmin.ReplicaHost{{ServerID: 107, Host: "127.0.1.7", Port: 3306}}}
	r = &onboardFake{fakeServer: &fakeServer{writable: true}, id: 107, users: users}
	return p, r
}

// addActivities are the worker's activities over s and the servers, with its accounts;
// dialled records the account each connection used.
func addActivities(s *catStore, servers map[string]*onboardFake, dialled *[]string) *Activities {
	cfg := &config.Config{Secrets: config.Secrets{AdminUser: "admin", AdminPassword: "adm1n-pw", ReplUser: "repl", ReplPassword: "r3pl-pw",
		HeartbeatUser: "heartbeat", HeartbeatPassword: "hb-pw", ConsulToken: "t0ken"}}
	a := New(cfg, s)
	a.Dial = func(addr string, _ flavor.Flavor, o mysqladmin.Options) (Server, error) {
		if dialled != nil {
			*dialled = append(*dialled, o.User)
		}
		f, ok := servers[addr]
		if !ok {
			return nil, errors.New("connection refused")
		}
		return f, nil
	}
	return a
}

func addInput() AddClusterInput {
	return AddClusterInput{Cluster: "demo3", Primary: addrP, By: "alice",
		Names: map[string]string{"127.0.1.6": "node6", "127.0.1.7": "node7"}, Zones: map[string]string{"127.0.1.6": "a", "127.0.1.7": "b"},
		Init: true, Attach: []string{addrR}, Set: []string{"durability=cross_zone", "anti_flap=0s"}}
}

// withEntries gives the store demo's and demo2's entries, on the first two port pairs.
func withEntries(s *catStore) {
	for name, port := range map[string]int{"demo": 3306, "demo2": 3316} {
		s.entries[name] = topology.CatalogEntry{Settings: map[string]any{"haproxies": []any{
			map[string]any{"name": "a", "zone": "a", "writer": fmt.Sprintf("127.0.2.1:%d", port), "reader": fmt.Sprintf("127.0.2.1:%d", port+1)}}}}
	}
}

// The defaults take the next free port pair on every remote HAProxy in Consul; the worker's
// file section, when it has one, is the base instead; --flavor and --set apply on top.
func TestNewClusterSettings(t *testing.T) {
	s := newCatStore()
	withEntries(s)
	a := addActivities(s, nil, nil)
	ctx := context.Background()
	in := addInput()
	ns, err := a.NewClusterSettings(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	want := []config.HAProxy{{Name: "a", Zone: "a", Writer: "127.0.2.1:3326", Reader: "127.0.2.1:3327"}, {Name: "b", Zone: "b", Writer: "127.0.2.2:3326", Reader: "127.0.2.2:3327"}}
	if ns.FromFile || ns.Flavor != "mariadb" || !slices.Equal(ns.HAProxies, want) || ns.Settings["durability"] != "cross_zone" || ns.Settings["anti_flap"] != "0s" {
		t.Fatalf("defaults: %+v", ns)
	}
	// The later steps get the settings through Temporal's JSON: they read the same.
	b, _ := json.Marshal(ns)
	var wire NewSettings
	if err := json.Unmarshal(b, &wire); err != nil {
		t.Fatal(err)
	}
	if cc, _, err := decodeNew("demo3", wire.Settings); err != nil || !slices.Equal(cc.HAProxies, want) || cc.Durability != config.DurabilityCrossZone {
		t.Errorf("the settings after JSON: %+v, %v", cc, err)
	}
	in.Flavor = "mysql"
	if ns, err := a.NewClusterSettings(ctx, in); err != nil || ns.Flavor != "mysql" || ns.Settings["flavor"] != "mysql" {
		t.Errorf("--flavor mysql: %+v, %v", ns, err)
	}

	file, err := config.DecodeSettings("demo3", map[string]any{"flavor": "mysql", "max_lag": "2s",
		"haproxies": []any{map[string]any{"name": "x", "zone": "a", "writer": "10.0.0.1:4000"}}})
	if err != nil {
		t.Fatal(err)
	}
	a.Config.Clusters = map[string]config.ClusterConfig{"demo3": file}
	in = addInput()
	ns, err = a.NewClusterSettings(ctx, in)
	if err != nil || !ns.FromFile || ns.Flavor != "mysql" || ns.Settings["max_lag"] != "2s" || len(ns.HAProxies) != 1 || ns.HAProxies[0].Reader != "10.0.0.1:4001" {
		t.Errorf("the file's section: %+v, %v", ns, err)
	}
}

// Bad input is refused before anything changes, every problem named (BadSettings: exit 2);
// a cluster Consul has is refused (never overwritten), except by a dry run.
func TestNewClusterSettingsRefusals(t *testing.T) {
	s := newCatStore()
	a := addActivities(s, nil, nil)
	ctx := context.Background()
	in := addInput()
	in.Primary = "node6"
	in.Attach = []string{"127.0.1.7"}
	in.Set = []string{"durability=paxos", "long_dmll=3s", "max_lag"}
	_, err := a.NewClusterSettings(ctx, in)
	if errType(err) != ErrBadSettings {
		t.Fatalf("bad input: %v (type %q), want %s", err, errType(err), ErrBadSettings)
	}
	for _, want := range []string{"nothing was changed", `--primary "node6" is not host:port`, `--attach "127.0.1.7" is not host:port`,
		"durability", `"long_dmll" is not a cluster setting`, `--set "max_lag" is not KEY=VALUE`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the refusal does not name %q:\n%v", want, err)
		}
	}
	if _, err := a.NewClusterSettings(ctx, AddClusterInput{Cluster: "Bad Name", Primary: addrP, By: "x"}); errType(err) != ErrBadSettings {
		t.Errorf("a bad name: %v", err)
	}

	s.topos["demo3"] = topology.Topology{Cluster: "demo3", Epoch: 4, Primary: tPrimary}
	in = addInput()
	_, err = a.NewClusterSettings(ctx, in)
	if errType(err) != ErrClusterExists || !strings.Contains(err.Error(), topology.ErrExists.Error()) {
		t.Errorf("an existing cluster: %v (type %q), want %s", err, errType(err), ErrClusterExists)
	}
	in.DryRun = true
	if _, err := a.NewClusterSettings(ctx, in); err != nil {
		t.Errorf("a dry run of an existing cluster: %v", err)
	}
	if len(s.entries) != 0 || s.seeds != 0 {
		t.Errorf("the settings step wrote: %v, %d seeds", s.entries, s.seeds)
	}
}

// The whole add on the worker's side: the primary opened and the new server attached with
// the worker's accounts (acknowledging by the cross-zone policy), both discovered and
// checked, the topology seeded at epoch 1 and the entry in the catalog, by who added it. No
// result carries a secret.
func TestAddClusterStepsPrepareDiscoverSeed(t *testing.T) {
	s := newCatStore()
	withEntries(s)
	p, r := newServers()
	var dialled []string
	a := addActivities(s, map[string]*onboardFake{addrP: p, addrR: r}, &dialled)
	at := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	res, err := Local{a}.AddClusterSteps(context.Background(), addInput(), at)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"read_only=false", "schema", "semisync"} {
		if !slices.Contains(p.did, want) {
			t.Errorf("the primary was not opened (%s): %v", want, p.did)
		}
	}
	if !slices.Contains(r.did, "read_only=true") || r.pointedAt.Host != "127.0.1.6" || r.pointedAt.User != "repl" || !slices.Equal(r.pointAcks, []bool{true}) {
		t.Errorf("the attached server: did %v, source %+v, acks %v", r.did, r.pointedAt, r.pointAcks)
	}
	for _, u := range dialled {
		if u != "admin" {
			t.Errorf("a connection as %q, not the worker's admin account", u)
		}
	}
	if res.Prepared == nil || res.Prepared.String() != "prepared: primary 127.0.1.6:3306 opened, 1 server(s) attached" {
		t.Errorf("prepared: %+v", res.Prepared)
	}
	if res.Primary.Name != "node6" || res.Primary.ServerID != 106 || len(res.Replicas) != 1 || res.Replicas[0].Name != "node7" || res.Replicas[0].Zone != "b" {
		t.Errorf("discovered %+v %+v", res.Primary, res.Replicas)
	}
	if res.Seed == nil || !res.Seed.Entered || s.topos["demo3"].Epoch != 1 || s.topos["demo3"].Primary.Name != "node6" {
		t.Fatalf("seed %+v, topology %+v", res.Seed, s.topos["demo3"])
	}
	e := s.entries["demo3"]
	if e.By != "alice" || e.Change != "add" || !e.At.Equal(at) || e.Settings["durability"] != "cross_zone" || len(res.HAProxies) != 2 || res.HAProxies[0].Writer != "127.0.2.1:3326" {
		t.Errorf("catalog entry %+v, frontends %+v", e, res.HAProxies)
	}
	b, _ := json.Marshal(struct {
		In  AddClusterInput
		Out AddClusterResult
	}{addInput(), res})
	for _, secret := range a.Config.Secrets.Values() {
		if strings.Contains(string(b), secret) {
			t.Errorf("the add's input or result holds a secret: %s", b)
		}
	}

	// Again: the cluster is there, refused before any server is touched.
	p2, r2 := newServers()
	a = addActivities(s, map[string]*onboardFake{addrP: p2, addrR: r2}, nil)
	if _, err := (Local{a}).AddClusterSteps(context.Background(), addInput(), at); errType(err) != ErrClusterExists || len(p2.did)+len(r2.did) != 0 {
		t.Errorf("a second add: %v; servers did %v %v", err, p2.did, r2.did)
	}
}

// A dry run reads the settings and discovers: nothing is prepared, nothing is written.
func TestAddClusterDryRun(t *testing.T) {
	s := newCatStore()
	p, r := newServers()
	p.writable, r.writable = true, false
	r.status = &mysqladmin.ReplicaStatus{SourceHost: "127.0.1.6", SourcePort: 3306, IORunning: "Yes", SQLRunning: true}
	a := addActivities(s, map[string]*onboardFake{addrP: p, addrR: r}, nil)
	in := addInput()
	in.DryRun = true
	res, err := Local{a}.AddClusterSteps(context.Background(), in, time.Now())
	if err != nil || res.Seed != nil || res.Prepared != nil || len(res.Replicas) != 1 {
		t.Fatalf("dry run: %+v, %v", res, err)
	}
	for _, f := range []*onboardFake{p, r} {
		for _, d := range f.did {
			if strings.HasPrefix(d, "read_only=") || d == "schema" || d == "point" {
				t.Errorf("a dry run changed a server: %v", f.did)
			}
		}
	}
	if len(s.topos) != 0 || len(s.entries) != 0 {
		t.Errorf("a dry run wrote to Consul: %v %v", s.topos, s.entries)
	}
}

// Servers that fail the checks refuse the add (CannotOnboard), every problem named, and
// nothing is written; after a prepare, the refusal says the servers were prepared.
func TestDiscoverClusterRefusesEveryProblemAtOnce(t *testing.T) {
	s := newCatStore()
	p, r := newServers() // the primary is read-only, the "replica" writable and not replicating
	p.users = []string{"repl"}
	a := addActivities(s, map[string]*onboardFake{addrP: p, addrR: r}, nil)
	in := addInput()
	ns, err := a.NewClusterSettings(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	_, err = a.DiscoverCluster(context.Background(), in.DiscoverInput(ns, nil))
	if errType(err) != ErrCannotOnboard {
		t.Fatalf("discovery: %v (type %q)", err, errType(err))
	}
	for _, want := range []string{"nothing was written", "primary 127.0.1.6:3306: read_only is ON", `account "heartbeat" does not exist`,
		"replica 127.0.1.7:3306: read_only is OFF", "replica 127.0.1.7:3306: not a replica"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the refusal lacks %q:\n%v", want, err)
		}
	}
	_, err = a.DiscoverCluster(context.Background(), in.DiscoverInput(ns, &PrepareResult{Primary: addrP, Opened: true, Attached: 1}))
	if !strings.Contains(err.Error(), "nothing was written to Consul (the servers were prepared: primary 127.0.1.6:3306 opened, 1 server(s) attached)") {
		t.Errorf("after a prepare: %v", err)
	}
	if len(s.topos) != 0 || len(s.entries) != 0 {
		t.Errorf("a refused add wrote: %v %v", s.topos, s.entries)
	}
}

// The seed is create-only: another cluster of that name is refused, this add's own earlier
// attempt is taken as done; an entry already in the catalog is kept; an entry that cannot be
// written leaves the seed in place and says so.
func TestSeedCluster(t *testing.T) {
	ctx := context.Background()
	at := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	in := SeedClusterInput{Cluster: "demo3", Primary: tPrimary, Replicas: []topology.Node{tCand}, Settings: map[string]any{"flavor": "mariadb"}, By: "alice", At: at}

	s := newCatStore()
	a := addActivities(s, nil, nil)
	if r, err := a.SeedCluster(ctx, in); err != nil || !r.Entered {
		t.Fatalf("seed: %+v, %v", r, err)
	}
	if r, err := a.SeedCluster(ctx, in); err != nil || !r.Entered || r.AlreadyInCatalog || s.seeds != 1 {
		t.Errorf("a retried attempt: %+v, %v (%d seeds)", r, err, s.seeds)
	}
	other := in
	other.Primary = tCand
	other.Replicas = []topology.Node{tPrimary}
	if _, err := a.SeedCluster(ctx, other); errType(err) != ErrClusterExists {
		t.Errorf("another seed of demo3: %v", err)
	}
	later := in
	later.At = at.Add(time.Minute)
	delete(s.topos, "demo3")
	if r, err := a.SeedCluster(ctx, later); err != nil || r.Entered || !r.AlreadyInCatalog || s.entries["demo3"].At != at {
		t.Errorf("an entry already there: %+v, %v; entry %+v", r, err, s.entries["demo3"])
	}

	s = newCatStore()
	s.putErr = errors.New("Consul: 403")
	a = addActivities(s, nil, nil)
	if r, err := a.SeedCluster(ctx, in); err != nil || r.Entered || !strings.Contains(r.EnterError, "403") || s.topos["demo3"].Epoch != 1 {
		t.Errorf("the entry refused: %+v, %v", r, err)
	}
}

// The list is every cluster with a topology or a catalog entry, sorted, each with its
// primary and replicas or its read error.
func TestListClusters(t *testing.T) {
	s := newCatStore()
	withEntries(s)
	demo, demo2 := opTopologies()
	s.topos["demo"], s.topos["demo2"], s.topos["zeta"] = demo, demo2, topology.Topology{Cluster: "zeta", Epoch: 1, Primary: tPrimary}
	s.bad["broken"] = errors.New("not a catalog entry")
	l, err := addActivities(s, nil, nil).ListClusters(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range l {
		names = append(names, e.Cluster)
	}
	if !slices.Equal(names, []string{"broken", "demo", "demo2", "zeta"}) {
		t.Fatalf("clusters %v", names)
	}
	if b := l[0]; !b.InCatalog || !strings.Contains(b.Error, "unknown cluster") {
		t.Errorf("broken: %+v", b)
	}
	if d := l[2]; d.Epoch != 9 || d.Primary != "node4" || d.PrimaryAt != "127.0.1.4:3306" || !slices.Equal(d.Replicas, []string{"node5", "node2"}) || !d.InCatalog {
		t.Errorf("demo2: %+v", d)
	}
	if z := l[3]; z.InCatalog || z.Error != "" || z.Replicas == nil {
		t.Errorf("zeta (a topology, no entry): %+v", z)
	}
	b, _ := json.Marshal(l[3])
	if string(b) != `{"cluster":"zeta","epoch":1,"primary":"node1","primary_addr":"127.0.1.1:3306","replicas":[],"in_catalog":false}` {
		t.Errorf("-o json: %s", b)
	}
}

// Remove deletes a known cluster (and says whether the worker's file still has it); an
// unknown one is refused.
func TestRemoveCluster(t *testing.T) {
	s := newCatStore()
	withEntries(s)
	demo, _ := opTopologies()
	s.topos["demo"] = demo
	a := addActivities(s, nil, nil)
	a.Config.Clusters = map[string]config.ClusterConfig{"demo": {}}
	if _, err := a.RemoveCluster(context.Background(), RemoveClusterInput{Cluster: "nope", By: "alice"}); errType(err) != ErrUnknownCluster || len(s.removed) != 0 {
		t.Errorf("remove of an unknown cluster: %v (removed %v)", err, s.removed)
	}
	r, err := a.RemoveCluster(context.Background(), RemoveClusterInput{Cluster: "demo", By: "alice"})
	if err != nil || !r.InFile || !slices.Equal(s.removed, []string{"demo"}) {
		t.Errorf("remove demo: %+v, %v (removed %v)", r, err, s.removed)
	}
	if _, ok := s.entries["demo"]; ok {
		t.Error("demo's entry is still there")
	}
}
