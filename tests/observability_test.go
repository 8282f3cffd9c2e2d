package tests

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
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
