// Package topology is the Consul KV adapter: Consul is the single source of truth for
// who is primary. Layout under <prefix>/<cluster>/ (see ARCHITECTURE.md):
//
//	primary          JSON Node
//	replicas/<name>  JSON Node
//	evicted/<name>   JSON Eviction, never re-added automatically
//	epoch            decimal, bumped by every change of primary (the fencing token)
//	maintenance      "true" pauses automatic failover
//	last_unplanned   JSON record of the last unplanned failover (the anti-flap clock)
//	last_planned     JSON record of the last planned switchover
package topology

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/consul/api"
)

// Node is one MySQL server as Consul KV knows it.
type Node struct {
	Name     string `json:"name"`
	FQDN     string `json:"fqdn"`
	IPv4     string `json:"ipv4"`
	IPv6     string `json:"ipv6"`
	Port     int    `json:"port"`
	Zone     string `json:"zone"`
	ServerID uint32 `json:"server_id"`
}

// Addr is the node's host:port over IPv4.
func (n Node) Addr() string { return net.JoinHostPort(n.IPv4, strconv.Itoa(n.Port)) }

// Eviction records a node taken out of the cluster by an unplanned failover.
type Eviction struct {
	Node   Node      `json:"node"`
	Reason string    `json:"reason"`
	Epoch  uint64    `json:"epoch"`
	At     time.Time `json:"at"`
	// Unique lists GTIDs the node may hold that no surviving node has, if they could be read.
	Unique string `json:"unique_gtids,omitempty"`
}

// Topology is one consistent read of a cluster.
type Topology struct {
	Cluster     string
	Primary     Node
	Replicas    []Node
	Evicted     []Eviction
	Epoch       uint64
	Maintenance bool
	// EpochIndex is the ModifyIndex of the epoch key: the CAS token for Publish.
	EpochIndex uint64
	// LastFailover is the last unplanned failover: the anti-flap period counts from it.
	LastFailover *Record
	// LastSwitchover is the last planned switchover.
	LastSwitchover *Record
	// Downtimes are the nodes a human took out of automatic decisions (expired ones too).
	Downtimes map[string]Downtime
	// Ack is the acknowledgement of a failover, by `baton ack`.
	Ack *Ack
	// Degraded is the last time the primary acknowledged writes without the acknowledgement
	// the durability policy promises (open while Until is zero).
	Degraded *Degradation
	// Held is the last time the primary held commits waiting for an acknowledgement that
	// did not come (writes unavailable, not degraded; open while Until is zero).
	Held *Degradation
	// Promotions are the run-time promotion rules by node (`baton node set --promotion`),
	// which override the config's prefer and must_not.
	Promotions map[string]Promotion
	// Recoveries is this cluster's own switch of automatic failover (`baton recoveries
	// disable --cluster`); nil means enabled. The global switch is read apart.
	Recoveries *Recoveries
	// Problems name the keys that could not be read and were ignored because they do not
	// decide whether the primary may be replaced (an acknowledgement, a failover record, a
	// replica's downtime), each with the command that fixes it. A bad key that does decide
	// it (the primary, the epoch, maintenance, the primary's downtime) fails the read.
	Problems []string
	// malformed downtimes, decided once the primary is known
	badDowntime, badDowntimeNode, badDowntimeKey []string
}

// Find returns the member (primary or replica) called name or with address name.
func (t Topology) Find(name string) (Node, bool) {
	for _, n := range append([]Node{t.Primary}, t.Replicas...) {
		if n.Name == name || n.Addr() == name {
			return n, true
		}
	}
	return Node{}, false
}

// HasServerID reports whether a member or an evicted node has server_id id.
func (t Topology) HasServerID(id uint32) bool {
	for _, n := range append([]Node{t.Primary}, t.Replicas...) {
		if n.ServerID == id {
			return true
		}
	}
	for _, e := range t.Evicted {
		if e.Node.ServerID == id {
			return true
		}
	}
	return false
}

// Record is what RecordResult stores after a switchover or failover.
type Record struct {
	Kind       string            `json:"kind"`
	WorkflowID string            `json:"workflow_id"`
	From       string            `json:"from"`
	To         string            `json:"to"`
	Epoch      uint64            `json:"epoch"`
	Started    time.Time         `json:"started"`
	At         time.Time         `json:"at"`
	Steps      map[string]string `json:"steps,omitempty"`
}

// consulTimeout bounds every Consul call: a hung Consul must fail a step, not stall it.
const consulTimeout = 3 * time.Second

// ErrUnknownCluster means Consul has no topology for the cluster.
var ErrUnknownCluster = errors.New("unknown cluster")

// ErrConflict means the epoch changed since it was read: someone else published.
var ErrConflict = errors.New("topology changed since it was read (CAS conflict)")

// Store reads and writes topologies.
type Store struct {
	c      *api.Client
	prefix string
}

// New returns a Store on client under prefix (for example "baton/clusters").
func New(c *api.Client, prefix string) *Store {
	return &Store{c: c, prefix: strings.TrimSuffix(prefix, "/")}
}

// Client exposes the Consul client.
func (s *Store) Client() *api.Client { return s.c }

func (s *Store) key(cluster string, parts ...string) string {
	return strings.Join(append([]string{s.prefix, cluster}, parts...), "/")
}

// explain adds the fix to Consul's refusal of Baton's ACL token.
func (s *Store) explain(err error) error {
	var se api.StatusError
	if errors.As(err, &se) && se.Code == 403 {
		return fmt.Errorf("%w: Consul refused Baton's ACL token; set CONSUL_HTTP_TOKEN in secrets_file to a token "+
			"whose policy allows key_prefix %q write (the topologies, the catalog, the leases), service \"haproxy\" read and node_prefix \"\" read", err, path.Dir(s.prefix)+"/")
	}
	return err
}

// Read returns the cluster's topology from one consistent KV listing.
func (s *Store) Read(ctx context.Context, cluster string) (Topology, error) {
	ctx, cancel := context.WithTimeout(ctx, consulTimeout)
	defer cancel()
	q := (&api.QueryOptions{RequireConsistent: true}).WithContext(ctx)
	var pairs api.KVPairs
	err := untilSettled(ctx, func() (err error) {
		pairs, _, err = s.c.KV().List(s.key(cluster)+"/", q)
		return err
	})
	if err != nil {
		return Topology{}, fmt.Errorf("read topology of %s from Consul: %w", cluster, s.explain(err))
	}
	return s.parse(cluster, pairs)
}

// untilSettled runs a read again, every 100 ms within ctx, while Consul answers with a
// server-side error: for a few seconds after its raft leader dies, Consul refuses reads at
// once (500: no cluster leader, or the dead leader's address refused) instead of waiting
// for the election, and a failover's first step must not fail on that.
func untilSettled(ctx context.Context, read func() error) error {
	for {
		err := read()
		var se api.StatusError
		if err == nil || !errors.As(err, &se) || se.Code < 500 {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// decodeNode reads and validates one node key.
func decodeNode(p *api.KVPair, n *Node) error {
	if err := json.Unmarshal(p.Value, n); err != nil {
		return fmt.Errorf("consul key %s: %w", p.Key, err)
	}
	if err := n.Validate(); err != nil {
		return fmt.Errorf("consul key %s: %w; fix the key (Baton acts on no topology it cannot trust)", p.Key, err)
	}
	return nil
}

// parse builds a cluster's topology from its KV pairs.
func (s *Store) parse(cluster string, pairs api.KVPairs) (Topology, error) {
	var err error
	t := Topology{Cluster: cluster}
	var havePrimary bool
	base := s.key(cluster) + "/"
	for _, p := range pairs {
		k := strings.TrimPrefix(p.Key, base)
		switch {
		case k == "primary":
			if err := decodeNode(p, &t.Primary); err != nil {
				return t, err
			}
			havePrimary = true
		case strings.HasPrefix(k, "replicas/"):
			var n Node
			if err := decodeNode(p, &n); err != nil {
				return t, err
			}
			t.Replicas = append(t.Replicas, n)
		case strings.HasPrefix(k, "evicted/"):
			var e Eviction
			if err := json.Unmarshal(p.Value, &e); err != nil {
				return t, fmt.Errorf("consul key %s: %w", p.Key, err)
			}
			if err := e.Node.Validate(); err != nil {
				return t, fmt.Errorf("consul key %s: %w; fix or delete the key", p.Key, err)
			}
			t.Evicted = append(t.Evicted, e)
		case k == "epoch":
			t.Epoch, err = strconv.ParseUint(strings.TrimSpace(string(p.Value)), 10, 64)
			if err != nil {
				return t, fmt.Errorf("consul key %s: %w", p.Key, err)
			}
			t.EpochIndex = p.ModifyIndex
		case k == "maintenance":
			// A value that is neither true nor false is refused, not read as "off".
			switch v := strings.TrimSpace(string(p.Value)); v {
			case "true", "false", "":
				t.Maintenance = v == "true"
			default:
				return t, fmt.Errorf("consul key %s: %q is not true or false; set it with `baton maintenance`", p.Key, v)
			}
		case k == "last_unplanned" || k == "last_planned":
			var r Record
			if err := json.Unmarshal(p.Value, &r); err != nil || r.At.IsZero() {
				// Not read as "no failover yet" in silence: the anti-flap period is unknown,
				// which status and the detector say; a dead primary is still failed over.
				t.Problems = append(t.Problems, fmt.Sprintf("consul key %s: not a failover record (%v), ignored (no anti-flap period from it); delete it (`consul kv delete %s`) or write a valid one", p.Key, errText(err), p.Key))
				continue
			}
			if k == "last_unplanned" {
				t.LastFailover = &r
			} else {
				t.LastSwitchover = &r
			}
		default:
			if err := parseOperator(&t, p, k); err != nil {
				return t, err
			}
		}
	}
	if !havePrimary {
		return t, fmt.Errorf("%w %q: Consul has no key %s", ErrUnknownCluster, cluster, s.key(cluster, "primary"))
	}
	if err := badDowntimes(&t); err != nil {
		return t, err
	}
	sort.Slice(t.Replicas, func(i, j int) bool { return t.Replicas[i].Name < t.Replicas[j].Name })
	sort.Slice(t.Evicted, func(i, j int) bool { return t.Evicted[i].Node.Name < t.Evicted[j].Node.Name })
	return t, nil
}

// Change is a new primary and replica set, published atomically.
type Change struct {
	Primary  Node
	Replicas []Node
	Evict    []Eviction
	// Record, if set, becomes last_<kind> (it starts the anti-flap period of a failover).
	Record *Record
}

// Publish writes c in one Consul transaction, if and only if the epoch key still has
// modify index epochIndex, and bumps the epoch. It returns the new epoch.
func (s *Store) Publish(ctx context.Context, cluster string, epoch, epochIndex uint64, c Change) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, consulTimeout)
	defer cancel()
	for _, n := range append([]Node{c.Primary}, c.Replicas...) {
		if err := n.Validate(); err != nil {
			return 0, fmt.Errorf("refusing to publish node %q of %s: %w", n.Name, cluster, err)
		}
	}
	newEpoch := epoch + 1
	val := func(v any) []byte { b, _ := json.Marshal(v); return b }
	ops := api.TxnOps{
		{KV: &api.KVTxnOp{Verb: api.KVCheckIndex, Key: s.key(cluster, "epoch"), Index: epochIndex}},
		{KV: &api.KVTxnOp{Verb: api.KVSet, Key: s.key(cluster, "epoch"), Value: []byte(strconv.FormatUint(newEpoch, 10))}},
		{KV: &api.KVTxnOp{Verb: api.KVSet, Key: s.key(cluster, "primary"), Value: val(c.Primary)}},
		{KV: &api.KVTxnOp{Verb: api.KVDeleteTree, Key: s.key(cluster, "replicas") + "/"}},
	}
	for _, r := range c.Replicas {
		ops = append(ops, &api.TxnOp{KV: &api.KVTxnOp{Verb: api.KVSet, Key: s.key(cluster, "replicas", r.Name), Value: val(r)}})
	}
	for _, e := range c.Evict {
		e.Epoch = newEpoch
		ops = append(ops, &api.TxnOp{KV: &api.KVTxnOp{Verb: api.KVSet, Key: s.key(cluster, "evicted", e.Node.Name), Value: val(e)}})
	}
	if c.Record != nil {
		r := *c.Record
		r.Epoch = newEpoch
		ops = append(ops, &api.TxnOp{KV: &api.KVTxnOp{Verb: api.KVSet, Key: s.key(cluster, "last_"+r.Kind), Value: val(r)}})
	}
	// The new primary is never both primary and evicted.
	ops = append(ops, &api.TxnOp{KV: &api.KVTxnOp{Verb: api.KVDelete, Key: s.key(cluster, "evicted", c.Primary.Name)}})
	ok, resp, _, err := s.c.Txn().Txn(ops, (&api.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return 0, fmt.Errorf("publish topology of %s to Consul: %w", cluster, s.explain(err))
	}
	if !ok {
		var msgs []string
		for _, e := range resp.Errors {
			msgs = append(msgs, e.What)
		}
		return 0, fmt.Errorf("publish topology of %s at epoch %d: %w: %s", cluster, epoch, ErrConflict, strings.Join(msgs, "; "))
	}
	return newEpoch, nil
}

// Readmit removes a node's eviction record and adds it to the replica pool, with CAS.
func (s *Store) Readmit(ctx context.Context, cluster string, epochIndex uint64, n Node) error {
	b, _ := json.Marshal(n)
	ops := api.TxnOps{
		{KV: &api.KVTxnOp{Verb: api.KVCheckIndex, Key: s.key(cluster, "epoch"), Index: epochIndex}},
		{KV: &api.KVTxnOp{Verb: api.KVSet, Key: s.key(cluster, "replicas", n.Name), Value: b}},
		{KV: &api.KVTxnOp{Verb: api.KVDelete, Key: s.key(cluster, "evicted", n.Name)}},
	}
	ok, resp, _, err := s.c.Txn().Txn(ops, (&api.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return fmt.Errorf("readmit %s: %w", n.Name, err)
	}
	if !ok {
		return fmt.Errorf("readmit %s: %w (%v)", n.Name, ErrConflict, resp.Errors)
	}
	return nil
}

// Detach takes a replica out of the pool and records why, with CAS on the epoch: the reader
// pool drops it, no choice considers it, and `baton rejoin` takes it back.
func (s *Store) Detach(ctx context.Context, cluster string, epochIndex uint64, e Eviction) error {
	b, _ := json.Marshal(e)
	ops := api.TxnOps{
		{KV: &api.KVTxnOp{Verb: api.KVCheckIndex, Key: s.key(cluster, "epoch"), Index: epochIndex}},
		{KV: &api.KVTxnOp{Verb: api.KVDelete, Key: s.key(cluster, "replicas", e.Node.Name)}},
		{KV: &api.KVTxnOp{Verb: api.KVSet, Key: s.key(cluster, "evicted", e.Node.Name), Value: b}},
	}
	ctx, cancel := context.WithTimeout(ctx, consulTimeout)
	defer cancel()
	ok, resp, _, err := s.c.Txn().Txn(ops, (&api.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return fmt.Errorf("remove %s from %s: %w", e.Node.Name, cluster, s.explain(err))
	}
	if !ok {
		return fmt.Errorf("remove %s from %s: %w (%v)", e.Node.Name, cluster, ErrConflict, resp.Errors)
	}
	return nil
}

// RecordResult stores r as the cluster's last failover of its kind (planned or unplanned).
func (s *Store) RecordResult(ctx context.Context, cluster string, r Record) error {
	b, _ := json.Marshal(r)
	return s.put(ctx, cluster, "last_"+r.Kind, b)
}

// put writes one key of a cluster, bounded by consulTimeout; its error names the cluster,
// the key and, for an ACL refusal, the fix.
func (s *Store) put(ctx context.Context, cluster, key string, value []byte) error {
	return s.write(ctx, cluster, s.key(cluster, key), value)
}

// write puts value at the full key k, for cluster (named in the error).
func (s *Store) write(ctx context.Context, cluster, k string, value []byte) error {
	ctx, cancel := context.WithTimeout(ctx, consulTimeout)
	defer cancel()
	if _, err := s.c.KV().Put(&api.KVPair{Key: k, Value: value}, (&api.WriteOptions{}).WithContext(ctx)); err != nil {
		return fmt.Errorf("write %s (cluster %s) to Consul: %w", k, cluster, s.explain(err))
	}
	return nil
}

// Fencing is the record of a node Baton made read-only after it answered writable while
// Consul named another primary (an evicted primary that came back, say).
type Fencing struct {
	Node     Node      `json:"node"`
	At       time.Time `json:"at"`
	Reason   string    `json:"reason"`
	Sessions int       `json:"sessions_ended"`
	By       string    `json:"by"`
}

// RecordFencing writes fenced/<node>.
func (s *Store) RecordFencing(ctx context.Context, cluster string, f Fencing) error {
	b, _ := json.Marshal(f)
	return s.put(ctx, cluster, "fenced/"+f.Node.Name, b)
}

// SetMaintenance sets or clears the maintenance flag.
func (s *Store) SetMaintenance(ctx context.Context, cluster string, on bool) error {
	return s.put(ctx, cluster, "maintenance", []byte(strconv.FormatBool(on)))
}

// HAProxyHost is one remote HAProxy host registered in Consul, with its checks.
type HAProxyHost struct {
	ID     string
	Zone   string
	Writer string
	// Failing names every check that is not passing: the service's, and the node's (its
	// Consul agent, without which consul-template there sees no change).
	Failing []string
}

// HAProxies returns the health of every remote HAProxy host registered as service "haproxy".
func (s *Store) HAProxies(ctx context.Context) ([]HAProxyHost, error) {
	ctx, cancel := context.WithTimeout(ctx, consulTimeout)
	defer cancel()
	entries, _, err := s.c.Health().Service("haproxy", "", false, (&api.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("ask Consul for haproxy health: %w", s.explain(err))
	}
	var out []HAProxyHost
	for _, e := range entries {
		h := HAProxyHost{ID: e.Service.ID, Zone: e.Service.Meta["zone"], Writer: e.Service.Meta["writer"]}
		for _, c := range e.Checks {
			switch {
			case c.Status == api.HealthPassing:
			case c.ServiceID == "": // a node check: the host's Consul agent (serfHealth) or its maintenance
				h.Failing = append(h.Failing, fmt.Sprintf("the Consul agent of node %s: %s is %s", e.Node.Node, c.Name, c.Status))
			default:
				h.Failing = append(h.Failing, fmt.Sprintf("%s is %s", c.Name, c.Status))
			}
		}
		out = append(out, h)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// Reach is a heartbeat agent's report of whether its host reaches the primary. It is a
// replica's own connect attempt, which the detector asks before declaring a primary dead.
type Reach struct {
	Primary string    `json:"primary"`
	OK      bool      `json:"ok"`
	Since   time.Time `json:"since"` // when OK last changed
	At      time.Time `json:"at"`    // when the agent last said so
	Error   string    `json:"error,omitempty"`
}

// ReachMaxAge is how old a reach report may be and still count: an agent repeats its report
// every 5 s, so an older one comes from an agent that stopped.
const ReachMaxAge = 15 * time.Second

// Fresh reports whether r is recent enough to count as a vote.
func (r Reach) Fresh(now time.Time) bool {
	at := r.At
	if at.IsZero() {
		at = r.Since
	}
	return now.Sub(at) <= ReachMaxAge
}

// ReportReach stores node's reach report (written by its agent on every change).
func (s *Store) ReportReach(ctx context.Context, cluster, node string, r Reach) error {
	b, _ := json.Marshal(r)
	return s.write(ctx, cluster, s.ReachKey(cluster, node), b)
}

// ReachKey is where node's agent reports. Reach reports live beside the clusters' prefix,
// not under it: an agent repeats its report every few seconds, and that must not wake the
// blocking queries on the topology (the detector's cache, consul-template).
func (s *Store) ReachKey(cluster, node string) string {
	return path.Join(path.Dir(s.prefix), "reach", cluster, node)
}

// Reaches returns every agent's latest reach report by node name.
func (s *Store) Reaches(ctx context.Context, cluster string) (map[string]Reach, error) {
	ctx, cancel := context.WithTimeout(ctx, consulTimeout)
	defer cancel()
	dir := path.Dir(s.ReachKey(cluster, "x")) + "/"
	pairs, _, err := s.c.KV().List(dir, (&api.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("read %s (cluster %s) from Consul: %w", dir, cluster, s.explain(err))
	}
	out := map[string]Reach{}
	for _, p := range pairs {
		var r Reach
		if json.Unmarshal(p.Value, &r) == nil {
			out[strings.TrimPrefix(p.Key, dir)] = r
		}
	}
	return out, nil
}

// RecordEviction stores (or updates) an eviction record.
func (s *Store) RecordEviction(ctx context.Context, cluster string, e Eviction) error {
	b, _ := json.Marshal(e)
	return s.put(ctx, cluster, "evicted/"+e.Node.Name, b)
}
