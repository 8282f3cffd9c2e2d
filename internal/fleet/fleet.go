// Package fleet shares clusters among any number of detectors with Consul sessions and
// locks: each cluster is watched by the one detector that holds its lock. A detector's
// session is tied to a TTL check it keeps passing; when the detector dies the check goes
// critical after CheckTTL, Consul invalidates the session and releases its locks, and the
// others take the clusters over. Each detector holds at most its fair share
// (ceil(clusters / live detectors)), so detectors that join or leave rebalance without a
// restart.
package fleet

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/consul/api"
)

// CheckTTL is how long a detector that stopped passing its check keeps its clusters.
const CheckTTL = 2 * time.Second

// Fleet runs one detector's share of the clusters.
type Fleet struct {
	Consul *api.Client
	// Prefix is where members and locks live (baton/detectors).
	Prefix   string
	ID       string
	Clusters []string
	// Watch starts watching a cluster until its context ends.
	Watch func(ctx context.Context, cluster string)
	Log   *slog.Logger

	session string
	held    map[string]context.CancelFunc
}

// Member is a live detector, as written at members/<id>.
type Member struct {
	ID      string    `json:"id"`
	Started time.Time `json:"started"`
}

// Run joins the fleet and keeps this detector's share watched until ctx ends; it then
// leaves, releasing its clusters at once.
func (f *Fleet) Run(ctx context.Context) error {
	f.held = map[string]context.CancelFunc{}
	checkID := "baton-detector:" + f.ID
	agent := f.Consul.Agent()
	if err := agent.ServiceRegister(&api.AgentServiceRegistration{ID: "baton-detector-" + f.ID, Name: "baton-detector",
		Check: &api.AgentServiceCheck{CheckID: checkID, TTL: CheckTTL.String(), DeregisterCriticalServiceAfter: "1m"}}); err != nil {
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
		err := f.balance(ctx)
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
		return fmt.Errorf("acquire membership %s: %v (another detector with ID %s is running?)", f.key("members", f.ID), err, f.ID)
	}
	f.Log.Info("joined the detector fleet", "id", f.ID, "session", id)
	return nil
}

func (f *Fleet) key(parts ...string) string {
	return path.Join(append([]string{f.Prefix}, parts...)...)
}

// balance follows the fleet's keys with a blocking query and takes or gives back clusters
// until the session is lost or ctx ends.
func (f *Fleet) balance(ctx context.Context) error {
	var index uint64
	freeBefore := map[string]bool{}
	for ctx.Err() == nil {
		pairs, meta, err := f.Consul.KV().List(f.Prefix+"/", (&api.QueryOptions{WaitIndex: index, WaitTime: 5 * time.Second}).WithContext(ctx))
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			sleep(ctx, 500*time.Millisecond)
			continue
		}
		index = meta.LastIndex
		var members []string
		locks := map[string]string{}
		for _, p := range pairs {
			k := strings.TrimPrefix(p.Key, f.Prefix+"/")
			switch {
			case strings.HasPrefix(k, "members/") && p.Session != "":
				members = append(members, strings.TrimPrefix(k, "members/"))
			case strings.HasPrefix(k, "locks/") && p.Session != "":
				locks[strings.TrimPrefix(k, "locks/")] = p.Session
			}
		}
		if !slices.Contains(members, f.ID) {
			return errors.New("membership key lost")
		}
		for c := range f.held {
			if locks[c] != f.session {
				f.Log.Warn("lost the lock of a cluster; no longer watching it", "cluster", c)
				f.stop(c)
			}
		}
		share := (len(f.Clusters) + len(members) - 1) / len(members)
		for _, c := range f.giveBack(len(f.held)-share, members) {
			f.release(c)
		}
		free := f.free(locks, members, freeBefore)
		if need := share - len(f.held); need > 0 && len(free) > 0 {
			f.acquire(ctx, free, need)
			f.Log.Info("detector share", "id", f.ID, "detectors", len(members), "share", share, "watching", len(f.held))
		}
		clear(freeBefore)
		for _, c := range f.Clusters {
			if locks[c] == "" && f.held[c] == nil {
				freeBefore[c] = true
			}
		}
		sleep(ctx, 100*time.Millisecond) // coalesce a burst of changes into one more listing
	}
	return nil
}

// txnOps is Consul's limit of operations per transaction.
const txnOps = 64

// acquire takes up to need of the free clusters, a transaction of locks at a time; a batch
// that loses a race is retried one lock at a time.
func (f *Fleet) acquire(ctx context.Context, free []string, need int) {
	free = free[:min(need, len(free))]
	for len(free) > 0 && ctx.Err() == nil {
		batch := free[:min(txnOps, len(free))]
		free = free[len(batch):]
		ops := make(api.KVTxnOps, len(batch))
		for i, c := range batch {
			ops[i] = &api.KVTxnOp{Verb: api.KVLock, Key: f.key("locks", c), Value: []byte(f.ID), Session: f.session}
		}
		ok, _, _, err := f.Consul.KV().Txn(ops, (&api.QueryOptions{}).WithContext(ctx))
		for _, c := range batch {
			if err != nil || !ok {
				if got, _, aerr := f.Consul.KV().Acquire(&api.KVPair{Key: f.key("locks", c), Value: []byte(f.ID), Session: f.session}, nil); aerr != nil || !got {
					continue
				}
			}
			wctx, cancel := context.WithCancel(ctx)
			f.held[c] = cancel
			go f.Watch(wctx, c)
		}
		// A ramp, not a burst: thousands of watchers connecting (TLS handshakes) at once
		// would time out their own first probes.
		sleep(ctx, rampPause)
	}
}

// rampPause is the pause after each transaction's watchers start: about 1,300 clusters a second.
const rampPause = 50 * time.Millisecond

// free returns the clusters to take: first the free ones this detector is the preferred
// watcher of among the live members (rendezvous hashing, so that the survivors of a dead
// detector split its clusters without racing for the same locks), then any that were
// already free at the previous listing (their preferred watcher is at its share).
func (f *Fleet) free(locks map[string]string, members []string, freeBefore map[string]bool) []string {
	var mine, left []string
	for _, c := range f.Clusters {
		switch {
		case locks[c] != "":
		case preferred(c, members) == f.ID:
			mine = append(mine, c)
		case freeBefore[c]:
			left = append(left, c)
		}
	}
	byRank := func(l []string) { sort.Slice(l, func(i, j int) bool { return f.rank(l[i]) < f.rank(l[j]) }) }
	byRank(mine)
	byRank(left)
	return append(mine, left...)
}

// giveBack returns n held clusters to give back: first those another member is the
// preferred watcher of, then the ones this detector ranks last.
func (f *Fleet) giveBack(n int, members []string) []string {
	if n <= 0 {
		return nil
	}
	var held []string
	for c := range f.held {
		held = append(held, c)
	}
	mine := map[string]bool{}
	for _, c := range held {
		mine[c] = preferred(c, members) == f.ID
	}
	sort.Slice(held, func(i, j int) bool {
		if mine[held[i]] != mine[held[j]] {
			return !mine[held[i]]
		}
		return f.rank(held[i]) > f.rank(held[j])
	})
	return held[:n]
}

func (f *Fleet) rank(cluster string) uint64 { return hash(f.ID, cluster) }

// preferred is the member with the highest hash for the cluster.
func preferred(cluster string, members []string) string {
	best, top := "", uint64(0)
	for _, m := range members {
		if h := hash(m, cluster); best == "" || h > top || h == top && m < best {
			best, top = m, h
		}
	}
	return best
}

func hash(member, cluster string) uint64 {
	sum := sha256.Sum256([]byte(member + "/" + cluster))
	return binary.BigEndian.Uint64(sum[:8])
}

func (f *Fleet) stop(c string) {
	if cancel, ok := f.held[c]; ok {
		cancel()
		delete(f.held, c)
	}
}

func (f *Fleet) release(c string) {
	f.stop(c)
	_, _, _ = f.Consul.KV().Release(&api.KVPair{Key: f.key("locks", c), Session: f.session}, nil)
	f.Log.Info("gave a cluster back to the fleet", "cluster", c)
}

// releaseAll stops every watcher and destroys the session: its locks are free at once.
func (f *Fleet) releaseAll() {
	for c := range f.held {
		f.stop(c)
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

// Watchers returns which detector watches each cluster (from the locks).
func Watchers(ctx context.Context, c *api.Client, prefix string) (map[string]string, error) {
	pairs, _, err := c.KV().List(prefix+"/locks/", (&api.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, p := range pairs {
		if p.Session != "" {
			out[strings.TrimPrefix(p.Key, prefix+"/locks/")] = string(p.Value)
		}
	}
	return out, nil
}
