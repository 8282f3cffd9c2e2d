package topology

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
)

func newTestCache() *Cache {
	return &Cache{s: &Store{prefix: "baton/clusters"}, ready: make(chan struct{})}
}

func TestCacheGroupsTheListingByCluster(t *testing.T) {
	c := newTestCache()
	c.load(api.KVPairs{
		{Key: "baton/clusters/a/primary", Value: []byte(`{"name":"n1","ipv4":"127.0.1.1","port":3306,"server_id":1}`)},
		{Key: "baton/clusters/a/replicas/n2", Value: []byte(`{"name":"n2","ipv4":"127.0.1.2","port":3306,"server_id":1}`)},
		{Key: "baton/clusters/a/epoch", Value: []byte("7"), ModifyIndex: 42},
		{Key: "baton/clusters/b/primary", Value: []byte(`{"name":"m1","ipv4":"127.0.2.1","port":3306,"server_id":1}`)},
		{Key: "baton/clusters/broken/primary", Value: []byte(`{not json`)},
		{Key: "baton/clusters/orphan"}, // a key with no cluster folder is ignored
	})
	ctx := context.Background()
	a, err := c.Read(ctx, "a")
	if err != nil || a.Primary.Name != "n1" || len(a.Replicas) != 1 || a.Epoch != 7 || a.EpochIndex != 42 {
		t.Fatalf("cluster a = %+v, %v", a, err)
	}
	if b, err := c.Read(ctx, "b"); err != nil || b.Primary.Name != "m1" || len(b.Replicas) != 0 {
		t.Fatalf("cluster b = %+v, %v", b, err)
	}
	if _, err := c.Read(ctx, "broken"); err == nil || !strings.Contains(err.Error(), "baton/clusters/broken/primary") {
		t.Fatalf("a cluster whose primary does not parse: %v", err)
	}
	if _, err := c.Read(ctx, "nope"); !errors.Is(err, ErrUnknownCluster) {
		t.Fatalf("an unknown cluster: %v", err)
	}
}

func TestCacheReportsAConsulThatStoppedAnswering(t *testing.T) {
	c := newTestCache()
	c.load(api.KVPairs{{Key: "baton/clusters/a/primary", Value: []byte(`{"name":"n1","ipv4":"127.0.1.1","port":3306,"server_id":1}`)}})
	c.mu.Lock()
	c.err, c.at = errors.New("connection refused"), time.Now().Add(-time.Second)
	c.mu.Unlock()
	if _, err := c.Read(context.Background(), "a"); err != nil {
		t.Fatalf("a failure younger than %s is not reported yet: %v", cacheStale, err)
	}
	c.mu.Lock()
	c.at = time.Now().Add(-2 * cacheStale)
	c.mu.Unlock()
	tp, err := c.Read(context.Background(), "a")
	if err == nil || !strings.Contains(err.Error(), "connection refused") || tp.Primary.Name != "n1" {
		t.Fatalf("a stale cache must say so and still return the last topology: %+v, %v", tp, err)
	}
}

func TestCacheReadBeforeTheFirstAnswer(t *testing.T) {
	c := newTestCache()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := c.Read(ctx, "a"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("before Consul first answered: %v", err)
	}
}
