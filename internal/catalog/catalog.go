// Package catalog is the fleet's live list of clusters and their settings, read from
// Consul's catalog (topology.CatalogEntry) by every worker and detector: `baton cluster add`
// makes a cluster watched, served and routed within seconds, `cluster set` changes its
// settings, `cluster remove` stops all of it, with no file edit and no restart. The config
// file gives the bootstrap: a cluster it names that has a topology in Consul but no catalog
// entry is entered from the file (Bootstrap), and its hooks always come from the file.
package catalog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/baton-db/baton/internal/config"
	"github.com/baton-db/baton/internal/topology"
)

// Store is what the catalog needs of Consul.
type Store interface {
	ListCatalog(ctx context.Context, index uint64, wait time.Duration) (topology.Catalog, error)
	CatalogEntry(ctx context.Context, cluster string) (topology.CatalogEntry, bool, error)
}

// Cluster is one cluster's settings as the fleet runs them.
type Cluster struct {
	Config config.ClusterConfig
	// Version is the catalog entry's ModifyIndex (0: from the config file): a watcher
	// restarts when it changes.
	Version uint64
	// Problem is why the entry now in Consul is not the one in use (a malformed entry: the
	// last good settings, or the file's, stay in use).
	Problem error
}

// Catalog follows Consul's catalog. Its zero value is not usable: use Watch.
type Catalog struct {
	store Store
	file  *config.Config
	log   *slog.Logger
	ready chan struct{}

	mu       sync.RWMutex
	names    []string
	clusters map[string]Cluster
	good     map[string]Cluster // the last entry of each cluster that decoded
	subs     []chan struct{}
}

// Watch follows the catalog until ctx ends. file is the process's config (hooks, bootstrap).
func Watch(ctx context.Context, s Store, file *config.Config, log *slog.Logger) *Catalog {
	c := &Catalog{store: s, file: file, log: log, ready: make(chan struct{}), clusters: map[string]Cluster{}, good: map[string]Cluster{}}
	go c.run(ctx)
	return c
}

const wait = 10 * time.Second

func (c *Catalog) run(ctx context.Context) {
	var index uint64
	for ctx.Err() == nil {
		l, err := c.store.ListCatalog(ctx, index, wait)
		if err != nil {
			if ctx.Err() == nil {
				c.log.Warn("cannot read the cluster catalog from Consul; keeping the last list", "error", err)
				index = 0
				sleep(ctx, time.Second)
			}
			continue
		}
		if l.Index < index { // Consul's index went backwards (a restored or new server)
			index = 0
			continue
		}
		if l.Index == index && index != 0 {
			continue
		}
		index = l.Index
		c.load(l)
	}
}

// load replaces the list with a listing's, keeping the last good settings of an entry that
// no longer decodes.
func (c *Catalog) load(l topology.Catalog) {
	clusters := map[string]Cluster{}
	c.mu.Lock()
	for name, e := range l.Entries {
		cl, err := c.decode(name, e)
		if err != nil {
			l.Problems[name] = err
			continue
		}
		clusters[name] = cl
		c.good[name] = cl
	}
	for name, err := range l.Problems {
		last, ok := c.good[name]
		if !ok {
			last = c.fromFile(name)
		}
		last.Problem = err
		clusters[name] = last
		c.log.Error("malformed catalog entry: the last good settings stay in use", "cluster", name, "error", err)
	}
	for name := range c.good {
		if _, ok := clusters[name]; !ok {
			delete(c.good, name)
		}
	}
	names := make([]string, 0, len(clusters))
	for n := range clusters {
		names = append(names, n)
	}
	slices.Sort(names)
	changed := !slices.Equal(names, c.names) || len(clusters) != len(c.clusters)
	for name, cl := range clusters {
		changed = changed || c.clusters[name].Version != cl.Version
	}
	c.names, c.clusters = names, clusters
	subs := c.subs
	c.mu.Unlock()
	select {
	case <-c.ready:
	default:
		close(c.ready)
	}
	if changed {
		for _, s := range subs {
			select {
			case s <- struct{}{}:
			default:
			}
		}
	}
}

func (c *Catalog) decode(name string, e topology.CatalogEntry) (Cluster, error) {
	cc, err := config.DecodeSettings(name, e.Settings)
	if err != nil {
		return Cluster{}, fmt.Errorf("catalog entry of %s: %w; fix it with `baton cluster set --name %s KEY=VALUE`", name, err, name)
	}
	cc.Hooks = c.file.Clusters[name].Hooks
	return Cluster{Config: cc, Version: e.Index}, nil
}

// fromFile is the config file's settings of a cluster (zero when it has none).
func (c *Catalog) fromFile(name string) Cluster {
	return Cluster{Config: c.file.Clusters[name]}
}

// Ready waits for the first listing.
func (c *Catalog) Ready(ctx context.Context) error {
	select {
	case <-c.ready:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Names is the fleet's clusters, sorted.
func (c *Catalog) Names() []string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return slices.Clone(c.names)
}

// Subscribe returns a channel that receives when the list or a cluster's settings change.
func (c *Catalog) Subscribe() <-chan struct{} {
	ch := make(chan struct{}, 1)
	c.mu.Lock()
	c.subs = append(c.subs, ch)
	c.mu.Unlock()
	return ch
}

// ErrUnknown means the cluster is neither in the catalog nor in the config file.
var ErrUnknown = errors.New("unknown cluster")

// Cluster returns a cluster's settings: its catalog entry's (read from Consul when the
// watch has not seen it yet, so a cluster just added is served at once), else the config
// file's.
func (c *Catalog) Cluster(ctx context.Context, name string) (Cluster, error) {
	c.mu.RLock()
	cl, ok := c.clusters[name]
	c.mu.RUnlock()
	if ok {
		return cl, nil
	}
	e, ok, err := c.store.CatalogEntry(ctx, name)
	switch {
	case err != nil && c.inFile(name):
		return c.fromFile(name), nil // the file's settings while Consul does not answer
	case err != nil:
		return Cluster{}, err
	case ok:
		return c.decode(name, e)
	case c.inFile(name):
		return c.fromFile(name), nil
	}
	return Cluster{}, fmt.Errorf("%w %q: it is not in the catalog (`baton cluster list`); add it with `baton cluster add`", ErrUnknown, name)
}

func (c *Catalog) inFile(name string) bool {
	_, ok := c.file.Clusters[name]
	return ok
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
