package tests

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/baton-db/baton/internal/topology"
)

// The detector's topology cache follows Consul with one blocking query: it agrees with a
// direct read, sees a new cluster and a new primary within a moment, and a cluster whose
// keys are deleted becomes unknown again.
func TestTopologyCacheFollowsConsul(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cache := topo.Watch(ctx)
	direct := readTopo(t)
	cached, err := cache.Read(ctx, "demo")
	if err != nil || cached.Primary != direct.Primary || cached.Epoch != direct.Epoch || len(cached.Replicas) != len(direct.Replicas) {
		t.Fatalf("cache read of demo = %+v, %v; Consul says primary %s epoch %d", cached, err, direct.Primary.Name, direct.Epoch)
	}

	kv := topo.Client().KV()
	const name = "cache-probe"
	prefix := "baton/clusters/" + name + "/"
	t.Cleanup(func() { _, _ = kv.DeleteTree(prefix, nil) })
	put := func(primary string) time.Time {
		t.Helper()
		v := fmt.Sprintf(`{"name":%q,"ipv4":"127.0.9.9","port":3306,"server_id":9}`, primary)
		if _, err := kv.Put(&api.KVPair{Key: prefix + "primary", Value: []byte(v)}, nil); err != nil {
			t.Fatal(err)
		}
		return time.Now()
	}
	waitFor := func(what string, ok func(topology.Topology, error) bool) time.Duration {
		t.Helper()
		start := time.Now()
		for {
			tp, err := cache.Read(ctx, name)
			if ok(tp, err) {
				return time.Since(start)
			}
			if time.Since(start) > 5*time.Second {
				t.Fatalf("cache: %s not seen within 5s (last %+v, %v)", what, tp, err)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	if _, err := cache.Read(ctx, name); !errors.Is(err, topology.ErrUnknownCluster) {
		t.Fatalf("a cluster Consul does not hold: %v, want ErrUnknownCluster", err)
	}
	put("p1")
	added := waitFor("the new cluster", func(tp topology.Topology, err error) bool { return err == nil && tp.Primary.Name == "p1" })
	put("p2")
	changed := waitFor("the new primary", func(tp topology.Topology, err error) bool { return err == nil && tp.Primary.Name == "p2" })
	if _, err := kv.DeleteTree(prefix, nil); err != nil {
		t.Fatal(err)
	}
	waitFor("the deletion", func(_ topology.Topology, err error) bool { return errors.Is(err, topology.ErrUnknownCluster) })
	fmt.Printf("METRIC topology_cache: new cluster seen after %s, new primary after %s\n", added.Round(time.Millisecond), changed.Round(time.Millisecond))
}
