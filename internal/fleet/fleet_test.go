package fleet

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/baton-db/baton/internal/envfile"
)

func shardNames(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("s%04d", i)
	}
	return out
}

// The plan splits the shards evenly, at most a share each; when a member dies only its
// shards move, split between the survivors.
func TestPlanSplitsEvenlyAndMovesOnlyTheDeadOnes(t *testing.T) {
	order, members := shardNames(Shards), []string{"bench-1", "bench-2", "bench-3"}
	share := (len(order) + 2) / 3
	first := plan(order, members, map[string]string{}, share)
	count := map[string]int{}
	for _, sh := range order {
		count[first[sh]]++
	}
	for _, m := range members {
		if count[m] < share-len(members) || count[m] > share {
			t.Fatalf("plan gives %v; want about %d each, at most %d", count, len(order)/3, share)
		}
	}
	if count[""] != 0 {
		t.Fatalf("plan leaves %d shards to nobody", count[""])
	}
	holder := map[string]string{} // as taken, with bench-1 dead
	for sh, m := range first {
		if m != "bench-1" {
			holder[sh] = m
		}
	}
	share2 := (len(order) + 1) / 2
	after := plan(order, members[1:], holder, share2)
	got := map[string]int{}
	for _, sh := range order {
		if first[sh] != "bench-1" && after[sh] != first[sh] {
			t.Fatalf("%s moved from %s to %s though %s is alive", sh, first[sh], after[sh], first[sh])
		}
		if first[sh] == "bench-1" {
			got[after[sh]]++
		}
	}
	if got["bench-2"]+got["bench-3"] != count["bench-1"] || got["bench-2"] < count["bench-1"]/3 || got["bench-3"] < count["bench-1"]/3 {
		t.Fatalf("the dead member's %d shards went %v; want them split between the survivors", count["bench-1"], got)
	}
}

// A detector over its share gives back; a held shard is never planned for anybody else
// while its holder has room.
func TestPlanRespectsHoldersAndShares(t *testing.T) {
	order := shardNames(10)
	holder := map[string]string{}
	for _, sh := range order {
		holder[sh] = "a" // a held everything while alone
	}
	p := plan(order, []string{"a", "b"}, holder, 5)
	n := 0
	for _, sh := range order {
		if p[sh] == "a" {
			n++
		}
	}
	if n != 5 {
		t.Fatalf("a keeps %d of 10 shards with b joined; want 5", n)
	}
}

// Ten thousand clusters fill the shards evenly enough for fair shares of shards to be fair
// shares of clusters.
func TestShardsAreEven(t *testing.T) {
	count := map[string]int{}
	for i := 0; i < 10000; i++ {
		count[Shard(fmt.Sprintf("c%05d", i))]++
	}
	most := 0
	for _, n := range count {
		most = max(most, n)
	}
	if len(count) < Shards*99/100 || most > 30 {
		t.Fatalf("10000 clusters in %d shards, at most %d in one", len(count), most)
	}
	if Shard("demo") == Shard("demo2") {
		t.Fatal("the sandbox's two clusters share a shard: the fleet test needs them apart")
	}
}

func TestDiffShards(t *testing.T) {
	for _, tc := range []struct {
		name     string
		old, cur map[string][]string
		want     map[string]shardChange
	}{
		{"nothing before", nil, map[string][]string{"s1": {"a", "b"}},
			map[string]shardChange{"s1": {added: []string{"a", "b"}}}},
		{"unchanged", map[string][]string{"s1": {"a"}, "s2": {"b"}}, map[string][]string{"s1": {"a"}, "s2": {"b"}},
			map[string]shardChange{}},
		{"a cluster added to a shard in use", map[string][]string{"s1": {"a", "c"}}, map[string][]string{"s1": {"a", "b", "c"}},
			map[string]shardChange{"s1": {added: []string{"b"}}}},
		{"a cluster removed from a shard in use", map[string][]string{"s1": {"a", "b"}}, map[string][]string{"s1": {"b"}},
			map[string]shardChange{"s1": {removed: []string{"a"}}}},
		{"added and removed in one shard", map[string][]string{"s1": {"a", "b"}}, map[string][]string{"s1": {"b", "c"}},
			map[string]shardChange{"s1": {added: []string{"c"}, removed: []string{"a"}}}},
		{"a shard no longer used", map[string][]string{"s1": {"a"}, "s2": {"b", "c"}}, map[string][]string{"s1": {"a"}},
			map[string]shardChange{"s2": {removed: []string{"b", "c"}}}},
		{"a new shard", map[string][]string{"s1": {"a"}}, map[string][]string{"s1": {"a"}, "s2": {"b"}},
			map[string]shardChange{"s2": {added: []string{"b"}}}},
		{"everything removed", map[string][]string{"s1": {"a"}}, map[string][]string{},
			map[string]shardChange{"s1": {removed: []string{"a"}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := diffShards(tc.old, tc.cur); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("diffShards(%v, %v) = %+v, want %+v", tc.old, tc.cur, got, tc.want)
			}
		})
	}
}

func TestGroup(t *testing.T) {
	a, b := "demo", "demo2" // in two shards (TestShardsAreEven)
	a2 := sameShard(t, a)
	for _, tc := range []struct {
		name      string
		clusters  []string
		wantOrder []string
		want      map[string][]string
	}{
		{"none", nil, []string{}, map[string][]string{}},
		{"two shards", []string{a, b}, sorted(Shard(a), Shard(b)), map[string][]string{Shard(a): {a}, Shard(b): {b}}},
		{"two clusters in a shard, unsorted and repeated", []string{a2, a, a2}, []string{Shard(a)}, map[string][]string{Shard(a): sorted(a, a2)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			shards, order := group(tc.clusters)
			if !reflect.DeepEqual(shards, tc.want) || !reflect.DeepEqual(order, tc.wantOrder) {
				t.Fatalf("group(%v) = %v, %v; want %v, %v", tc.clusters, shards, order, tc.want, tc.wantOrder)
			}
		})
	}
}

func sorted(s ...string) []string { slices.Sort(s); return s }

// sameShard is a cluster name other than c in c's shard.
func sameShard(t *testing.T, c string) string {
	for i := 0; i < 100*Shards; i++ {
		if n := fmt.Sprintf("c%d", i); Shard(n) == Shard(c) && n != c {
			return n
		}
	}
	t.Fatalf("no cluster name shares the shard of %s", c)
	return ""
}

// liveNames is a live list of clusters, as the Consul cache feeding Fleet.Names is.
type liveNames struct {
	mu      sync.Mutex
	names   []string
	changed chan struct{}
}

func (l *liveNames) get() []string { l.mu.Lock(); defer l.mu.Unlock(); return l.names }

func (l *liveNames) set(names ...string) {
	l.mu.Lock()
	l.names = sorted(names...)
	l.mu.Unlock()
	select {
	case l.changed <- struct{}{}:
	default:
	}
}

// watchLog records the watchers' lives: which clusters are watched now, and how many
// watchers each ever had.
type watchLog struct {
	mu      sync.Mutex
	running map[string]int
	started map[string]int
}

func (w *watchLog) watch(ctx context.Context, c string) {
	w.mu.Lock()
	w.running[c]++
	w.started[c]++
	w.mu.Unlock()
	<-ctx.Done()
	w.mu.Lock()
	w.running[c]--
	w.mu.Unlock()
}

// waitFor waits up to 2 s (less than the fleet's 5 s blocking query, which a change of the
// clusters must interrupt) for the running watchers to be want, each started once.
func (w *watchLog) waitFor(t *testing.T, step string, want ...string) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for {
		w.mu.Lock()
		var running []string
		once := true
		for c, n := range w.running {
			if n > 0 {
				running = append(running, c)
			}
			once = once && n <= 1 && (n == 0 || w.started[c] == 1)
		}
		w.mu.Unlock()
		slices.Sort(running)
		if slices.Equal(running, sorted(want...)) && once {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: watching %v after 2 s, want %v (each started once)", step, running, sorted(want...))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A detector follows the live list of clusters: a cluster added to a shard it holds, or in
// a new shard, is watched, a removed one's watcher ends, and a shard left with no cluster
// is given back; all within a blocking query's wait, and every watcher ends with the fleet.
func TestFleetFollowsLiveClusters(t *testing.T) {
	c := throwawayConsul(t)
	a, b := "demo", "demo2" // in two shards
	a2 := sameShard(t, a)
	live := &liveNames{changed: make(chan struct{}, 1)}
	live.set(a)
	w := &watchLog{running: map[string]int{}, started: map[string]int{}}
	f := &Fleet{Consul: c, Prefix: "baton-test/detectors", ID: "t1", Names: live.get, Changed: live.changed,
		Watch: w.watch, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- f.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-ran; err != nil {
			t.Errorf("Run: %v", err)
		}
		w.waitFor(t, "fleet stopped")
	}()
	deadline := time.Now().Add(10 * time.Second) // joining takes a while
	for f.Ready(ctx) != nil || !watching(w, a) {
		if time.Now().After(deadline) {
			t.Fatal("the detector did not join and watch its one cluster in 10 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Each change waits for the listing that follows the fleet's own last write (a lock) to
	// block: only Changed can end it within 2 s.
	settle := func() { time.Sleep(300 * time.Millisecond) }
	settle()
	live.set(a, a2, b)
	w.waitFor(t, "added "+a2+" (in the shard held) and "+b+" (in a new shard)", a, a2, b)
	lock := func(sh string) string {
		p, _, err := c.KV().Get("baton-test/detectors/locks/"+sh, nil)
		if err != nil {
			t.Fatal(err)
		}
		if p == nil {
			return ""
		}
		return p.Session
	}
	if lock(Shard(b)) == "" {
		t.Fatalf("watching %s without the lock of its shard %s", b, Shard(b))
	}
	settle()
	live.set(a2, b)
	w.waitFor(t, "removed "+a, a2, b)
	settle()
	live.set(a2)
	w.waitFor(t, "removed "+b+", the last of its shard", a2)
	for deadline := time.Now().Add(2 * time.Second); lock(Shard(b)) != ""; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("shard %s has no cluster but its lock is still held after 2 s", Shard(b))
		}
	}
	if lock(Shard(a2)) == "" {
		t.Fatalf("the lock of shard %s, still watched, is free", Shard(a2))
	}
}

func watching(w *watchLog, c string) bool { w.mu.Lock(); defer w.mu.Unlock(); return w.running[c] > 0 }

// throwawayConsul starts a Consul dev agent on 127.0.7.1 (no sandbox's address), on free
// ports, DNS and gRPC off, and stops it when the test ends.
func throwawayConsul(t *testing.T) *api.Client {
	t.Helper()
	cache := os.Getenv("BATON_CACHE")
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, ".cache/baton")
	}
	kv, err := envfile.Read(filepath.Join(cache, "tools.env"))
	if err != nil {
		t.Fatalf("%v: run deploy/tools/build.sh first", err)
	}
	if _, err := os.Stat(kv["CONSUL_BIN"]); err != nil {
		t.Fatalf("CONSUL_BIN: %v: run deploy/tools/build.sh first", err)
	}
	const ip = "127.0.7.1"
	port := func() string {
		l, err := net.Listen("tcp", ip+":0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	}
	http := port()
	cmd := exec.Command(kv["CONSUL_BIN"], "agent", "-dev", "-bind", ip, "-client", ip, "-node", "baton-fleet-test",
		"-http-port", http, "-https-port", "-1", "-dns-port", "-1", "-grpc-port", "-1", "-grpc-tls-port", "-1",
		"-server-port", port(), "-serf-lan-port", port(), "-serf-wan-port", port(), "-log-level", "warn")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	c, err := api.NewClient(&api.Config{Address: ip + ":" + http})
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if leader, err := c.Status().Leader(); err == nil && leader != "" {
			return c
		}
		select {
		case <-exited:
			t.Fatalf("consul agent -dev exited: %v\n%s", cmd.ProcessState, out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("consul agent -dev has no leader after 30 s\n%s", out.String())
		}
	}
}
