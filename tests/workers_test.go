package tests

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// Two workers share the task queue. The one that runs the relay-log wait of a failover dies
// there (kill -9, from the shared crash hook); the other finishes the failover.
func TestSecondWorkerFinishesAFailoverWhenOneDies(t *testing.T) {
	sandboxCmd(t, "start-worker2")
	t.Cleanup(func() { sandboxCmd(t, "stop-worker2"); sandboxCmd(t, "start-worker") })
	row, before, l := underLoad(t, "one of two workers killed mid-failover (at the relay-log wait)")
	pids := map[string]int{"worker": pidOf(t, "worker"), "worker2": pidOf(t, "worker2")}
	file := filepath.Join(sandbox["SANDBOX_STATE"], "fault-crash")
	if err := os.WriteFile(file, []byte("before:WaitRelayLog"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(file) })
	signalNode(t, before.Primary.Name, syscall.SIGKILL)
	t.Cleanup(func() { restartAndRejoin(t, before.Primary.Name) })
	dead := ""
	waitFor(t, 30*time.Second, func() bool {
		for name, pid := range pids {
			if syscall.Kill(pid, 0) != nil {
				dead = name
			}
		}
		return dead != ""
	})
	for name, pid := range pids {
		if name != dead && syscall.Kill(pid, 0) != nil {
			t.Fatalf("both workers died; the crash hook fires once")
		}
	}
	t.Logf("%s died in WaitRelayLog; the other worker carries on", dead)
	after := waitNewPrimary(t, before.Primary.Name, 30*time.Second)
	res := lastFailover(t)
	if res.To != after.Primary.Name {
		t.Fatalf("failover to %s, Consul names %s", res.To, after.Primary.Name)
	}
	if _, err := os.Stat(file); err == nil {
		t.Fatal("the crash hook did not fire")
	}
	assertHealthy(t, l, row)
}
