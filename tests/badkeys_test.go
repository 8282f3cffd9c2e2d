package tests

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
)

// putKey writes a Consul key under demo's prefix and restores it when the test ends.
func putKey(t *testing.T, key, value string) {
	t.Helper()
	kv := topo.Client().KV()
	full := "baton/clusters/demo/" + key
	prev, _, err := kv.Get(full, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(&api.KVPair{Key: full, Value: []byte(value)}, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if prev != nil {
			_, _ = kv.Put(&api.KVPair{Key: full, Value: prev.Value}, nil)
		} else {
			_, _ = kv.Delete(full, nil)
		}
	})
}

// A malformed operator key that does not decide whether the primary may be replaced (an
// acknowledgement, a failover record, a replica's downtime) is shown by status with its
// name and ignored: the dead primary is failed over, and nothing acked is lost.
func TestBadOperatorKeysDoNotStopAFailover(t *testing.T) {
	cases := []struct{ key, value string }{ // REPLICA: a replica's name when the case runs
		{"ack", `{"by":"x"}`},
		{"downtime/REPLICA", `{"node":"REPLICA"}`},
		{"last_planned", `{"kind":"planned"`},
		{"last_unplanned", `not a record`},
	}
	for _, c := range cases {
		t.Run(strings.ReplaceAll(c.key, "/REPLICA", ""), func(t *testing.T) {
			// The replica least likely to be promoted (another zone than the primary): once
			// it is the primary, a malformed downtime of it does decide, and holds the next
			// failover.
			tp := readTopo(t)
			replica := tp.Replicas[0].Name
			for _, r := range tp.Replicas {
				if r.Zone != tp.Primary.Zone {
					replica = r.Name
				}
			}
			c.key, c.value = strings.ReplaceAll(c.key, "REPLICA", replica), strings.ReplaceAll(c.value, "REPLICA", replica)
			row := fault(t, fmt.Sprintf("malformed %s in Consul (%s), then the primary killed under load", strings.ReplaceAll(c.key, replica, "<replica>"), strings.ReplaceAll(c.value, replica, "<replica>")))
			ageLastFailover(t, time.Hour)
			before := readTopo(t)
			t.Cleanup(func() { restartAndRejoin(t, before.Primary.Name) }) // after the key is restored
			putKey(t, c.key, c.value)
			if out, code := baton(t, "status", "--cluster", "demo"); code != 0 || !strings.Contains(out, "baton/clusters/demo/"+c.key) {
				t.Errorf("status (exit %d) does not name the bad key %s as a problem:\n%s", code, c.key, out)
			}
			l := startLoad(t, sandbox["LOCAL_WRITER_ADDR"], 200)
			time.Sleep(time.Second)
			signalNode(t, before.Primary.Name, syscall.SIGKILL)
			after := waitNewPrimary(t, before.Primary.Name, 20*time.Second)
			if res := lastFailover(t); res.Outcome != "succeeded" {
				t.Fatalf("failover with a bad %s key: %+v", c.key, res)
			}
			assertHealthy(t, l, row)
			t.Logf("failed over to %s with a bad %s key", after.Primary.Name, c.key)
		})
	}
}

// A malformed downtime of the primary itself does decide: a human may have meant to hold
// its failover. The failover waits, and the detector names the key and its fix; once the
// key is deleted, the dead primary is failed over.
func TestBadDowntimeOfThePrimaryHoldsItsFailoverAndSaysWhy(t *testing.T) {
	row := fault(t, "malformed downtime of the primary in Consul: failover held, key named, then deleted and failed over")
	ageLastFailover(t, time.Hour)
	before := readTopo(t)
	assertDetectorWatching(t, "demo")
	log := detectorLogFrom(t)
	key := "downtime/" + before.Primary.Name
	t.Cleanup(func() { restartAndRejoin(t, before.Primary.Name) }) // after the key is deleted
	putKey(t, key, `{"node":"`+before.Primary.Name+`"}`)
	out, code := baton(t, "status", "--cluster", "demo")
	if code == 0 || !strings.Contains(out, "baton/clusters/demo/"+key) || !strings.Contains(out, "consul kv delete") {
		t.Fatalf("status (exit %d) should refuse the cluster, naming %s and the fix:\n%s", code, key, out)
	}
	l := startLoad(t, sandbox["LOCAL_WRITER_ADDR"], 200)
	time.Sleep(500 * time.Millisecond)
	since := time.Now()
	signalNode(t, before.Primary.Name, syscall.SIGKILL)
	// The harness's own topology read refuses the key too: watch the primary key itself.
	for time.Since(since) < 4*time.Second {
		p, _, err := topo.Client().KV().Get("baton/clusters/demo/primary", nil)
		if err != nil || p == nil || !strings.Contains(string(p.Value), `"name":"`+before.Primary.Name+`"`) {
			t.Fatalf("the primary key changed while a downtime of the primary was unreadable: %v %s", err, p.Value)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if runs := failoverRuns(t, since); len(runs) != 0 {
		t.Fatalf("%d failovers started while a downtime of the primary was unreadable", len(runs))
	}
	if len(linesFor(log(), "demo", "baton/clusters/demo/"+key)) == 0 {
		t.Fatalf("the detector's log does not name %s while the failover is held:\n%s", key, log())
	}
	if _, err := topo.Client().KV().Delete("baton/clusters/demo/"+key, nil); err != nil {
		t.Fatal(err)
	}
	waitNewPrimary(t, before.Primary.Name, 20*time.Second)
	assertHealthy(t, l, row)
}
