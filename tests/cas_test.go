package tests

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/baton-db/baton/internal/topology"
)

// bumpEpoch writes the cluster's epoch + 1 with check-and-set, as another writer would.
func bumpEpoch(t *testing.T) uint64 {
	t.Helper()
	p, _, err := consulKV.Get("baton/clusters/demo/epoch", nil)
	if err != nil || p == nil {
		t.Fatalf("read the epoch: %v", err)
	}
	n, err := strconv.ParseUint(string(p.Value), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	p.Value = []byte(strconv.FormatUint(n+1, 10))
	if ok, _, err := consulKV.CAS(p, nil); err != nil || !ok {
		t.Fatalf("bump the epoch: %v (won %v)", err, ok)
	}
	return n + 1
}

// Another writer bumps the epoch between a switchover's plan and its publish (the worker dies
// at PublishTopology meanwhile, and a new one resumes the switchover). The switchover stops at
// its next epoch check, its demotion is undone, and Consul keeps the other writer's epoch and
// primary: nothing is published twice, and no acked write is lost.
func TestAnotherEpochBumpWinsOverASwitchover(t *testing.T) {
	row := fault(t, "epoch bumped by another writer before the publish (switchover stopped, undone)")
	before, l, done := switchoverHeldBefore(t, "PublishTopology")
	bumped := bumpEpoch(t)
	sandboxCmd(t, "start-worker")
	out := <-done
	if !strings.Contains(out, "EpochChanged") || !strings.Contains(out, "was undone") {
		t.Fatalf("the switchover should fail its publish on the epoch and be undone:\n%s", out)
	}
	t.Logf("refused and undone: %s", lastLine(out))
	if tp := readTopo(t); tp.Primary.Name != before.Primary.Name || tp.Epoch != bumped {
		t.Fatalf("Consul: primary %s epoch %d; want %s at the other writer's epoch %d", tp.Primary.Name, tp.Epoch, before.Primary.Name, bumped)
	}
	waitFor(t, 30*time.Second, func() bool { return replicatingAll(t, before) })
	assertHealthy(t, l, row)
}

// Two publishes planned at the same epoch race on the real Consul: exactly one wins, the
// epoch moves by one, and the loser is told it lost (topology.ErrConflict).
func TestConcurrentPublishesOneWins(t *testing.T) {
	const cluster = "cas-probe"
	prefix := "baton/clusters/" + cluster + "/"
	t.Cleanup(func() { _, _ = consulKV.DeleteTree(prefix, nil) })
	node := func(i int) topology.Node {
		return topology.Node{Name: fmt.Sprintf("n%d", i), IPv4: fmt.Sprintf("127.0.9.%d", i), Port: 3306, Zone: "a", ServerID: uint32(900 + i)}
	}
	put := func(key, value string) {
		if _, err := consulKV.Put(&api.KVPair{Key: prefix + key, Value: []byte(value)}, nil); err != nil {
			t.Fatal(err)
		}
	}
	for round := 0; round < 20; round++ {
		_, _ = consulKV.DeleteTree(prefix, nil)
		put("primary", `{"name":"n0","ipv4":"127.0.9.10","port":3306,"zone":"a","server_id":900}`)
		put("epoch", "1")
		before, err := topo.Read(context.Background(), cluster)
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = topo.Publish(context.Background(), cluster, before.Epoch, before.EpochIndex, topology.Change{Primary: node(i + 1)})
			}()
		}
		wg.Wait()
		won := 0
		for _, err := range errs {
			switch {
			case err == nil:
				won++
			case !errors.Is(err, topology.ErrConflict):
				t.Fatalf("round %d: the losing publish failed with %v, want ErrConflict", round, err)
			}
		}
		after, err := topo.Read(context.Background(), cluster)
		if err != nil {
			t.Fatal(err)
		}
		if won != 1 || after.Epoch != before.Epoch+1 {
			t.Fatalf("round %d: %d publishes won and the epoch went %d -> %d; want exactly one and +1 (%v)", round, won, before.Epoch, after.Epoch, errs)
		}
		if w := map[bool]string{true: "n1", false: "n2"}[errs[0] == nil]; after.Primary.Name != w {
			t.Fatalf("round %d: Consul names %s, but the winner published %s", round, after.Primary.Name, w)
		}
	}
}
