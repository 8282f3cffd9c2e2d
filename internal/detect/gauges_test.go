package detect

import (
	"context"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/baton-db/baton/internal/topology"
)

func node(name string) topology.Node {
	return topology.Node{Name: name, IPv4: "127.0.1." + name[len(name)-1:], Port: 3306}
}

func TestStateOf(t *testing.T) {
	now := time.Now()
	base := topology.Topology{Cluster: "c", Primary: node("n1"), Replicas: []topology.Node{node("n2")}}
	failed := base
	failed.LastFailover = &topology.Record{Epoch: 3, At: now}
	acked := failed
	acked.Ack = &topology.Ack{Epoch: 3, By: "op", At: now}
	oldAck := failed
	oldAck.Ack = &topology.Ack{Epoch: 2, By: "op", At: now}
	degraded := base
	degraded.Degraded = &topology.Degradation{Primary: "n1", Since: now}
	ended := base
	ended.Degraded = &topology.Degradation{Primary: "n1", Since: now, Until: now}
	held := base
	held.Held = &topology.Degradation{Primary: "n1", Since: now}
	off := topology.Recoveries{Disabled: true, By: "op", At: now}
	clusterOff := base
	clusterOff.Recoveries = &off
	clusterOn := base
	clusterOn.Recoveries = &topology.Recoveries{By: "op", At: now}
	cases := []struct {
		name   string
		t      topology.Topology
		global topology.Recoveries
		fenced []string
		want   clusterState
	}{
		{"healthy", base, topology.Recoveries{}, nil, clusterState{recoveries: true}},
		{"recoveries disabled", base, off, nil, clusterState{}},
		{"the cluster's recoveries disabled", clusterOff, topology.Recoveries{}, nil, clusterState{}},
		{"the cluster's recoveries enabled again", clusterOn, topology.Recoveries{}, nil, clusterState{recoveries: true}},
		{"the cluster's on, the global off", clusterOn, off, nil, clusterState{}},
		{"failover unacknowledged", failed, topology.Recoveries{}, nil, clusterState{recoveries: true, unacknowledged: true}},
		{"failover acknowledged", acked, topology.Recoveries{}, nil, clusterState{recoveries: true}},
		{"an older failover acknowledged", oldAck, topology.Recoveries{}, nil, clusterState{recoveries: true, unacknowledged: true}},
		{"degraded", degraded, topology.Recoveries{}, nil, clusterState{recoveries: true, degraded: true}},
		{"degradation ended", ended, topology.Recoveries{}, nil, clusterState{recoveries: true}},
		{"commits held", held, topology.Recoveries{}, nil, clusterState{recoveries: true, held: true}},
		{"a fenced node still out, one rejoined", base, topology.Recoveries{}, []string{"n3", "n2"}, clusterState{recoveries: true, fenced: 1}},
	}
	for _, c := range cases {
		if got := stateOf(c.t, c.global, c.fenced); got != c.want {
			t.Errorf("%s: got %+v, want %+v", c.name, got, c.want)
		}
	}
}

func TestFencedByCluster(t *testing.T) {
	keys := []string{
		"baton/clusters/demo/primary", "baton/clusters/demo/fenced/node1", "baton/clusters/demo/fenced/node3",
		"baton/clusters/demo2/fenced/node4", "baton/clusters/demo2/evicted/node4", "baton/clusters/demo/fenced/",
		"baton/recoveries", "baton/clusters/x/fenced/a/b",
	}
	want := map[string][]string{"demo": {"node1", "node3"}, "demo2": {"node4"}}
	if got := fencedByCluster("baton/clusters/", keys); !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestLagDue(t *testing.T) {
	now := time.Now()
	replicas := map[string][]string{"a": {"r1", "r2"}, "b": {"r3"}}
	lags := map[string]map[string]lagValue{
		"a": {"r1": {at: now.Add(-time.Second)}, "r2": {at: now.Add(-20 * time.Second)}},
	}
	got := lagDue(replicas, lags, now, 15*time.Second, 10)
	if want := [][2]string{{"b", "r3"}, {"a", "r2"}}; !reflect.DeepEqual(got, want) {
		t.Errorf("due: got %v, want %v (never read first, then the oldest; r1 is fresh)", got, want)
	}
	if got := lagDue(replicas, lags, now, 15*time.Second, 1); len(got) != 1 || got[0] != [2]string{"b", "r3"} {
		t.Errorf("a budget of 1: got %v", got)
	}
}

// The gauges reach /metrics under the names the alert rules and the dashboard use, and
// only for the clusters this detector watches.
func TestGaugesExport(t *testing.T) {
	reg := prometheus.NewRegistry()
	exp, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		t.Fatal(err)
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp))
	defer func() { _ = mp.Shutdown(context.Background()) }()
	now := time.Now()
	topo := topology.Topology{Cluster: "demo", Primary: node("n1"), Replicas: []topology.Node{node("n2")},
		Degraded: &topology.Degradation{Primary: "n1", Since: now}}
	g := &Gauges{Detector: "d1", Configured: func() int { return 2 }, Topologies: fakeTopos{"demo": topo, "other": topo},
		Recoveries: func(context.Context) (topology.Recoveries, error) { return topology.Recoveries{}, nil }}
	if err := g.Register(mp); err != nil {
		t.Fatal(err)
	}
	done := g.Watching("demo")
	g.refresh(context.Background())
	g.lags = map[string]map[string]lagValue{"demo": {"n2": {seconds: 1.5, at: now, ok: true}}}
	body := gather(t, reg)
	for _, want := range []string{
		`baton_clusters_watched{detector="d1"} 1`, `baton_clusters_configured{detector="d1"} 2`,
		`baton_recoveries_enabled{cluster="demo"} 1`, `baton_durability_degraded{cluster="demo"} 1`,
		`baton_unacknowledged_failovers{cluster="demo"} 0`, `baton_fenced_nodes{cluster="demo"} 0`,
		`baton_commits_held{cluster="demo"} 0`, `baton_replica_lag_seconds{cluster="demo",node="n2"} 1.5`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("no %s in\n%s", want, body)
		}
	}
	if strings.Contains(body, `cluster="other"`) {
		t.Errorf("a cluster this detector does not watch is exported:\n%s", body)
	}
	done()
	body = gather(t, reg)
	if !strings.Contains(body, `baton_clusters_watched{detector="d1"} 0`) || strings.Contains(body, `cluster="demo"`) {
		t.Errorf("a cluster no longer watched is still exported:\n%s", body)
	}
}

type fakeTopos map[string]topology.Topology

func (f fakeTopos) Read(_ context.Context, c string) (topology.Topology, error) {
	t, ok := f[c]
	if !ok {
		return t, topology.ErrUnknownCluster
	}
	return t, nil
}

// gather renders the registry's metrics as name{labels} value lines, without the
// exporter's scope labels.
func gather(t *testing.T, reg *prometheus.Registry) string {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				if !strings.HasPrefix(l.GetName(), "otel_") {
					labels = append(labels, l.GetName()+`="`+l.GetValue()+`"`)
				}
			}
			v := m.GetGauge().GetValue()
			b.WriteString(mf.GetName() + "{" + strings.Join(labels, ",") + "} " + strconv.FormatFloat(v, 'g', -1, 64) + "\n")
		}
	}
	return b.String()
}
