package detect

import (
	"context"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/metric/noop"

	"github.com/baton-db/baton/internal/config"
	"github.com/baton-db/baton/internal/flavor"
	"github.com/baton-db/baton/internal/mysqladmin"
	"github.com/baton-db/baton/internal/telemetry"
	"github.com/baton-db/baton/internal/topology"
)

type countingConsul struct {
	t     topology.Topology
	reads atomic.Int64
}

func (c *countingConsul) Read(context.Context, string) (topology.Topology, error) {
	c.reads.Add(1)
	return c.t, nil
}
func (c *countingConsul) Reaches(context.Context, string) (map[string]topology.Reach, error) {
	return nil, nil
}
func (c *countingConsul) Recoveries(context.Context) (topology.Recoveries, error) {
	return topology.Recoveries{}, nil
}

// closedAddr is a loopback port nothing listens on: connects are refused at once.
func closedAddr(t *testing.T) (string, int) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	ln.Close()
	p, _ := strconv.Atoi(port)
	return "127.0.0.1", p
}

// While the primary is unreachable and no replica confirms, the watcher asks again within
// confirm_window, less and less often: in a mass outage every troubled watcher asks, and
// asking every 50 ms (20 times a second, each a Consul read and a connection per replica)
// is what turned a stall into a storm. With no replica at all it asks once.
func TestConfirmWindowAsksLessAndLessOften(t *testing.T) {
	m, _ := telemetry.NewMetrics(noop.NewMeterProvider())
	ip, port := closedAddr(t)
	rip, rport := closedAddr(t)
	primary := topology.Node{Name: "p", IPv4: ip, Port: port}
	for _, tc := range []struct {
		replicas []topology.Node
		min, max int64
	}{
		{[]topology.Node{{Name: "r1", IPv4: rip, Port: rport}}, 4, 8},
		{nil, 1, 1},
	} {
		consul := &countingConsul{t: topology.Topology{Cluster: "c", Primary: primary, Replicas: tc.replicas}}
		w := New(Options{Cluster: "c", Detector: config.Detector{ProbeInterval: 10 * time.Millisecond, ProbeTimeout: 100 * time.Millisecond,
			FailureThreshold: 1, ConfirmWindow: time.Second}, Flavor: flavor.MariaDB{}, Consul: consul, Metrics: m,
			Log: slog.New(slog.NewTextHandler(io.Discard, nil)), MySQL: mysqladmin.Options{User: "u", Password: "p"}})
		w.reset(primary)
		w.check(context.Background())
		if n := consul.reads.Load(); n < tc.min || n > tc.max {
			t.Errorf("%d replicas: the confirm window read Consul %d times; want %d to %d", len(tc.replicas), n, tc.min, tc.max)
		}
	}
}
