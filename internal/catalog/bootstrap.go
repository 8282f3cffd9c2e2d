package catalog

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"time"

	"github.com/baton-db/baton/internal/config"
	"github.com/baton-db/baton/internal/topology"
)

// Entry is the catalog entry of a cluster's settings. A remote HAProxy without a reader
// address gets the one beside its writer (writer port + 1), which the HAProxy templates need.
func Entry(cc config.ClusterConfig, by, change string, at time.Time) topology.CatalogEntry {
	cc.HAProxies = slices.Clone(cc.HAProxies)
	for i, h := range cc.HAProxies {
		if h.Reader == "" {
			cc.HAProxies[i].Reader = nextPort(h.Writer)
		}
	}
	return topology.CatalogEntry{Settings: config.EncodeSettings(cc), By: by, At: at.UTC(), Change: change}
}

func nextPort(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return ""
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return ""
	}
	return net.JoinHostPort(host, strconv.Itoa(p+1))
}

// BootstrapStore is what Bootstrap needs of Consul.
type BootstrapStore interface {
	Clusters(ctx context.Context) ([]string, error)
	CatalogEntry(ctx context.Context, cluster string) (topology.CatalogEntry, bool, error)
	PutCatalogEntry(ctx context.Context, cluster string, e topology.CatalogEntry, index uint64) error
}

// Bootstrap enters in the catalog each cluster of the config file that has a topology in
// Consul but no catalog entry (a fleet that ran before the catalog existed), from the file's
// settings. An entry that exists is never changed: the catalog, not the file, is the truth.
// It returns the clusters it entered.
func Bootstrap(ctx context.Context, s BootstrapStore, file *config.Config, by string) ([]string, error) {
	if len(file.Clusters) == 0 {
		return nil, nil
	}
	have, err := s.Clusters(ctx)
	if err != nil {
		return nil, err
	}
	var entered []string
	var errs []error
	for _, name := range have {
		cc, inFile := file.Clusters[name]
		if !inFile {
			continue
		}
		_, ok, err := s.CatalogEntry(ctx, name)
		if err == nil && !ok {
			err = s.PutCatalogEntry(ctx, name, Entry(cc, by, "bootstrap from the config file", time.Now()), 0)
			if errors.Is(err, topology.ErrChanged) {
				continue // another process entered it first
			}
			if err == nil {
				entered = append(entered, name)
			}
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("bootstrap %s into the catalog: %w", name, err))
		}
	}
	return entered, errors.Join(errs...)
}
