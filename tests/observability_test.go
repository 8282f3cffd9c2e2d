package tests

import (
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/baton-db/baton/internal/topology"
	"github.com/baton-db/baton/tests/sandboxkit"
)

// The detector's and the worker's /metrics carry Baton's instruments, with values from the
// failovers and switchovers the earlier tests ran.
func TestMetricsCarryBatonsInstruments(t *testing.T) {
	for name, c := range map[string]struct {
		url  string
		want []string
	}{
		"detector": {sandbox["DETECTOR_METRICS_URL"], []string{"baton_detection_latency_seconds_bucket", "baton_failovers_started_total", "baton_probe_failures_total"}},
		"worker":   {sandbox["WORKER_METRICS_URL"], []string{"baton_failover_duration_seconds_bucket", "baton_step_duration_seconds_bucket"}},
	} {
		if c.url == "" {
			t.Fatalf("the sandbox's env file names no %s metrics URL", name)
		}
		cl := http.Client{Timeout: 5 * time.Second}
		resp, err := cl.Get(c.url)
		if err != nil {
			t.Fatalf("scrape the %s: %v", name, err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("scrape the %s: %d %v", name, resp.StatusCode, err)
		}
		body := string(b)
		for _, m := range c.want {
			if !strings.Contains(body, m+"{") {
				t.Errorf("the %s exports no %s", name, m)
			}
		}
		if name == "detector" && !strings.Contains(body, `cluster="demo"`) {
			t.Errorf("the detector's instruments carry no cluster label")
		}
	}
}

// Every Baton process answers /healthz and /readyz beside its metrics, and says which
// build it runs: the worker, the detector and each heartbeat agent.
func TestEveryProcessAnswersHealthReadinessAndVersion(t *testing.T) {
	base := map[string]string{
		"worker":   strings.TrimSuffix(sandbox["WORKER_METRICS_URL"], "/metrics"),
		"detector": strings.TrimSuffix(sandbox["DETECTOR_METRICS_URL"], "/metrics"),
	}
	for _, tp := range []topology.Topology{readTopoOf(t, "demo"), readTopoOf(t, "demo2")} {
		for _, n := range sandboxkit.Members(tp) {
			base["agent of "+n.Name] = "http://" + n.IPv4 + ":" + sandbox["AGENT_METRICS_PORT"]
		}
	}
	out, code := baton(t, "version")
	if code != 0 || !strings.HasPrefix(out, "baton ") {
		t.Fatalf("baton version: exit %d\n%s", code, out)
	}
	rev := strings.TrimSpace(gitOutput(t, "rev-parse", "--short=12", "HEAD"))
	if !strings.Contains(out, rev) {
		t.Errorf("baton version does not name the commit %s it was built from: %s", rev, out)
	}
	for name, u := range base {
		if c, body := get(t, u+"/healthz"); c != http.StatusOK {
			t.Errorf("%s /healthz: %d %s", name, c, body)
		}
		waitFor(t, 15*time.Second, func() bool { c, _ := get(t, u+"/readyz"); return c == http.StatusOK })
		_, metrics := get(t, u+"/metrics")
		if !strings.Contains(metrics, `baton_build_info{`) || !strings.Contains(metrics, `revision="`+rev) {
			t.Errorf("%s exports no baton_build_info naming revision %s", name, rev)
		}
	}
	// Not ready, with the reason, while it cannot reach Consul; ready again after.
	unblock := cutProcessFromConsul(t, "detector")
	var body string
	waitFor(t, 20*time.Second, func() bool {
		var c int
		c, body = get(t, base["detector"]+"/readyz")
		return c == http.StatusServiceUnavailable
	})
	if !strings.Contains(body, "consul") && !strings.Contains(body, "fleet") {
		t.Errorf("the detector is not ready, but does not say it is Consul: %q", body)
	}
	if c, _ := get(t, base["detector"]+"/healthz"); c != http.StatusOK {
		t.Errorf("the detector's /healthz fails while only Consul is away (restarting it would not help): %d", c)
	}
	unblock()
	waitFor(t, 30*time.Second, func() bool { c, _ := get(t, base["detector"]+"/readyz"); return c == http.StatusOK })
}

func get(t *testing.T, u string) (int, string) {
	t.Helper()
	cl := http.Client{Timeout: 5 * time.Second}
	resp, err := cl.Get(u)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func gitOutput(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("git", append([]string{"-C", root}, args...)...).Output()
	if err != nil {
		t.Fatalf("git %v: %v", args, err)
	}
	return string(out)
}
