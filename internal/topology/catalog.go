package topology

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/consul/api"
)

// The catalog is the fleet's list of clusters and each one's settings: `<root>/catalog/<c>`
// (beside the clusters' prefix, so that a settings change never wakes the blocking queries
// on the topologies, and a topology change never wakes the catalog's). A cluster is in the
// fleet while its entry exists: every detector watches the same list, every worker serves
// it, every remote HAProxy routes it (consul-template ranges over the catalog).

// CatalogEntry is one cluster's entry: its settings (the keys of a cluster's section of the
// config file, values as there) and who changed them last, when and how.
type CatalogEntry struct {
	Settings map[string]any `json:"settings"`
	By       string         `json:"by"`
	At       time.Time      `json:"at"`
	Change   string         `json:"change,omitempty"`
	// Index is the entry's ModifyIndex: the CAS token of the next change.
	Index uint64 `json:"-"`
}

// ErrChanged means the catalog entry changed (or appeared) since it was read.
var ErrChanged = errors.New("the cluster's catalog entry changed since it was read; read it again")

// CatalogPrefix is where the catalog lives.
func (s *Store) CatalogPrefix() string { return path.Join(path.Dir(s.prefix), "catalog") }

func (s *Store) catalogKey(cluster string) string { return s.CatalogPrefix() + "/" + cluster }

func decodeEntry(p *api.KVPair) (CatalogEntry, error) {
	e := CatalogEntry{Index: p.ModifyIndex}
	if err := json.Unmarshal(p.Value, &e); err != nil {
		return e, fmt.Errorf("%s: not a catalog entry (%v); fix it with `baton cluster set` or restore it", p.Key, err)
	}
	if e.Settings == nil {
		return e, fmt.Errorf("%s: the entry has no settings; fix it with `baton cluster set`", p.Key)
	}
	return e, nil
}

// CatalogEntry reads one cluster's entry; ok is false when it has none.
func (s *Store) CatalogEntry(ctx context.Context, cluster string) (e CatalogEntry, ok bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, consulTimeout)
	defer cancel()
	p, _, err := s.c.KV().Get(s.catalogKey(cluster), (&api.QueryOptions{RequireConsistent: true}).WithContext(ctx))
	if err != nil {
		return e, false, fmt.Errorf("read %s from Consul: %w", s.catalogKey(cluster), s.explain(err))
	}
	if p == nil {
		return e, false, nil
	}
	e, err = decodeEntry(p)
	return e, true, err
}

// PutCatalogEntry writes a cluster's entry if it is unchanged since index (0: only if it has
// none); otherwise ErrChanged, and nothing is written.
func (s *Store) PutCatalogEntry(ctx context.Context, cluster string, e CatalogEntry, index uint64) error {
	ctx, cancel := context.WithTimeout(ctx, consulTimeout)
	defer cancel()
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	ok, _, err := s.c.KV().CAS(&api.KVPair{Key: s.catalogKey(cluster), Value: b, ModifyIndex: index}, (&api.WriteOptions{}).WithContext(ctx))
	if err != nil {
		return fmt.Errorf("write %s to Consul: %w", s.catalogKey(cluster), s.explain(err))
	}
	if !ok {
		return fmt.Errorf("%w (%s)", ErrChanged, s.catalogKey(cluster))
	}
	return nil
}

// Catalog is one listing of the catalog: the entries that parse, the problem of each that
// does not (by cluster), and the listing's index for the next blocking query.
type Catalog struct {
	Entries  map[string]CatalogEntry
	Problems map[string]error
	Index    uint64
}

// Names is every cluster in the catalog, the malformed entries' included, sorted.
func (c Catalog) Names() []string {
	out := make([]string, 0, len(c.Entries)+len(c.Problems))
	for n := range c.Entries {
		out = append(out, n)
	}
	for n := range c.Problems {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// ListCatalog lists the catalog; with wait > 0 it blocks until the catalog changes after
// index or wait passes (a Consul blocking query).
func (s *Store) ListCatalog(ctx context.Context, index uint64, wait time.Duration) (Catalog, error) {
	ctx, cancel := context.WithTimeout(ctx, wait+wait/16+consulTimeout)
	defer cancel()
	pairs, meta, err := s.c.KV().List(s.CatalogPrefix()+"/", (&api.QueryOptions{WaitIndex: index, WaitTime: wait}).WithContext(ctx))
	if err != nil {
		return Catalog{}, fmt.Errorf("list %s/ in Consul: %w", s.CatalogPrefix(), s.explain(err))
	}
	c := Catalog{Entries: map[string]CatalogEntry{}, Problems: map[string]error{}, Index: meta.LastIndex}
	for _, p := range pairs {
		name := strings.TrimPrefix(p.Key, s.CatalogPrefix()+"/")
		if name == "" || strings.Contains(name, "/") {
			continue
		}
		if e, err := decodeEntry(p); err != nil {
			c.Problems[name] = err
		} else {
			c.Entries[name] = e
		}
	}
	return c, nil
}
