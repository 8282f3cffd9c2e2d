package topology

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/consul/api"
)

// Cache holds every cluster's topology, kept current by one blocking query on the whole
// prefix's keys and a listing when they change: a detector watching thousands of clusters
// asks Consul once per change instead of once per cluster per second. Decisions still read Consul directly (Store.Read).
type Cache struct {
	s     *Store
	ready chan struct{}

	mu    sync.RWMutex
	topos map[string]Topology
	errs  map[string]error // a cluster whose keys do not parse
	err   error            // the last query's error; nil after a success
	at    time.Time        // the last success
}

const (
	cacheWait  = 10 * time.Second // the blocking query's wait; Consul adds up to 1/16 of it
	cacheStale = 3 * time.Second  // after a failed query, Read reports the error after this long
)

// Watch starts a Cache that follows the store's prefix until ctx ends.
func (s *Store) Watch(ctx context.Context) *Cache {
	c := &Cache{s: s, ready: make(chan struct{})}
	go c.run(ctx)
	return c
}

func (c *Cache) run(ctx context.Context) {
	var index uint64
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		// Block on the cluster names alone (a small answer, even when the wait ends with no
		// change), and list every key only when the prefix changed.
		wait, limit := cacheWait, cacheWait+cacheWait/16+consulTimeout
		if index == 0 {
			// Not a blocking query: it answers at once, or Consul is not back. Waiting the
			// blocking query's limit for it kept the detector blind for up to 13 s after
			// Consul's quorum came back (a query sent during the outage hung on).
			wait, limit = 0, consulTimeout
		}
		qctx, cancel := context.WithTimeout(ctx, limit)
		q := (&api.QueryOptions{WaitIndex: index, WaitTime: wait}).WithContext(qctx)
		_, meta, err := c.s.c.KV().Keys(c.s.prefix+"/", "/", q)
		cancel()
		var pairs api.KVPairs
		if err == nil && (meta.LastIndex != index || index == 0) {
			lctx, cancel := context.WithTimeout(ctx, 4*consulTimeout)
			pairs, _, err = c.s.c.KV().List(c.s.prefix+"/", (&api.QueryOptions{}).WithContext(lctx))
			cancel()
		}
		if err != nil {
			c.mu.Lock()
			c.err = fmt.Errorf("watch %s/ in Consul: %w", c.s.prefix, c.s.explain(err))
			c.mu.Unlock()
			select {
			case <-ctx.Done():
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, time.Second)
			index = 0 // the next query answers at once: a Consul back from an outage is seen at once, not after a blocking wait
			continue
		}
		backoff = 100 * time.Millisecond
		if meta.LastIndex < index { // Consul's index went backwards (a restored or new server)
			index = 0
			continue
		}
		if meta.LastIndex == index && index != 0 {
			c.markFresh()
			continue
		}
		index = meta.LastIndex
		c.load(pairs)
	}
}

func (c *Cache) markFresh() {
	c.mu.Lock()
	c.err, c.at = nil, time.Now()
	c.mu.Unlock()
}

// load replaces the cached topologies with the listing's.
func (c *Cache) load(pairs api.KVPairs) {
	byCluster := map[string]api.KVPairs{}
	base := c.s.prefix + "/"
	for _, p := range pairs {
		name, _, ok := strings.Cut(strings.TrimPrefix(p.Key, base), "/")
		if ok {
			byCluster[name] = append(byCluster[name], p)
		}
	}
	topos, errs := make(map[string]Topology, len(byCluster)), map[string]error{}
	for name, ps := range byCluster {
		t, err := c.s.parse(name, ps)
		if err != nil {
			errs[name] = err
			continue
		}
		topos[name] = t
	}
	c.mu.Lock()
	c.topos, c.errs, c.err, c.at = topos, errs, nil, time.Now()
	c.mu.Unlock()
	select {
	case <-c.ready:
	default:
		close(c.ready)
	}
}

// Read returns the cluster's cached topology. It fails when the cluster is unknown, its
// keys do not parse, or Consul has not answered the watch for cacheStale.
func (c *Cache) Read(ctx context.Context, cluster string) (Topology, error) {
	select {
	case <-c.ready:
	case <-ctx.Done():
		return Topology{}, ctx.Err()
	case <-time.After(consulTimeout):
		c.mu.RLock()
		err := c.err
		c.mu.RUnlock()
		if err == nil {
			err = fmt.Errorf("no answer within %s", consulTimeout)
		}
		return Topology{}, fmt.Errorf("read topology of %s from Consul: %w", cluster, err)
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.err != nil && time.Since(c.at) > cacheStale {
		return c.topos[cluster], fmt.Errorf("read topology of %s: %w (last answer %s ago)", cluster, c.err, time.Since(c.at).Round(time.Second))
	}
	if err := c.errs[cluster]; err != nil {
		return Topology{}, err
	}
	if t, ok := c.topos[cluster]; ok {
		return t, nil
	}
	return c.s.parse(cluster, nil) // no keys: the store's own unknown-cluster error
}
