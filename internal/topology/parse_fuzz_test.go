package topology

import (
	"strings"
	"testing"

	"github.com/hashicorp/consul/api"
)

// fuzzKeys are the keys a fuzzed value is written to, beside a valid primary and epoch.
var fuzzKeys = []string{"primary", "replicas/node2", "evicted/node3", "epoch", "maintenance", "downtime/node1",
	"downtime/node2", "ack", "degraded", "held", "last_unplanned", "last_planned", "fenced/node3", "recoveries", "promotion/node2", "unknown"}

// notSafety are the keys that never decide whether the primary may be replaced: a bad
// value there is a problem to show, never a refusal (bad operator data must not stop a dead
// primary's failover).
var notSafety = map[string]bool{"downtime/node2": true, "ack": true, "degraded": true, "held": true, "last_unplanned": true,
	"last_planned": true, "fenced/node3": true, "promotion/node2": true, "unknown": true}

// Whatever a Consul value holds, reading the topology does not panic, every node it accepts
// is valid (no value can add a line to the HAProxy configuration), and a bad value in a key
// that does not decide safety is shown, never refused.
func FuzzParseTopology(f *testing.F) {
	f.Add(uint8(0), []byte(`{"name":"node1","ipv4":"127.0.1.1","port":3306,"zone":"a","server_id":101}`))
	f.Add(uint8(1), []byte(`{"name":"evil\n    server x 10.0.0.1:3306","ipv4":"127.0.1.2","port":3306}`))
	f.Add(uint8(2), []byte(`{"node":{"name":"node3","ipv4":"::ffff:127.0.0.1","port":3306},"epoch":3}`))
	f.Add(uint8(3), []byte("7; DROP TABLE app.writes"))
	f.Add(uint8(4), []byte("yes"))
	f.Add(uint8(5), []byte(`{"node":"node1","until":"2999-01-01T00:00:00Z"}`))
	f.Add(uint8(7), []byte(`{"by":"","at":"x"}`))
	f.Add(uint8(8), []byte(`{"primary":"node1","since":"2026-12-04T00:00:00Z"}`))
	f.Add(uint8(9), []byte(`{"at":"2026-12-04T00:00:00Z"}`))
	f.Fuzz(func(t *testing.T, which uint8, value []byte) {
		key := fuzzKeys[int(which)%len(fuzzKeys)]
		s := New(nil, "baton/clusters")
		base := "baton/clusters/demo/"
		pairs := api.KVPairs{
			{Key: base + "primary", Value: []byte(`{"name":"node1","ipv4":"127.0.1.1","port":3306,"zone":"a","server_id":101}`)},
			{Key: base + "epoch", Value: []byte("7"), ModifyIndex: 70},
		}
		if key == "primary" || key == "epoch" {
			pairs = pairs[:0:0]
			if key == "epoch" {
				pairs = append(pairs, &api.KVPair{Key: base + "primary", Value: []byte(`{"name":"node1","ipv4":"127.0.1.1","port":3306,"zone":"a","server_id":101}`)})
			} else {
				pairs = append(pairs, &api.KVPair{Key: base + "epoch", Value: []byte("7"), ModifyIndex: 70})
			}
		}
		pairs = append(pairs, &api.KVPair{Key: base + key, Value: value})
		tp, err := s.parse("demo", pairs)
		if err != nil {
			if notSafety[key] {
				t.Fatalf("a bad %s refused the topology: %v", key, err)
			}
			if !strings.Contains(err.Error(), key) {
				t.Fatalf("the refusal does not name the key %s: %v", key, err)
			}
			return
		}
		nodes := append([]Node{tp.Primary}, tp.Replicas...)
		for _, e := range tp.Evicted {
			nodes = append(nodes, e.Node)
		}
		for _, n := range nodes {
			if err := n.Validate(); err != nil {
				t.Fatalf("accepted an invalid node %+v: %v", n, err)
			}
			if strings.ContainsAny(n.Name+n.IPv4+n.IPv6+n.FQDN+n.Zone, " \t\r\n") {
				t.Fatalf("accepted a node with whitespace: %+v", n)
			}
		}
	})
}
