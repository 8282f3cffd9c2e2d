// Package fleet shares clusters among any number of detectors with Consul sessions and
// locks: each cluster is watched by the one detector that holds its shard's lock. A detector's
// session is tied to a TTL check it keeps passing; when the detector dies the check goes
// critical after CheckTTL, Consul invalidates the session and releases its locks, and the
// others take the clusters over. Each detector holds at most its fair share
// (ceil(clusters / live detectors)), so detectors that join or leave rebalance without a
// restart, and so do clusters added or removed at run time (Fleet.Names).
package fleet

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hashicorp/consul/api"
)

// CheckTTL is how long a detector that stopped passing its check keeps its clusters.
const CheckTTL = 2 * time.Second

// Fleet runs one detector's share of the clusters.
type Fleet struct {
	Consul *api.Client
	// Prefix is where members and locks live (baton/detectors).
	Prefix string
	ID     string
	// Clusters is the fixed list of clusters, when Names is nil.
	Clusters []string
	// Names, when set, is the live list of clusters (sorted, no duplicates) and replaces
	// Clusters; Changed receives (a non-blocking send into a 1-buffered channel) whenever it may
	// have changed. Every detector reads the same list from Consul, so their plans agree.
	Names   func() []string
	Changed <-chan struct{}
	// Watch starts watching a cluster until its context ends.
	Watch func(ctx context.Context, cluster string)
	Log   *slog.Logger

	session string
	member  atomic.Bool         // joined, with a live session: the detector's readiness
	held    map[string]*holding // by shard
	names   []string            // the list f.shards was computed from
	shards  map[string][]string // the clusters of each shard in use
	order   []string            // the shards in use, sorted
}

// holding is a shard whose lock this detector holds: a watcher per cluster, each under a
// context of its own derived from the shard's.
type holding struct {
	ctx      context.Context
	cancel   context.CancelFunc
	watchers map[string]context.CancelFunc // by cluster
}

// Shards is how many shards the clusters are hashed into. A lock covers a shard, so that
// ten thousand clusters are about a thousand locks: a takeover is a few transactions, and
// the fleet's keys stay few enough for Consul to watch them precisely.
const Shards = 1024

// Shard names the shard of a cluster; its lock is locks/<shard>.
func Shard(cluster string) string { return fmt.Sprintf("s%04d", hash("", cluster)%Shards) }

// Member is a live detector, as written at members/<id>.
type Member struct {
	ID      string    `json:"id"`
	Started time.Time `json:"started"`
}

// Ready says whether this detector is a member of the fleet (its /readyz).
func (f *Fleet) Ready(context.Context) error {
	if !f.member.Load() {
		return fmt.Errorf("not a member of the detector fleet (no live Consul session): its clusters are watched by the others, or by nobody")
	}
	return nil
}

// Run joins the fleet and keeps this detector's share watched until ctx ends; it then
// leaves, releasing its clusters at once.
func (f *Fleet) Run(ctx context.Context) error {
	f.held, f.names, f.shards, f.order = map[string]*holding{}, nil, nil, nil // f.follow fills them
	// The check is this process's own: a detector restarted under the same ID (by a
	// supervisor, within CheckTTL) registers a new one in place of its predecessor's, and
	// Consul invalidates the dead process's session with it. A check ID shared across
	// restarts was kept passing by the new process, so the old session never expired and
	// held the membership key forever (found by the nemesis).
	checkID := fmt.Sprintf("baton-detector:%s:%d-%d", f.ID, os.Getpid(), time.Now().UnixNano())
	agent := f.Consul.Agent()
	if err := agent.ServiceRegisterOpts(&api.AgentServiceRegistration{ID: "baton-detector-" + f.ID, Name: "baton-detector",
		Check: &api.AgentServiceCheck{CheckID: checkID, TTL: CheckTTL.String(), DeregisterCriticalServiceAfter: "1m"}},
		api.ServiceRegisterOpts{ReplaceExistingChecks: true}); err != nil {
		return fmt.Errorf("register detector %s in Consul: %w (Baton's token needs service \"baton-detector\" write and session_prefix \"\" write)", f.ID, err)
	}
	defer func() { _ = agent.ServiceDeregister("baton-detector-" + f.ID) }()
	go f.passCheck(ctx, checkID)
	defer f.releaseAll()
	for ctx.Err() == nil {
		if err := f.join(ctx, checkID); err != nil {
			f.Log.Error("cannot join the detector fleet; retrying", "id", f.ID, "error", err)
			sleep(ctx, time.Second)
			continue
		}
		f.member.Store(true)
		err := f.balance(ctx)
		f.member.Store(false)
		f.releaseAll()
		if ctx.Err() == nil {
			f.Log.Warn("detector session lost; joining again", "id", f.ID, "error", err)
		}
	}
	return nil
}

func (f *Fleet) passCheck(ctx context.Context, checkID string) {
	t := time.NewTicker(CheckTTL / 4)
	defer t.Stop()
	for {
		_ = f.Consul.Agent().UpdateTTL(checkID, "alive", api.HealthPassing)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// join creates the session (tied to the check) and the membership key.
func (f *Fleet) join(ctx context.Context, checkID string) error {
	_ = f.Consul.Agent().UpdateTTL(checkID, "alive", api.HealthPassing)
	id, _, err := f.Consul.Session().Create(&api.SessionEntry{Name: "baton-detector " + f.ID, Checks: []string{"serfHealth", checkID},
		Behavior: api.SessionBehaviorRelease, LockDelay: time.Millisecond}, (&api.WriteOptions{}).WithContext(ctx))
	if err != nil {
		return fmt.Errorf("create session: %w", err)
	}
	f.session = id
	b, _ := json.Marshal(Member{ID: f.ID, Started: time.Now().UTC()})
	ok, _, err := f.Consul.KV().Acquire(&api.KVPair{Key: f.key("members", f.ID), Value: b, Session: id}, nil)
	if err != nil || !ok {
		_, _ = f.Consul.Session().Destroy(id, nil) // one session per attempt would pile up
		f.session = ""
		return fmt.Errorf("acquire membership %s: %v (another detector with ID %s is running?)", f.key("members", f.ID), err, f.ID)
	}
	f.Log.Info("joined the detector fleet", "id", f.ID, "session", id)
	return nil
}

func (f *Fleet) key(parts ...string) string {
	return path.Join(append([]string{f.Prefix}, parts...)...)
}

// balance follows the fleet's keys with a blocking query and takes or gives back shards,
// as the plan of each listing says, until the session is lost or ctx ends. The clusters
// are read again at each listing, and a change of them (Changed) ends the blocking query
// for a listing at once.
func (f *Fleet) balance(ctx context.Context) error {
	var index uint64
	freeBefore := map[string]bool{}
	for ctx.Err() == nil {
		pairs, meta, changed, err := f.list(ctx, index)
		if changed {
			index = 0 // list again without waiting
			continue
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			sleep(ctx, 500*time.Millisecond)
			continue
		}
		index = meta.LastIndex
		var members []string
		locks, memberOf := map[string]string{}, map[string]string{} // shard → session, session → member
		for _, p := range pairs {
			k := strings.TrimPrefix(p.Key, f.Prefix+"/")
			switch {
			case strings.HasPrefix(k, "members/") && p.Session != "":
				members = append(members, strings.TrimPrefix(k, "members/"))
				memberOf[p.Session] = members[len(members)-1]
			case strings.HasPrefix(k, "locks/") && p.Session != "":
				locks[strings.TrimPrefix(k, "locks/")] = p.Session
			}
		}
		if !slices.Contains(members, f.ID) {
			return errors.New("membership key lost")
		}
		for sh := range f.held {
			if locks[sh] != f.session {
				f.Log.Warn("lost the lock of a shard; no longer watching its clusters", "shard", sh, "clusters", f.shards[sh])
				f.stop(sh)
			}
		}
		f.follow(ctx)
		holder := map[string]string{}
		for sh, sess := range locks {
			holder[sh] = cmp.Or(memberOf[sess], "(a session that is no member)")
		}
		share := (len(f.order) + len(members) - 1) / len(members) // in shards
		want := plan(f.order, members, holder, share)
		for sh := range f.held {
			if want[sh] != f.ID {
				f.release(sh)
			}
		}
		// The plan's free shards for this detector, then any that stayed free since the
		// last listing (their planned watcher did not take them).
		var take []string
		for _, sh := range f.order {
			if locks[sh] == "" && (want[sh] == f.ID || freeBefore[sh] && len(f.held) < share) {
				take = append(take, sh)
			}
		}
		if len(take) > 0 {
			f.acquire(ctx, take, share-len(f.held))
			f.Log.Info("detector share", "id", f.ID, "detectors", len(members), "share_shards", share, "shards", len(f.held))
		}
		clear(freeBefore)
		for _, sh := range f.order {
			if locks[sh] == "" && f.held[sh] == nil {
				freeBefore[sh] = true
			}
		}
		sleep(ctx, 100*time.Millisecond) // coalesce a burst of changes into one more listing
	}
	return nil
}

// list is the fleet's keys, by a blocking query after index that ends early, with changed
// set, when the clusters may have changed.
func (f *Fleet) list(ctx context.Context, index uint64) (pairs api.KVPairs, meta *api.QueryMeta, changed bool, err error) {
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		pairs, meta, err = f.Consul.KV().List(f.Prefix+"/", (&api.QueryOptions{WaitIndex: index, WaitTime: 5 * time.Second}).WithContext(lctx))
	}()
	select {
	case <-done:
		return pairs, meta, false, err
	case <-f.Changed: // nil, so never, with static Clusters
		cancel()
		<-done
		return nil, nil, true, nil
	}
}

// follow recomputes the shards in use from the current clusters. A held shard watches its
// added clusters and stops watching its removed ones; one left with no cluster is given
// back. Newly used shards are left to the plan.
func (f *Fleet) follow(ctx context.Context) {
	names := f.Clusters
	if f.Names != nil {
		names = f.Names()
	}
	if f.shards != nil && slices.Equal(names, f.names) {
		return
	}
	shards, order := group(names)
	started := 0
	for sh, ch := range diffShards(f.shards, shards) {
		h := f.held[sh]
		if h == nil {
			continue
		}
		for _, c := range ch.removed {
			h.watchers[c]()
			delete(h.watchers, c)
			f.Log.Info("no longer watching cluster", "cluster", c, "shard", sh)
		}
		if len(shards[sh]) == 0 {
			f.release(sh)
			continue
		}
		for _, c := range ch.added {
			f.watch(h, c)
			f.Log.Info("watching new cluster", "cluster", c, "shard", sh)
			started++
		}
	}
	f.names, f.shards, f.order = slices.Clone(names), shards, order
	sleep(ctx, time.Duration(started)*rampPause) // as acquire does
}

// group hashes clusters into their shards: the clusters of each shard in use, sorted, and
// the shards in use, sorted.
func group(clusters []string) (map[string][]string, []string) {
	clusters = slices.Compact(slices.Sorted(slices.Values(clusters)))
	shards, order := map[string][]string{}, []string{}
	for _, c := range clusters {
		sh := Shard(c)
		if shards[sh] == nil {
			order = append(order, sh)
		}
		shards[sh] = append(shards[sh], c)
	}
	sort.Strings(order)
	return shards, order
}

// shardChange is how the clusters of a shard changed.
type shardChange struct{ added, removed []string }

// diffShards compares two groupings (shard → sorted clusters) and returns the shards whose
// clusters changed: a shard no longer used has all its clusters removed, a new one all added.
func diffShards(old, cur map[string][]string) map[string]shardChange {
	out := map[string]shardChange{}
	for sh, was := range old {
		var ch shardChange
		for _, c := range was {
			if _, ok := slices.BinarySearch(cur[sh], c); !ok {
				ch.removed = append(ch.removed, c)
			}
		}
		for _, c := range cur[sh] {
			if _, ok := slices.BinarySearch(was, c); !ok {
				ch.added = append(ch.added, c)
			}
		}
		if ch.added != nil || ch.removed != nil {
			out[sh] = ch
		}
	}
	for sh, is := range cur {
		if _, ok := old[sh]; !ok {
			out[sh] = shardChange{added: slices.Clone(is)}
		}
	}
	return out
}

// plan assigns every shard to a live member, at most share each: a held shard stays with
// its holder, a free one goes to the first member with room in the shard's rendezvous
// order. Every detector computes the same plan from the same listing, so the survivors of
// a dead detector split its shards without racing for the same locks, and only its
// shards move.
func plan(order, members []string, holder map[string]string, share int) map[string]string {
	load, out := map[string]int{}, map[string]string{}
	for _, sh := range order {
		if h := holder[sh]; h != "" && load[h] < share {
			out[sh] = h
			load[h]++
		}
	}
	ranked := slices.Clone(members)
	for _, sh := range order {
		if out[sh] != "" || holder[sh] != "" {
			continue
		}
		sort.Slice(ranked, func(i, j int) bool { return hash(ranked[i], sh) > hash(ranked[j], sh) })
		for _, m := range ranked {
			if load[m] < share {
				out[sh] = m
				load[m]++
				break
			}
		}
	}
	return out
}

// txnOps is Consul's limit of operations per transaction.
const txnOps = 64

// acquire takes up to need of the free shards, a transaction of locks at a time, and
// watches their clusters. A transaction that lost races is retried without the locks it lost.
func (f *Fleet) acquire(ctx context.Context, free []string, need int) {
	free = free[:min(need, len(free))]
	for len(free) > 0 && ctx.Err() == nil {
		batch := free[:min(txnOps, len(free))]
		free = free[len(batch):]
		started := 0
		for len(batch) > 0 && ctx.Err() == nil {
			ops := make(api.KVTxnOps, len(batch))
			for i, c := range batch {
				ops[i] = &api.KVTxnOp{Verb: api.KVLock, Key: f.key("locks", c), Value: []byte(f.ID), Session: f.session}
			}
			ok, resp, _, err := f.Consul.KV().Txn(ops, (&api.QueryOptions{}).WithContext(ctx))
			if err != nil {
				return // the next listing tries again
			}
			if ok {
				for _, sh := range batch {
					h := &holding{watchers: map[string]context.CancelFunc{}}
					h.ctx, h.cancel = context.WithCancel(ctx)
					f.held[sh] = h
					for _, c := range f.shards[sh] {
						f.watch(h, c)
					}
					started += len(f.shards[sh])
				}
				break
			}
			lost := map[int]bool{}
			for _, e := range resp.Errors {
				lost[e.OpIndex] = true
			}
			if len(lost) == 0 {
				return
			}
			var rest []string
			for i, c := range batch {
				if !lost[i] {
					rest = append(rest, c)
				}
			}
			batch = rest
		}
		// A ramp, not a burst: thousands of watchers connecting (TLS handshakes) at once
		// would time out their own first probes.
		sleep(ctx, time.Duration(started)*rampPause)
	}
}

// rampPause is the pause per watcher started: 1,000 clusters a second.
const rampPause = time.Millisecond

func hash(member, shard string) uint64 {
	sum := sha256.Sum256([]byte(member + "/" + shard))
	return binary.BigEndian.Uint64(sum[:8])
}

// watch starts watching a cluster of a held shard.
func (f *Fleet) watch(h *holding, cluster string) {
	ctx, cancel := context.WithCancel(h.ctx)
	h.watchers[cluster] = cancel
	go f.Watch(ctx, cluster)
}

// stop cancels every watcher of a shard.
func (f *Fleet) stop(sh string) {
	if h, ok := f.held[sh]; ok {
		for _, cancel := range h.watchers {
			cancel()
		}
		h.cancel()
		delete(f.held, sh)
	}
}

func (f *Fleet) release(sh string) {
	f.stop(sh)
	_, _, _ = f.Consul.KV().Release(&api.KVPair{Key: f.key("locks", sh), Session: f.session}, nil)
	f.Log.Info("gave a shard back to the fleet", "shard", sh, "clusters", f.shards[sh])
}

// releaseAll stops every watcher and destroys the session: its locks are free at once.
func (f *Fleet) releaseAll() {
	for sh := range f.held {
		f.stop(sh)
	}
	if f.session != "" {
		_, _ = f.Consul.Session().Destroy(f.session, nil)
		f.session = ""
	}
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// Watchers returns which detector watches each of the clusters (from their shards' locks).
func Watchers(ctx context.Context, c *api.Client, prefix string, clusters []string) (map[string]string, error) {
	pairs, _, err := c.KV().List(prefix+"/locks/", (&api.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return nil, err
	}
	by := map[string]string{}
	for _, p := range pairs {
		if p.Session != "" {
			by[strings.TrimPrefix(p.Key, prefix+"/locks/")] = string(p.Value)
		}
	}
	out := map[string]string{}
	for _, cl := range clusters {
		if d := by[Shard(cl)]; d != "" {
			out[cl] = d
		}
	}
	return out, nil
}
