package tests

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/baton-db/baton/activities"
	"github.com/baton-db/baton/internal/flavor"
	"github.com/baton-db/baton/internal/mysqladmin"
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

// With ack_fallback none, a primary that no replica acknowledges holds its commits: no
// write is acknowledged without the copy cross_zone promises, however long it lasts (the
// async fallback would have given up after 10 s), nothing degrades, and the held commits
// complete once the acker is back. Every acked write is then on every member.
func TestNoAckFallbackHoldsCommitsUntilAReplicaAcknowledges(t *testing.T) {
	row := fault(t, "ack_fallback none: no replica acknowledges for 15 s (commits held and recorded, none acked without the copy, released)")
	ageLastFailoverOf(t, "demo2", time.Hour)
	before := readTopoOf(t, "demo2")
	primary := before.Primary
	timeoutWas := semiSyncTimeout(t, primary.Addr())
	backToAsync := withClusterSetting(t, "demo2", "ack_fallback: none")
	t.Cleanup(func() { setSemiSyncTimeout(t, primary.Addr(), timeoutWas) }) // only if the test stopped before its own check
	waitFor(t, 20*time.Second, func() bool { return semiSyncTimeout(t, primary.Addr()) == flavor.NoFallback })
	asyncBefore := statusCounter(t, primary.Addr(), "Rpl_semi_sync_master_no_tx")

	l := startLoad(t, sandbox["DEMO2_LOCAL_WRITER_ADDR"], 100)
	waitFor(t, 5*time.Second, func() bool { return l.AckedAfter(time.Now().Add(-time.Second)) > 0 })
	unblock := cutReplicationTo(t, primary)
	cutAt := time.Now()
	time.Sleep(15 * time.Second)
	held := l.AckedAfter(cutAt.Add(time.Second)) // a commit acked before the cut may answer a moment later
	tp := readTopoOf(t, "demo2")
	hb := heartbeatThreads(t, primary.Addr())
	unblock()
	unblockAt := time.Now()
	async := statusCounter(t, primary.Addr(), "Rpl_semi_sync_master_no_tx") - asyncBefore // read from 127.0.0.1: after the cut
	if held > 0 || async > 0 {
		t.Errorf("%d writes acknowledged during the cut (%d commits without an acknowledgement): ack_fallback none fell back", held, async)
	}
	// Each replica's agent keeps at most one heartbeat write waiting on the primary: a held
	// commit must not cost a connection every interval until max_connections is reached.
	if agents := len(before.Replicas); hb > agents {
		t.Errorf("%d heartbeat writes wait on the primary after 15 s of held commits (%d agents write heartbeats): the agents pile up connections", hb, agents)
	}
	if d := tp.Degraded; d != nil && d.Since.After(cutAt) {
		t.Errorf("a degradation was recorded although no commit was acknowledged alone: %+v", d)
	}
	// Writes are unavailable, and that is recorded and shown, not silent.
	if h := tp.Held; h == nil || !h.Open() || !h.Since.After(cutAt) || !strings.Contains(h.Reason, "waiting for a semi-sync acknowledgement") {
		t.Errorf("after 15 s of held commits the detector has not recorded them in held: %+v", h)
	} else {
		noteFault(t, fmt.Sprintf("held recorded %s after the cut", h.Since.Sub(cutAt).Round(100*time.Millisecond)))
	}

	// The acker is back: the held commits complete and writes resume, or (MariaDB 10.11's
	// stuck acknowledgement receiver, docs/runbook.md §5) the detector names the cause.
	var resumed time.Duration
	var h *topology.Degradation
	for deadline := time.Now().Add(30 * time.Second); resumed == 0; time.Sleep(100 * time.Millisecond) {
		if l.AckedAfter(unblockAt) > 0 {
			resumed = time.Since(unblockAt)
		} else if h = readTopoOf(t, "demo2").Held; h != nil && h.Open() && strings.Contains(h.Reason, "acknowledgement receiver is stuck") {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("writes did not resume within 30 s of the acker's return, and the detector named no cause (held: %+v)", h)
		}
	}
	if resumed == 0 {
		t.Logf("MariaDB's acknowledgement receiver is stuck, and the detector says so: %s", h.Reason)
		noteFault(t, "MariaDB's acknowledgement receiver stuck after the reset (named by the detector in held); released as docs/runbook.md §5 says, semi-sync off and on")
		releaseSemiSync(t, primary.Addr())
		waitFor(t, 30*time.Second, func() bool { resumed = time.Since(unblockAt); return l.AckedAfter(unblockAt) > 0 })
	} else {
		noteFault(t, fmt.Sprintf("writes resumed %s after the acker was back", resumed.Round(10*time.Millisecond)))
		fmt.Printf("METRIC none_resume_after_cut=%s\n", resumed.Round(time.Millisecond))
	}
	waitFor(t, 20*time.Second, func() bool { h = readTopoOf(t, "demo2").Held; return h != nil && !h.Open() })
	noteFault(t, "0 writes acknowledged in 15 s without an acker (the async fallback would after 10 s)")
	// Back to async: the detector gives the primary its ack_timeout (10 s) back, or it would
	// still wait for ever.
	backToAsync()
	waitFor(t, 20*time.Second, func() bool { return semiSyncTimeout(t, primary.Addr()) == 10000 })
	assertHealthyIn(t, "demo2", l, row, 0)
}

// releaseSemiSync switches the primary side of semi-sync off and on: the held commits are
// acknowledged, and MariaDB's acknowledgement receiver starts again.
func releaseSemiSync(t *testing.T, addr string) {
	t.Helper()
	db := adminDB(addr)
	defer db.Close()
	for _, s := range []string{"SET GLOBAL rpl_semi_sync_master_enabled = OFF", "SET GLOBAL rpl_semi_sync_master_enabled = ON"} {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s on %s: %v", s, addr, err)
		}
	}
}

// heartbeatThreads counts the heartbeat account's statements running on addr, read from an
// address that no test cuts.
func heartbeatThreads(t *testing.T, addr string) int {
	t.Helper()
	db, err := mysqladmin.Options{User: secrets.AdminUser, Password: secrets.AdminPassword, TLS: adminTLS,
		SourceAddr: "127.0.4.9", ConnectTimeout: time.Second, ReadTimeout: 2 * time.Second}.OpenDB(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER = ? AND COMMAND = 'Query'", secrets.HeartbeatUser).Scan(&n); err != nil {
		t.Fatalf("heartbeat threads on %s: %v", addr, err)
	}
	return n
}

// withClusterSetting changes one of cluster's settings (line: `key: value`) at run time
// with `baton cluster set`, as an operator would (no file edit, no restart), and waits until
// the detector watches with it; undo (also the test's cleanup) sets the key back as it was.
func withClusterSetting(t *testing.T, cluster, line string) (undo func()) {
	t.Helper()
	key, value, ok := strings.Cut(line, ":")
	if !ok {
		t.Fatalf("setting %q is not key: value", line)
	}
	key, value = strings.TrimSpace(key), strings.TrimSpace(value)
	var before struct{ Settings map[string]any }
	batonJSON(t, &before, "cluster", "show", "--name", cluster, "-o", "json")
	prev := "" // absent: KEY= gives back the default
	if v, ok := before.Settings[key]; ok {
		b, _ := json.Marshal(v) // JSON is YAML
		prev = string(b)
	}
	set := func(v string) {
		log := detectorLogFrom(t)
		out, code := baton(t, "cluster", "set", "--name", cluster, "--as", t.Name(), key+"="+v)
		if code != 0 {
			t.Fatalf("baton cluster set %s=%s (exit %d):\n%s", key, v, code, out)
		}
		if !strings.Contains(out, "nothing changed") {
			waitDetectorLine(t, log, cluster, 10*time.Second, "watching with the new ones")
		}
	}
	var once sync.Once
	undo = func() { once.Do(func() { set(prev) }) }
	t.Cleanup(undo)
	set(value)
	return undo
}

func semiSyncTimeout(t *testing.T, addr string) uint64 {
	t.Helper()
	db := adminDB(addr)
	defer db.Close()
	var ms uint64
	if err := db.QueryRow("SELECT @@GLOBAL.rpl_semi_sync_master_timeout").Scan(&ms); err != nil {
		t.Fatalf("semi-sync timeout of %s: %v", addr, err)
	}
	return ms
}

func setSemiSyncTimeout(t *testing.T, addr string, ms uint64) {
	t.Helper()
	db := adminDB(addr)
	defer db.Close()
	if _, err := db.Exec(fmt.Sprintf("SET GLOBAL rpl_semi_sync_master_timeout = %d", ms)); err != nil {
		t.Errorf("restore the semi-sync timeout of %s: %v", addr, err)
	}
}

// statusCounter reads one numeric SHOW GLOBAL STATUS variable.
func statusCounter(t *testing.T, addr, name string) int64 {
	t.Helper()
	db := adminDB(addr)
	defer db.Close()
	var v int64
	if err := db.QueryRow("SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = ?", strings.ToUpper(name)).Scan(&v); err != nil {
		t.Fatalf("%s of %s: %v", name, addr, err)
	}
	return v
}

// A replica keeps the semi-sync timeout a fence gave it in an earlier life as primary
// (NoFallback: inert on a replica). Promoted under ack_fallback async, it gets ack_timeout
// at once: it must not wait for ever for an acknowledgement until the detector notices (a
// forced failover then finds its commits held and cannot fence it).
func TestPromotionGivesTheAckTimeoutBack(t *testing.T) {
	row := fault(t, "switchover to a replica left with no semi-sync fallback by an earlier fence (ack_timeout given back at the promotion)")
	tp := readTopo(t)
	r := tp.Replicas[len(tp.Replicas)-1]
	setSemiSyncTimeout(t, r.Addr(), flavor.NoFallback)
	log := detectorLogFrom(t)
	waitSwitchoverReady(t)
	mustBaton(t, "switchover", "--cluster", "demo", "--to", r.Name)
	if got := semiSyncTimeout(t, r.Addr()); got != 10000 {
		t.Errorf("the new primary %s waits %d ms for an acknowledgement; want demo's ack_timeout, 10000", r.Name, got)
	}
	time.Sleep(3 * time.Second)
	if lines := linesFor(log(), "demo", "repaired: the primary waited for ever"); len(lines) > 0 {
		t.Errorf("the detector had to repair what the promotion left: %s", lines[0])
	}
	row.note = "timeout " + strconv.FormatUint(semiSyncTimeout(t, r.Addr()), 10) + " ms after the promotion"
}
