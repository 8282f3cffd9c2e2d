package topology

import (
	"strings"
	"testing"

	"github.com/hashicorp/consul/api"
)

// Bad operator data never stops a dead primary's failover: a key that does not decide
// whether the primary may be replaced is a problem, named with its fix; one that does
// fails the read and names the key.
func TestMalformedOperatorKeys(t *testing.T) {
	base := api.KVPairs{
		{Key: "baton/clusters/c/downtime/n1", Value: nil}, // placeholder, replaced per case
		{Key: "baton/clusters/c/epoch", Value: []byte("3")},
		{Key: "baton/clusters/c/primary", Value: []byte(`{"name":"n1","ipv4":"127.0.1.1","port":3306,"server_id":1}`)},
		{Key: "baton/clusters/c/replicas/n2", Value: []byte(`{"name":"n2","ipv4":"127.0.1.2","port":3306,"server_id":2}`)},
	}
	cases := []struct {
		key, value string
		fails      bool // the read fails (the key decides safety)
		want       string
	}{
		{"ack", `{"by":"x"}`, false, "baton/clusters/c/ack: not an acknowledgement"},
		{"ack", `not json`, false, "consul kv delete baton/clusters/c/ack"},
		{"last_unplanned", `{"kind":"unplanned"}`, false, "baton/clusters/c/last_unplanned: not a failover record"},
		{"last_planned", `[]`, false, "baton/clusters/c/last_planned: not a failover record"},
		{"downtime/n2", `{"node":"n2"}`, false, "baton/clusters/c/downtime/n2: not a downtime of that node"},
		{"downtime/n2", `{"node":"n3","until":"2030-01-01T00:00:00Z"}`, false, "the replica is not treated as downtimed"},
		{"downtime/n1", `{"node":"n1"}`, true, "names the primary"},
		{"maintenance", `yes`, true, "baton/clusters/c/maintenance"},
		{"epoch", `x`, true, "baton/clusters/c/epoch"},
		{"promotion/n2", `{"node":"n2","rule":"maybe"}`, false, "baton/clusters/c/promotion/n2: not a promotion rule of that node"},
		{"promotion/n2", `x`, false, "n2 is treated as must_not until it is set again"},
		{"recoveries", `{"disabled":"yes"}`, true, "baton/clusters/c/recoveries: not a recoveries switch"},
		{"recoveries", `{"disabled":true}`, true, "recoveries enable|disable --cluster c"},
	}
	s := &Store{prefix: "baton/clusters"}
	for _, c := range cases {
		pairs := api.KVPairs{}
		for _, p := range base[1:] {
			cp := *p
			if strings.HasSuffix(cp.Key, "/"+c.key) {
				continue
			}
			pairs = append(pairs, &cp)
		}
		pairs = append(pairs, &api.KVPair{Key: "baton/clusters/c/" + c.key, Value: []byte(c.value)})
		tp, err := s.parse("c", pairs)
		if c.fails {
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("%s=%s: read %v; want an error naming %q", c.key, c.value, err, c.want)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s=%s: the read failed (%v); a key that does not decide safety must not stop a failover", c.key, c.value, err)
			continue
		}
		if p := strings.Join(tp.Problems, "\n"); !strings.Contains(p, c.want) {
			t.Errorf("%s=%s: problems %q; want one containing %q", c.key, c.value, p, c.want)
		}
		if tp.Ack != nil || tp.LastFailover != nil || len(tp.Downtimes) != 0 {
			t.Errorf("%s=%s: a malformed key was used: ack %v, last failover %v, downtimes %v", c.key, c.value, tp.Ack, tp.LastFailover, tp.Downtimes)
		}
	}
}
