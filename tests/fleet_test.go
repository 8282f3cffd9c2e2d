package tests

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/baton-db/baton/internal/fleet"
)

func watchers(t *testing.T) map[string]string {
	t.Helper()
	w, err := fleet.Watchers(context.Background(), topo.Client(), "baton/detectors", []string{"demo", "demo2", "demo3"})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// startDetector runs another baton-detector with its own ID, source address and metrics
// port; it is stopped (gracefully) when the test ends, unless the test killed it.
func startDetector(t *testing.T, id, source, metrics string) *exec.Cmd {
	t.Helper()
	logf, err := os.Create(filepath.Join(t.TempDir(), id+".log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(sandbox["SANDBOX_STATE"], "bin", "baton-detector"), "--config", sandbox["BATON_CONFIG"],
		"--source-addr", source, "--id", id)
	cmd.Env = append(os.Environ(), "BATON_DETECTOR_METRICS_ADDR="+metrics)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Signal(syscall.SIGTERM); _ = cmd.Wait(); logf.Close() })
	return cmd
}

// Three detectors share two clusters, one each at most; the one watching demo is killed,
// another takes demo over within seconds and fails it over when its primary dies.
func TestDetectorFleetSharesClustersAndTakesOver(t *testing.T) {
	procs := map[string]*exec.Cmd{
		"detector-2": startDetector(t, "detector-2", "127.0.4.4", "127.0.0.1:9468"),
		"detector-3": startDetector(t, "detector-3", "127.0.4.5", "127.0.0.1:9469"),
	}
	t.Cleanup(func() { sandboxCmd(t, "start-detector") }) // if the sandbox's own was the one killed
	var w map[string]string
	waitFor(t, 15*time.Second, func() bool {
		w = watchers(t)
		return w["demo"] != "" && w["demo2"] != "" && w["demo"] != w["demo2"]
	})
	t.Logf("demo watched by %s, demo2 by %s", w["demo"], w["demo2"])
	if s := status(t); s.Clusters[0].WatchedBy != w["demo"] {
		t.Fatalf("status says demo is watched by %q, the lock says %q", s.Clusters[0].WatchedBy, w["demo"])
	}
	victim := w["demo"]
	if p := procs[victim]; p != nil {
		_ = p.Process.Kill()
	} else {
		_ = syscall.Kill(pidOf(t, "detector"), syscall.SIGKILL)
	}
	killed := time.Now()
	waitFor(t, 10*time.Second, func() bool { w = watchers(t); return w["demo"] != "" && w["demo"] != victim })
	takeover := time.Since(killed)
	fmt.Printf("METRIC detector_fleet_takeover=%s (%s killed -9, demo now watched by %s)\n", takeover.Round(time.Millisecond), victim, w["demo"])
	if takeover > 5*time.Second {
		t.Fatalf("demo was watched again %s after its detector died; want within 5 s", takeover)
	}
	// The new watcher acts: a dead primary of demo is failed over.
	row, before, l := underLoad(t, "detector killed, then demo's primary killed (taken over by another detector)")
	time.Sleep(time.Second) // the new watcher's persistent connection is up
	signalNode(t, before.Primary.Name, syscall.SIGKILL)
	t.Cleanup(func() { restartAndRejoin(t, before.Primary.Name) })
	waitNewPrimary(t, before.Primary.Name, 20*time.Second)
	if res := lastFailover(t); res.Outcome != "succeeded" {
		t.Fatalf("failover %+v", res)
	}
	assertHealthy(t, l, row)
}

// The detector keeps one connection to each primary it watches, and that connection is
// the probe: DO SLEEP(interval), which mysqld itself times. At thousands of clusters every
// extra connection is a descriptor and a TLS session on both sides.
func TestDetectorKeepsOneConnectionPerPrimary(t *testing.T) {
	waitFor(t, 20*time.Second, func() bool { w := watchers(t); return w["demo"] == "detector-1" && w["demo2"] == "detector-1" })
	for _, cluster := range []string{"demo", "demo2"} {
		p := readTopoOf(t, cluster).Primary
		db := adminDB(p.Addr())
		defer db.Close()
		sample := func() []string {
			rows, err := db.Query("SELECT COALESCE(INFO, '') FROM information_schema.PROCESSLIST WHERE HOST LIKE ?", sandbox["DETECTOR_ADDR"]+":%")
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			var infos []string
			for rows.Next() {
				var s string
				if err := rows.Scan(&s); err != nil {
					t.Fatal(err)
				}
				infos = append(infos, s)
			}
			return infos
		}
		waitFor(t, 10*time.Second, func() bool { return len(sample()) > 0 }) // the watcher is connected
		// Between two probes the connection is idle for a moment: a sample may catch it so.
		sleeping := 0
		for i := 0; i < 20; i++ {
			infos := sample()
			if len(infos) != 1 || (infos[0] != "" && !strings.HasPrefix(infos[0], "DO SLEEP")) {
				t.Fatalf("%s: the detector keeps %d connections to primary %s (statements %q); want 1, running DO SLEEP", cluster, len(infos), p.Name, infos)
			}
			if infos[0] != "" {
				sleeping++
			}
			time.Sleep(100 * time.Millisecond)
		}
		if sleeping < 15 {
			t.Fatalf("%s: the detector's connection to %s ran DO SLEEP in %d of 20 samples; want nearly all: the probe is that connection", cluster, p.Name, sleeping)
		}
	}
}

// A detector restarted at once (a supervisor's Restart=always) comes back under the same ID
// before its old session's check has expired: it must take its place in the fleet, not wait
// for a session that its own check keeps alive. Found by the nemesis: a detector killed and
// restarted within 0.7 s never rejoined ("another detector with ID detector-1 is
// running?") and nobody watched the clusters until the end of the run.
func TestDetectorRestartedAtOnceRejoinsTheFleet(t *testing.T) {
	fault(t, "the detector killed -9 and restarted at once (same ID, within its check's TTL)")
	assertDetectorWatching(t, "demo")
	log := detectorLogFrom(t)
	pid := pidOf(t, "detector")
	t.Cleanup(func() { sandboxCmd(t, "start-detector") })
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// Reaped, not only signalled: the sandbox would take a zombie for a running detector.
	waitFor(t, 5*time.Second, func() bool { return exited(pid) })
	restarted := time.Now()
	sandboxCmd(t, "start-detector")
	waitFor(t, 10*time.Second, func() bool { return strings.Contains(log(), "joined the detector fleet") })
	took := time.Since(restarted)
	assertDetectorWatching(t, "demo")
	assertDetectorWatching(t, "demo2")
	fmt.Printf("METRIC detector_restart_rejoin=%s (restarted at once -> joined the fleet)\n", took.Round(time.Millisecond))
}

// exited reports whether pid is gone or a zombie: the sandbox would take a zombie for a
// running process, and this machine's reaper is slow.
func exited(pid int) bool {
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	return err != nil || strings.Contains(string(st), ") Z ")
}
