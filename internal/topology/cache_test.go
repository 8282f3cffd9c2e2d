package topology

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
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

// A query sent while Consul has no leader hangs. Once Consul answers again the cache is
// fresh within a non-blocking query's timeout, not the blocking query's (about 13 s).
func TestCacheIsFreshSoonAfterConsulAnswersAgain(t *testing.T) {
	var up atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !up.Load() {
			<-r.Context().Done() // no leader: the request hangs
			return
		}
		w.Header().Set("X-Consul-Index", "5")
		if r.URL.Query().Has("index") { // a blocking query: nothing changes
			time.Sleep(50 * time.Millisecond)
		}
		if r.URL.Query().Has("keys") {
			_, _ = w.Write([]byte(`["baton/clusters/a/"]`))
			return
		}
		_, _ = w.Write([]byte(`[{"Key":"baton/clusters/a/primary","Value":"` +
			base64.StdEncoding.EncodeToString([]byte(`{"name":"n1","ipv4":"127.0.1.1","port":3306,"server_id":1}`)) + `"}]`))
	}))
	defer srv.Close()
	cl, err := api.NewClient(&api.Config{Address: strings.TrimPrefix(srv.URL, "http://")})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := New(cl, "baton/clusters").Watch(ctx)
	time.Sleep(time.Second) // the first query hangs
	up.Store(true)
	back := time.Now()
	for {
		rctx, rcancel := context.WithTimeout(ctx, 100*time.Millisecond)
		tp, err := c.Read(rctx, "a")
		rcancel()
		if err == nil && tp.Primary.Name == "n1" {
			break
		}
		if time.Since(back) > 2*consulTimeout {
			t.Fatalf("the cache is not fresh %s after Consul answers again: %v", time.Since(back).Round(time.Millisecond), err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("fresh %s after Consul answered again", time.Since(back).Round(time.Millisecond))
}
