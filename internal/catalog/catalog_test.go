package catalog

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/baton-db/baton/internal/config"
	"github.com/baton-db/baton/internal/topology"
)

type fakeStore struct {
	entries  map[string]topology.CatalogEntry
	clusters []string
	err      error
}

func (f *fakeStore) ListCatalog(context.Context, uint64, time.Duration) (topology.Catalog, error) {
	return topology.Catalog{}, errors.New("unused")
}
func (f *fakeStore) CatalogEntry(_ context.Context, c string) (topology.CatalogEntry, bool, error) {
	e, ok := f.entries[c]
	return e, ok, f.err
}
func (f *fakeStore) Clusters(context.Context) ([]string, error) { return f.clusters, nil }
func (f *fakeStore) PutCatalogEntry(_ context.Context, c string, e topology.CatalogEntry, index uint64) error {
	if _, ok := f.entries[c]; ok && index == 0 {
		return topology.ErrChanged
	}
	f.entries[c] = e
	return nil
}

func settings(lag string) map[string]any {
	return map[string]any{"max_lag": lag, "haproxies": []any{map[string]any{"name": "a", "zone": "a", "writer": "127.0.2.1:3306"}}}
}

func newCatalog(file *config.Config) *Catalog {
	return &Catalog{file: file, log: slog.New(slog.NewTextHandler(io.Discard, nil)), ready: make(chan struct{}),
		clusters: map[string]Cluster{}, good: map[string]Cluster{}}
}

// A malformed entry never takes a cluster's settings away: the last good ones stay in use,
// with the problem named; a change of settings wakes the subscribers.
func TestLoadKeepsTheLastGoodSettings(t *testing.T) {
	hooks := []config.Hook{{Name: "gate"}}
	c := newCatalog(&config.Config{Clusters: map[string]config.ClusterConfig{"demo": {Hooks: hooks}}})
	sub := c.Subscribe()
	c.load(topology.Catalog{Entries: map[string]topology.CatalogEntry{"demo": {Settings: settings("2s"), Index: 7}}, Problems: map[string]error{}, Index: 7})
	got, err := c.Cluster(context.Background(), "demo")
	if err != nil || got.Config.MaxLag != 2*time.Second || got.Version != 7 || len(got.Config.Hooks) != 1 {
		t.Fatalf("%+v %v (hooks come from the file)", got, err)
	}
	select {
	case <-sub:
	default:
		t.Fatal("no notification for a new cluster")
	}
	c.load(topology.Catalog{Entries: map[string]topology.CatalogEntry{"demo": {Settings: settings("soon"), Index: 8}}, Problems: map[string]error{}, Index: 8})
	got, _ = c.Cluster(context.Background(), "demo")
	if got.Config.MaxLag != 2*time.Second || got.Problem == nil || !strings.Contains(got.Problem.Error(), "max_lag") {
		t.Fatalf("a malformed entry replaced the good settings: %+v", got)
	}
	if n := c.Names(); len(n) != 1 || n[0] != "demo" {
		t.Fatalf("names %v", n)
	}
	c.load(topology.Catalog{Entries: map[string]topology.CatalogEntry{}, Problems: map[string]error{}, Index: 9})
	if n := c.Names(); len(n) != 0 {
		t.Fatalf("a removed cluster is still listed: %v", n)
	}
}

// A cluster the watch has not seen yet is read from Consul; one that is nowhere is refused
// with the fix.
func TestClusterReadsThrough(t *testing.T) {
	s := &fakeStore{entries: map[string]topology.CatalogEntry{"new": {Settings: settings("3s"), Index: 3}}}
	c := newCatalog(&config.Config{})
	c.store = s
	if got, err := c.Cluster(context.Background(), "new"); err != nil || got.Config.MaxLag != 3*time.Second {
		t.Fatalf("%+v %v", got, err)
	}
	if _, err := c.Cluster(context.Background(), "nowhere"); !errors.Is(err, ErrUnknown) || !strings.Contains(err.Error(), "cluster add") {
		t.Fatalf("%v", err)
	}
}

// Bootstrap enters the file's clusters that Consul has a topology of, once, and never
// changes an entry that exists.
func TestBootstrap(t *testing.T) {
	file := &config.Config{Clusters: map[string]config.ClusterConfig{
		"demo": {HAProxies: []config.HAProxy{{Name: "a", Writer: "127.0.2.1:3316"}}}, "gone": {}, "kept": {}}}
	s := &fakeStore{clusters: []string{"demo", "kept", "other"}, entries: map[string]topology.CatalogEntry{"kept": {Settings: settings("1s")}}}
	got, err := Bootstrap(context.Background(), s, file, "worker")
	if err != nil || len(got) != 1 || got[0] != "demo" {
		t.Fatalf("entered %v %v", got, err)
	}
	h := s.entries["demo"].Settings["haproxies"].([]any)[0].(map[string]any)
	if h["reader"] != "127.0.2.1:3317" || s.entries["kept"].Settings["max_lag"] != "1s" {
		t.Fatalf("entries %+v", s.entries)
	}
}

func TestPorts(t *testing.T) {
	if p := FreePort(nil); p != 3306 {
		t.Errorf("first port %d", p)
	}
	if p := FreePort([]int{3306, 3307, 3316, 3317}); p != 3326 {
		t.Errorf("after two clusters: %d", p)
	}
	if p := FreePort([]int{3306, 3307, 3317, 3336}); p != 3326 {
		t.Errorf("a reader port in use is skipped too: %d", p)
	}
	got := HAProxies([]topology.HAProxyHost{{ID: "haproxy-b", Zone: "b", Writer: "127.0.2.2:3306"}, {ID: "haproxy-a", Zone: "a", Writer: "127.0.2.1:3306"}, {ID: "haproxy-x", Writer: "bad"}}, 3326)
	if len(got) != 2 || got[0] != (config.HAProxy{Name: "a", Zone: "a", Writer: "127.0.2.1:3326", Reader: "127.0.2.1:3327"}) || got[1].Name != "b" {
		t.Errorf("%+v", got)
	}
}
