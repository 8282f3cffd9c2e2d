package config

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

// A cluster's settings survive the trip through Consul's JSON: encoded, marshalled,
// unmarshalled and decoded, they give the same config.
func TestSettingsRoundTrip(t *testing.T) {
	cc, err := DecodeSettings("demo", map[string]any{"durability": "cross_zone", "max_lag": "2s", "prefer": []any{"node1"},
		"haproxies":                   []any{map[string]any{"name": "a", "zone": "a", "writer": "127.0.2.1:3306", "reader": "127.0.2.1:3307"}},
		"prevent_cross_zone_failover": true})
	if err != nil {
		t.Fatal(err)
	}
	if cc.MaxLag != 2*time.Second || cc.CatchUpTimeout != 30*time.Second || cc.Durability != DurabilityCrossZone ||
		!cc.PreventCrossZoneFailover || cc.HAProxies[0].Reader != "127.0.2.1:3307" || cc.Flavor != FlavorMariaDB {
		t.Fatalf("decoded %+v", cc)
	}
	b, err := json.Marshal(EncodeSettings(cc))
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	back, err := DecodeSettings("demo", raw)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, cc) {
		t.Fatalf("round trip changed the config:\n%+v\n%+v", cc, back)
	}
}

func TestDecodeSettingsRefuses(t *testing.T) {
	for name, c := range map[string]struct {
		raw  map[string]any
		want string
	}{
		"unknown key":    {map[string]any{"max_lagg": "2s", "haproxies": []any{map[string]any{"name": "a", "writer": "h:1"}}}, "max_lagg"},
		"bad duration":   {map[string]any{"max_lag": "soon", "haproxies": []any{map[string]any{"name": "a", "writer": "h:1"}}}, "max_lag"},
		"no haproxy":     {map[string]any{}, "haproxies"},
		"bad durability": {map[string]any{"durability": "paxos", "haproxies": []any{map[string]any{"name": "a", "writer": "h:1"}}}, "durability"},
		"hooks":          {map[string]any{"hooks": []any{}}, "worker's config file"},
		"bad reader":     {map[string]any{"haproxies": []any{map[string]any{"name": "a", "writer": "h:1", "reader": "nope"}}}, "reader"},
	} {
		if _, err := DecodeSettings("demo", c.raw); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v; want an error naming %s", name, err, c.want)
		}
	}
}

func TestSetSetting(t *testing.T) {
	raw := map[string]any{"max_lag": "2s"}
	got, err := SetSetting(raw, "approvers", "[alice, bob]")
	if err != nil || !reflect.DeepEqual(got["approvers"], []any{"alice", "bob"}) || raw["approvers"] != nil {
		t.Fatalf("%v %v (the input must not change: %v)", got, err, raw)
	}
	if got, _ = SetSetting(got, "max_lag", ""); got["max_lag"] != nil {
		t.Errorf("an empty value must remove the key: %v", got)
	}
	if got, _ = SetSetting(got, "prevent_cross_zone_failover", "true"); got["prevent_cross_zone_failover"] != true {
		t.Errorf("bool: %v", got)
	}
	for _, k := range []string{"hooks", "max_lagg", "temporal.address"} {
		if _, err := SetSetting(raw, k, "1"); err == nil {
			t.Errorf("%s accepted", k)
		}
	}
	if _, err := SetSetting(raw, "max_lag", "[unclosed"); err == nil {
		t.Error("a value that is not YAML was accepted")
	}
}
