package tests

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/baton-db/baton/activities"
	"github.com/baton-db/baton/internal/topology"
)

// cutReplicationTo resets every replication connection to primary and refuses new ones
// (the replicas' IO threads connect from 127.0.0.1): no replica receives or acknowledges,
// while the primary, its agents' heartbeats (from their own addresses), the detector and
// the HAProxies still reach it.
func cutReplicationTo(t *testing.T, primary topology.Node) (unblock func()) {
	t.Helper()
	port := fmt.Sprint(primary.Port)
	unblock = cut(t, [][]string{
		{"INPUT", "-s", "127.0.0.1", "-d", primary.IPv4, "-p", "tcp", "--dport", port, "-j", "REJECT", "--reject-with", "tcp-reset"},
		{"INPUT", "-s", primary.IPv4, "-d", "127.0.0.1", "-p", "tcp", "--sport", port, "-j", "REJECT", "--reject-with", "tcp-reset"},
	})
	assertCannotConnect(t, "127.0.0.1", primary.Addr())
	assertCanConnect(t, sandbox["DETECTOR_ADDR"], primary.Addr())
	return unblock
}

// With ack_fallback async (the default), the primary falls back after its timeout, and the
// degradation is visible: recorded in Consul with its start and end, shown by `baton
// status`, counted by the detector's metric.
func TestAsyncAckFallbackIsRecordedShownAndCounted(t *testing.T) {
	row := fault(t, "ack_fallback async: no replica acknowledges for 15 s (degradation recorded, shown, counted, ended)")
	ageLastFailoverOf(t, "demo2", time.Hour)
	before := readTopoOf(t, "demo2")
	l := startLoad(t, sandbox["DEMO2_LOCAL_WRITER_ADDR"], 100)
	time.Sleep(time.Second)
	unblock := cutReplicationTo(t, before.Primary)
	cutAt := time.Now()
	var d *topology.Degradation
	waitFor(t, 25*time.Second, func() bool {
		d = readTopoOf(t, "demo2").Degraded
		return d != nil && d.Open() && d.Since.After(cutAt) && d.Primary == before.Primary.Name
	})
	fmt.Printf("METRIC degradation_recorded=%s (cut -> degraded in Consul: %s)\n", d.Since.Sub(cutAt).Round(time.Millisecond), d.Reason)
	since := d.Since
	waitFor(t, 5*time.Second, func() bool { return l.AckedAfter(since) > 0 }) // async keeps the primary writable
	if p := problemsOf(status(t), "demo2"); !strings.Contains(p, "durability degraded since") {
		t.Errorf("baton status does not show the degradation: %q", p)
	}
	resp, err := http.Get(sandbox["DETECTOR_METRICS_URL"])
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `baton_durability_degradations_total{cluster="demo2"`) {
		t.Errorf("the detector's metrics do not count the degradation")
	}
	// The post hooks ran (the sandbox's hook records every event it is given).
	waitFor(t, 10*time.Second, func() bool { return len(durabilityEvents(t, "durability-degraded", d.Reason)) > 0 })
	unblock()
	waitFor(t, 25*time.Second, func() bool { d = readTopoOf(t, "demo2").Degraded; return d != nil && !d.Open() })
	waitFor(t, 10*time.Second, func() bool { return len(durabilityEvents(t, "durability-restored", d.Reason)) > 0 })
	row.note = fmt.Sprintf("degraded %s -> %s (%s); durability hooks ran at both", d.Since.Format("15:04:05.000"), d.Until.Format("15:04:05.000"), d.Reason)
	assertHealthyIn(t, "demo2", l, row, 0)
}

// durabilityEvents are the events of demo2's durability hooks at point with this reason.
func durabilityEvents(t *testing.T, point, reason string) []activities.Event {
	var out []activities.Event
	for _, ev := range hookEvents(t, point, "") {
		if ev.Cluster == "demo2" && ev.Kind == "durability" && ev.Reason == reason {
			out = append(out, ev)
		}
	}
	return out
}
