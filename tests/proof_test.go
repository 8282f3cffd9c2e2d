package tests

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/baton-db/baton/internal/topology"
)

// logFrom marks the end of a log file now and returns a function that reads what was
// appended since: log assertions are scoped to the test's own window, never the whole
// cumulative file.
func logFrom(t *testing.T, path string) func() string {
	t.Helper()
	var off int64
	if st, err := os.Stat(path); err == nil {
		off = st.Size()
	}
	return func() string {
		b, err := os.ReadFile(path)
		if err != nil || int64(len(b)) < off {
			return ""
		}
		return string(b[off:])
	}
}

// detectorLogFrom is logFrom for the sandbox's detector.
func detectorLogFrom(t *testing.T) func() string {
	return logFrom(t, filepath.Join(sandbox["SANDBOX_STATE"], "logs", "detector.log"))
}

// linesFor returns the lines of log that name cluster and contain want.
func linesFor(log, cluster, want string) []string {
	var out []string
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, "cluster="+cluster+" ") && strings.Contains(l, want) {
			out = append(out, l)
		}
	}
	return out
}

// assertDetectorWatching proves that a live detector holds the cluster and probes its
// primary now: a "no failover" test means nothing if nobody was watching.
func assertDetectorWatching(t *testing.T, cluster string) {
	t.Helper()
	// A detector joining or leaving moves shards: the lock may be free for a moment.
	deadline := time.Now().Add(10 * time.Second)
	for watchers(t)[cluster] == "" {
		if time.Now().After(deadline) {
			t.Fatalf("no detector has held %s's lock for 10 s: a test that expects no failover would prove nothing", cluster)
		}
		time.Sleep(100 * time.Millisecond)
	}
	tp := readTopoOf(t, cluster)
	waitFor(t, 10*time.Second, func() bool { return probeConnections(t, tp.Primary.Addr()) > 0 })
}

// secondDetectorAddr is where TestTwoDetectorsGiveOneFailover's detector connects from: it
// may be the one that holds the cluster.
const secondDetectorAddr = "127.0.4.3"

// probeConnections counts the detectors' connections on a primary (a probe runs DO SLEEP).
func probeConnections(t *testing.T, addr string) int {
	t.Helper()
	db := adminDB(addr)
	defer db.Close()
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE HOST LIKE ? OR HOST LIKE ?",
		sandbox["DETECTOR_ADDR"]+":%", secondDetectorAddr+":%").Scan(&n); err != nil {
		return 0
	}
	return n
}

// assertCannotConnect proves a cut is in place: a TCP connection from the source address
// to addr does not complete.
func assertCannotConnect(t *testing.T, from, addr string) {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 700 * time.Millisecond}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	c, err := d.DialContext(ctx, "tcp", addr)
	if err == nil {
		c.Close()
		t.Fatalf("the cut is not in place: %s still connects to %s", from, addr)
	}
}

// assertCanConnect proves that a path a test leaves open is open.
func assertCanConnect(t *testing.T, from, addr string) {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 2 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("%s cannot connect to %s, which this case leaves open: %v", from, addr, err)
	}
	c.Close()
}

// cutPrimaryOffFromAllButBaton drops every new and established connection to the primary's
// MySQL port except the worker's and the remote HAProxies': the replicas, their heartbeat
// agents and the detector lose it, whatever source address their connections use (a
// replica's IO thread may connect from 127.0.0.1 after a reparent, which a rule between
// node addresses would miss). It proves the cut holds before returning.
func cutPrimaryOffFromAllButBaton(t *testing.T, primary topology.Node) (unblock func()) {
	t.Helper()
	port := fmt.Sprint(primary.Port)
	rules := [][]string{{"INPUT", "-d", primary.IPv4, "-p", "tcp", "--dport", port, "-j", "DROP"}}
	keep := []string{sandbox["WORKER_ADDR"], hostOf(sandbox["REMOTE_A_WRITER_ADDR"]), hostOf(sandbox["REMOTE_B_WRITER_ADDR"])}
	for _, src := range keep { // cut inserts each rule on top: these end above the DROP
		rules = append(rules, []string{"INPUT", "-s", src, "-d", primary.IPv4, "-p", "tcp", "--dport", port, "-j", "ACCEPT"})
	}
	unblock = cut(t, rules)
	assertCannotConnect(t, "127.0.0.1", primary.Addr())
	assertCannotConnect(t, sandbox["DETECTOR_ADDR"], primary.Addr())
	assertCanConnect(t, sandbox["WORKER_ADDR"], primary.Addr())
	return unblock
}

func hostOf(addr string) string {
	h, _, _ := net.SplitHostPort(addr)
	return h
}
