package topology

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/consul/api"
)

// Downtime takes a node out of automatic decisions until Until: a downtimed replica is
// never a candidate, a downtimed primary is not failed over automatically. It expires by
// itself. Kept at downtime/<node>.
type Downtime struct {
	Node   string    `json:"node"`
	Reason string    `json:"reason"`
	By     string    `json:"by"`
	Since  time.Time `json:"since"`
	Until  time.Time `json:"until"`
}

// Active reports whether the downtime holds at now.
func (d Downtime) Active(now time.Time) bool { return now.Before(d.Until) }

func (d Downtime) String() string {
	return fmt.Sprintf("downtimed by %s until %s: %s", d.By, d.Until.UTC().Format(time.RFC3339), d.Reason)
}

// Ack is a human's acknowledgement of the last unplanned failover (key ack).
type Ack struct {
	By         string    `json:"by"`
	At         time.Time `json:"at"`
	Comment    string    `json:"comment,omitempty"`
	Epoch      uint64    `json:"epoch"`
	WorkflowID string    `json:"workflow_id"`
}

// Recoveries is a switch of automatic failover: the global one, for every cluster (key
// <root>/recoveries beside the clusters' prefix), or a cluster's own (key recoveries in the
// cluster). Absent means enabled.
type Recoveries struct {
	Disabled bool      `json:"disabled"`
	By       string    `json:"by"`
	Reason   string    `json:"reason"`
	At       time.Time `json:"at"`
}

// Promotion is a human's run-time promotion rule for one node (key promotion/<node>): it
// overrides what the config's prefer and must_not say of that node.
type Promotion struct {
	Node string    `json:"node"`
	Rule string    `json:"rule"`
	By   string    `json:"by"`
	At   time.Time `json:"at"`
}

// PromotionRules are the rules, from most to least wanted as a new primary.
var PromotionRules = []string{"prefer", "neutral", "prefer_not", "must_not"}

// Downtimed returns node's downtime if one holds at now.
func (t Topology) Downtimed(node string, now time.Time) (Downtime, bool) {
	d, ok := t.Downtimes[node]
	return d, ok && d.Active(now)
}

// Unacknowledged reports whether the last unplanned failover awaits a human's `baton ack`.
func (t Topology) Unacknowledged() bool {
	return t.LastFailover != nil && (t.Ack == nil || t.Ack.Epoch < t.LastFailover.Epoch)
}

// parseOperator reads the operator keys of a cluster (downtime/<node>, ack). A malformed
// acknowledgement is a problem, not a refusal: it records a human's reading of a past
// failover and has no bearing on the next one. A malformed downtime is kept aside until the
// primary is known (badDowntimes).
func parseOperator(t *Topology, p *api.KVPair, k string) error {
	switch {
	case strings.HasPrefix(k, "downtime/"):
		var d Downtime
		if err := json.Unmarshal(p.Value, &d); err != nil || d.Until.IsZero() || d.Node != strings.TrimPrefix(k, "downtime/") {
			t.badDowntime = append(t.badDowntime, fmt.Sprintf("consul key %s: not a downtime of that node (%v)", p.Key, errText(err)))
			t.badDowntimeKey = append(t.badDowntimeKey, p.Key)
			t.badDowntimeNode = append(t.badDowntimeNode, strings.TrimPrefix(k, "downtime/"))
			return nil
		}
		if t.Downtimes == nil {
			t.Downtimes = map[string]Downtime{}
		}
		t.Downtimes[d.Node] = d
	case k == "degraded":
		if d := parsePeriod(t, p, "a degradation record", "durability is degraded"); d != nil {
			t.Degraded = d
			if d.Open() {
				t.Problems = append(t.Problems, fmt.Sprintf("durability degraded since %s: %s acknowledges writes %s", d.Since.Format(time.RFC3339), d.Primary, d.Reason))
			}
		}
	case k == "held":
		if d := parsePeriod(t, p, "a record of held commits", "commits are held"); d != nil {
			t.Held = d
			if d.Open() {
				t.Problems = append(t.Problems, fmt.Sprintf("commits held since %s: %s %s; writes wait (docs/runbook.md §5, \"held commits\")", d.Since.Format(time.RFC3339), d.Primary, d.Reason))
			}
		}
	case strings.HasPrefix(k, "promotion/"):
		node := strings.TrimPrefix(k, "promotion/")
		var r Promotion
		if t.Promotions == nil {
			t.Promotions = map[string]Promotion{}
		}
		if err := json.Unmarshal(p.Value, &r); err != nil || r.Node != node || !slices.Contains(PromotionRules, r.Rule) {
			// A human's rule that cannot be read may have said must_not: the node is not
			// promoted until the key is fixed. A failover still has every other replica.
			t.Promotions[node] = Promotion{Node: node, Rule: "must_not", By: "(unreadable key)"}
			t.Problems = append(t.Problems, fmt.Sprintf("consul key %s: not a promotion rule of that node (%v): %s is treated as must_not until it is set again with `baton node set --cluster %s --host %s --promotion RULE` or deleted (`consul kv delete %s`)",
				p.Key, errText(err), node, t.Cluster, node, p.Key))
			return nil
		}
		t.Promotions[node] = r
	case k == "recoveries":
		// A human's hold on this cluster's failovers: Baton does not guess it away.
		var r Recoveries
		if err := json.Unmarshal(p.Value, &r); err != nil || r.At.IsZero() || r.By == "" {
			return fmt.Errorf("consul key %s: not a recoveries switch (%v): Baton will not guess whether a human holds this cluster's failovers; set it with `baton recoveries enable|disable --cluster %s`", p.Key, errText(err), t.Cluster)
		}
		t.Recoveries = &r
	case k == "ack":
		var a Ack
		if err := json.Unmarshal(p.Value, &a); err != nil || a.At.IsZero() || a.By == "" {
			t.Problems = append(t.Problems, fmt.Sprintf("consul key %s: not an acknowledgement (%v), ignored; set it with `baton ack` or delete it (`consul kv delete %s`)", p.Key, errText(err), p.Key))
			return nil
		}
		t.Ack = &a
	}
	return nil
}

// badDowntimes decides on the malformed downtimes once the primary is known. One of the
// primary may be a human holding its failover, so the read fails and names the key; one
// of a replica is a problem, ignored.
func badDowntimes(t *Topology) error {
	for i, node := range t.badDowntimeNode {
		if node == t.Primary.Name {
			return fmt.Errorf("%s, and it names the primary: Baton will not guess whether a human holds its failover; delete it (`consul kv delete %s`) or replace it with `baton downtime`", t.badDowntime[i], t.badDowntimeKey[i])
		}
		t.Problems = append(t.Problems, fmt.Sprintf("%s, ignored (the replica is not treated as downtimed); delete it (`consul kv delete %s`) or replace it with `baton downtime`", t.badDowntime[i], t.badDowntimeKey[i]))
	}
	t.badDowntime, t.badDowntimeNode, t.badDowntimeKey = nil, nil, nil
	return nil
}

func errText(err error) string {
	if err == nil {
		return "a required field is missing"
	}
	return err.Error()
}

// SetDowntime writes a node's downtime.
func (s *Store) SetDowntime(ctx context.Context, cluster string, d Downtime) error {
	if !tokenRE.MatchString(d.Node) {
		return fmt.Errorf("node %q is not a valid node name", d.Node)
	}
	b, _ := json.Marshal(d)
	return s.put(ctx, cluster, "downtime/"+d.Node, b)
}

// EndDowntime removes a node's downtime.
func (s *Store) EndDowntime(ctx context.Context, cluster, node string) error {
	return s.remove(ctx, cluster, "downtime/"+node)
}

// Degradation records a primary that acknowledged writes without the acknowledgement the
// durability policy promises (semi-sync fell back to asynchronous, or no replica may
// acknowledge): such writes may exist on that primary only.
type Degradation struct {
	Primary string    `json:"primary"`
	Reason  string    `json:"reason"`
	Since   time.Time `json:"since"`
	Until   time.Time `json:"until,omitzero"`
}

// Open reports whether the degradation is still going on.
func (d Degradation) Open() bool { return d.Until.IsZero() }

// parsePeriod reads a degraded or held record; a malformed one is a problem (what it is not,
// and that the detector writes it again while the condition lasts), and nil.
func parsePeriod(t *Topology, p *api.KVPair, what, while string) *Degradation {
	var d Degradation
	if err := json.Unmarshal(p.Value, &d); err != nil || d.Since.IsZero() || d.Primary == "" {
		t.Problems = append(t.Problems, fmt.Sprintf("consul key %s: not %s (%v), ignored; the detector writes it again while %s, or delete it (`consul kv delete %s`)", p.Key, what, errText(err), while, p.Key))
		return nil
	}
	return &d
}

// RecordDegradation writes degraded.
func (s *Store) RecordDegradation(ctx context.Context, cluster string, d Degradation) error {
	b, _ := json.Marshal(d)
	return s.put(ctx, cluster, "degraded", b)
}

// RecordHeld writes held.
func (s *Store) RecordHeld(ctx context.Context, cluster string, d Degradation) error {
	b, _ := json.Marshal(d)
	return s.put(ctx, cluster, "held", b)
}

// Acknowledge writes the acknowledgement of the last unplanned failover.
func (s *Store) Acknowledge(ctx context.Context, cluster string, a Ack) error {
	b, _ := json.Marshal(a)
	return s.put(ctx, cluster, "ack", b)
}

func (s *Store) recoveriesKey() string { return path.Join(path.Dir(s.prefix), "recoveries") }

// Recoveries reads the global switch. A malformed value is an error, not "enabled".
func (s *Store) Recoveries(ctx context.Context) (Recoveries, error) {
	ctx, cancel := context.WithTimeout(ctx, consulTimeout)
	defer cancel()
	p, _, err := s.c.KV().Get(s.recoveriesKey(), (&api.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return Recoveries{}, fmt.Errorf("read %s from Consul: %w", s.recoveriesKey(), s.explain(err))
	}
	var r Recoveries
	if p == nil {
		return r, nil
	}
	if err := json.Unmarshal(p.Value, &r); err != nil {
		return r, fmt.Errorf("consul key %s: %v; set it with `baton recoveries enable|disable`", p.Key, err)
	}
	return r, nil
}

// SetRecoveries writes the global switch.
func (s *Store) SetRecoveries(ctx context.Context, r Recoveries) error {
	b, _ := json.Marshal(r)
	return s.write(ctx, "(all)", s.recoveriesKey(), b)
}

// SetPromotion writes a node's promotion rule.
func (s *Store) SetPromotion(ctx context.Context, cluster string, r Promotion) error {
	if !tokenRE.MatchString(r.Node) || !slices.Contains(PromotionRules, r.Rule) {
		return fmt.Errorf("promotion rule %q of node %q: want a node name and one of %s", r.Rule, r.Node, strings.Join(PromotionRules, ", "))
	}
	b, _ := json.Marshal(r)
	return s.put(ctx, cluster, "promotion/"+r.Node, b)
}

// SetClusterRecoveries writes a cluster's own switch.
func (s *Store) SetClusterRecoveries(ctx context.Context, cluster string, r Recoveries) error {
	b, _ := json.Marshal(r)
	return s.put(ctx, cluster, "recoveries", b)
}

// Clusters lists the clusters Consul has, sorted.
func (s *Store) Clusters(ctx context.Context) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, consulTimeout)
	defer cancel()
	keys, _, err := s.c.KV().Keys(s.prefix+"/", "/", (&api.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("list clusters under %s in Consul: %w", s.prefix, s.explain(err))
	}
	var out []string
	for _, k := range keys {
		if name := strings.Trim(strings.TrimPrefix(k, s.prefix+"/"), "/"); name != "" && strings.HasSuffix(k, "/") {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out, nil
}

// remove deletes one key of a cluster, bounded by consulTimeout.
func (s *Store) remove(ctx context.Context, cluster, key string) error {
	ctx, cancel := context.WithTimeout(ctx, consulTimeout)
	defer cancel()
	k := s.key(cluster, key)
	if _, err := s.c.KV().Delete(k, (&api.WriteOptions{}).WithContext(ctx)); err != nil {
		return fmt.Errorf("delete %s (cluster %s) from Consul: %w", k, cluster, s.explain(err))
	}
	return nil
}

// ErrExists means Consul already has the cluster.
var ErrExists = errors.New("cluster already in Consul")

// Seed writes a new cluster's topology at epoch 1, in one transaction that fails if the
// cluster exists: `baton cluster add` never overwrites one.
func (s *Store) Seed(ctx context.Context, cluster string, primary Node, replicas []Node) error {
	ctx, cancel := context.WithTimeout(ctx, consulTimeout)
	defer cancel()
	for _, n := range append([]Node{primary}, replicas...) {
		if err := n.Validate(); err != nil {
			return fmt.Errorf("refusing to seed node %q of %s: %w", n.Name, cluster, err)
		}
	}
	val := func(v any) []byte { b, _ := json.Marshal(v); return b }
	ops := api.TxnOps{
		{KV: &api.KVTxnOp{Verb: api.KVCheckNotExists, Key: s.key(cluster, "primary")}},
		{KV: &api.KVTxnOp{Verb: api.KVCheckNotExists, Key: s.key(cluster, "epoch")}},
		{KV: &api.KVTxnOp{Verb: api.KVSet, Key: s.key(cluster, "primary"), Value: val(primary)}},
		{KV: &api.KVTxnOp{Verb: api.KVSet, Key: s.key(cluster, "epoch"), Value: []byte("1")}},
		{KV: &api.KVTxnOp{Verb: api.KVSet, Key: s.key(cluster, "maintenance"), Value: []byte("false")}},
	}
	for _, r := range replicas {
		ops = append(ops, &api.TxnOp{KV: &api.KVTxnOp{Verb: api.KVSet, Key: s.key(cluster, "replicas", r.Name), Value: val(r)}})
	}
	ok, _, _, err := s.c.Txn().Txn(ops, (&api.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return fmt.Errorf("seed %s in Consul: %w", cluster, s.explain(err))
	}
	if !ok {
		return fmt.Errorf("%w: %s has a primary or an epoch under %s; `baton cluster remove --name %s` first if it is to be replaced",
			ErrExists, cluster, s.key(cluster), cluster)
	}
	return nil
}

// Remove deletes a cluster's catalog entry, its topology and its agents' reports.
func (s *Store) Remove(ctx context.Context, cluster string) error {
	ctx, cancel := context.WithTimeout(ctx, consulTimeout)
	defer cancel()
	// The catalog entry first: the fleet stops watching, serving and routing the cluster
	// before its topology goes.
	if _, err := s.c.KV().Delete(s.catalogKey(cluster), (&api.WriteOptions{}).WithContext(ctx)); err != nil {
		return fmt.Errorf("delete %s from Consul: %w", s.catalogKey(cluster), s.explain(err))
	}
	for _, k := range []string{s.key(cluster) + "/", path.Dir(s.ReachKey(cluster, "x")) + "/"} {
		if _, err := s.c.KV().DeleteTree(k, (&api.WriteOptions{}).WithContext(ctx)); err != nil {
			return fmt.Errorf("delete %s from Consul: %w", k, s.explain(err))
		}
	}
	return nil
}
