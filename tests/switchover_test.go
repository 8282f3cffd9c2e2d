package tests

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestSwitchoverUnderLoad(t *testing.T) {
	before := readTopo(t)
	load := startLoad(t, sandbox["LOCAL_WRITER_ADDR"], 200)
	time.Sleep(2 * time.Second)
	out, code := baton(t, "switchover", "--cluster", "demo")
	t.Log(out)
	if code != 0 {
		t.Fatalf("switchover exit %d", code)
	}
	time.Sleep(3 * time.Second)
	load.Stop()
	after := readTopo(t)
	if after.Primary.Name == before.Primary.Name || after.Epoch != before.Epoch+1 {
		t.Fatalf("primary %s epoch %d after switchover from %s epoch %d", after.Primary.Name, after.Epoch, before.Primary.Name, before.Epoch)
	}
	gap, from := load.LongestGap()
	fmt.Printf("METRIC switchover_longest_write_gap=%s (pooled client, %s; gap began %s after load start)\n",
		gap.Round(time.Millisecond), load, from.Sub(load.Start).Round(time.Millisecond))

	ids := load.Acked()
	if len(ids) < 500 {
		t.Fatalf("only %d writes acked: the load did not run", len(ids))
	}
	for _, addr := range nodes() {
		if miss := missing(t, addr, ids, 10*time.Second); len(miss) > 0 {
			t.Fatalf("%d acked writes missing on %s, e.g. %v", len(miss), addr, miss[:min(5, len(miss))])
		}
	}
	fmt.Printf("METRIC switchover_acked_writes_lost=0 of %d\n", len(ids))

	// The old primary replicates from the new one.
	st := snapshot(t)
	oldAddr := before.Primary.Addr()
	for _, n := range st.Nodes {
		if strings.HasPrefix(n, oldAddr) && !strings.Contains(n, "ro=true src="+after.Primary.IPv4+":3306 io=Yes sql=Yes") {
			t.Fatalf("old primary does not replicate from %s: %s", after.Primary.Name, n)
		}
	}
	// Consul and every HAProxy point at the new primary.
	waitRouting(t, after.Primary.ServerID, 2*time.Second)
	// Heartbeats on the new primary are fresh.
	assertFreshHeartbeats(t, after.Primary.Addr(), after.Replicas)
}

func TestSwitchoverBackAndForth(t *testing.T) {
	for i := 0; i < 5; i++ {
		tp := readTopo(t)
		target := tp.Replicas[i%len(tp.Replicas)].Name
		start := time.Now()
		out, code := baton(t, "switchover", "--cluster", "demo", "--to", target)
		if code != 0 {
			t.Fatalf("switchover %d to %s: exit %d\n%s", i+1, target, code, out)
		}
		now := readTopo(t)
		if now.Primary.Name != target {
			t.Fatalf("switchover %d: primary is %s, want %s", i+1, now.Primary.Name, target)
		}
		waitRouting(t, now.Primary.ServerID, 2*time.Second)
		fmt.Printf("METRIC switchover_%d %s -> %s took %s\n", i+1, tp.Primary.Name, target, time.Since(start).Round(time.Millisecond))
	}
}

func assertFreshHeartbeats(t *testing.T, primary string, replicas any) {
	t.Helper()
	db := adminDB(primary)
	defer db.Close()
	rows, err := db.Query("SELECT server_id, TIMESTAMPDIFF(MICROSECOND, STR_TO_DATE(ts, '%Y-%m-%dT%H:%i:%s.%f'), UTC_TIMESTAMP(6)) FROM baton.heartbeat")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	fresh := 0
	for rows.Next() {
		var id uint32
		var age int64
		if err := rows.Scan(&id, &age); err != nil {
			t.Fatal(err)
		}
		if age < 2_000_000 {
			fresh++
		}
	}
	if want := len(readTopo(t).Replicas); fresh < want {
		t.Fatalf("%d fresh heartbeat rows on %s, want %d", fresh, primary, want)
	}
}

// The candidate applies a second behind the other replica (MASTER_DELAY=1), so the other
// replica is always ahead of it. Moving that replica under the candidate must not leave it
// asking for a GTID the candidate has not logged yet (a fatal 1236, which no retry of the IO
// thread fixes): the step catches it up and moves it at the first attempt.
func TestSwitchoverMovesAReplicaThatIsAheadOfTheCandidate(t *testing.T) {
	waitSwitchoverReady(t)
	tp := readTopo(t)
	cand := tp.Replicas[0]
	mustExecOn(t, cand.Addr(), "STOP SLAVE", "CHANGE MASTER TO MASTER_DELAY=1", "START SLAVE")
	t.Cleanup(func() {
		if readTopo(t).Primary.Name != cand.Name {
			mustExecOn(t, cand.Addr(), "STOP SLAVE", "CHANGE MASTER TO MASTER_DELAY=0", "START SLAVE")
		}
	})
	time.Sleep(1500 * time.Millisecond) // heartbeats keep the other replica a second ahead
	out, code := baton(t, "switchover", "--cluster", "demo", "--to", cand.Name)
	t.Log(out)
	if code != 0 {
		t.Fatalf("switchover to %s (applying a second behind): exit %d", cand.Name, code)
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "CatchUpReplicas") && !strings.Contains(line, "attempt 1  ok") {
			t.Fatalf("moving the replica that is ahead took a retry: %q", strings.TrimSpace(line))
		}
	}
	if !strings.Contains(out, "CatchUpReplicas") {
		t.Fatalf("no CatchUpReplicas step in the timeline:\n%s", out)
	}
}
