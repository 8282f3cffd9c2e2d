package tests

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/baton-db/baton/internal/topology"
	"github.com/baton-db/baton/tests/sandboxkit"
)

// prometheusURL is the sandbox's Prometheus (sandbox.sh prometheus_up).
const prometheusURL = "http://127.0.0.1:9090"

// The sandbox's Prometheus scrapes every Baton process (the worker, the detector, each
// heartbeat agent), sees the detector's gauges and every process's build, and has loaded
// Baton's alert rules.
func TestPrometheusScrapesEveryBatonProcess(t *testing.T) {
	if c, body := get(t, prometheusURL+"/-/ready"); c != http.StatusOK {
		t.Fatalf("the sandbox's Prometheus at %s is not ready: %d %s", prometheusURL, c, body)
	}
	agents := map[string]bool{}
	for _, tp := range []topology.Topology{readTopoOf(t, "demo"), readTopoOf(t, "demo2")} {
		for _, n := range sandboxkit.Members(tp) {
			agents[n.IPv4+":"+sandbox["AGENT_METRICS_PORT"]] = true
		}
	}
	// Every Baton target up (the optional second worker aside), and one per process.
	poll(t, 30*time.Second, func() error {
		var r struct {
			Data struct {
				ActiveTargets []struct {
					Labels    map[string]string
					ScrapeURL string
					Health    string
					LastError string
				}
			}
		}
		if err := promGet("/api/v1/targets", &r); err != nil {
			return err
		}
		jobs := map[string]int{}
		var problems []string
		seen := map[string]bool{}
		for _, tg := range r.Data.ActiveTargets {
			job := tg.Labels["job"]
			if !strings.HasPrefix(job, "baton-") || tg.Labels["optional"] == "true" {
				continue
			}
			jobs[job]++
			seen[tg.Labels["instance"]] = true
			if tg.Health != "up" {
				problems = append(problems, fmt.Sprintf("%s %s is %s (%s)", job, tg.ScrapeURL, tg.Health, tg.LastError))
			}
		}
		if jobs["baton-worker"] != 1 || jobs["baton-detector"] != 1 || jobs["baton-heartbeat"] < len(agents) {
			problems = append(problems, fmt.Sprintf("targets by job %v: want a worker, a detector and %d agents", jobs, len(agents)))
		}
		for a := range agents {
			if !seen[a] {
				problems = append(problems, "no target for the agent at "+a)
			}
		}
		if len(problems) > 0 {
			return fmt.Errorf("%s", strings.Join(problems, "; "))
		}
		return nil
	})
	// The detector's gauges and every process's build info have samples.
	poll(t, 30*time.Second, func() error {
		var problems []string
		if v, err := promQuery(`sum(baton_clusters_watched)`); err != nil || len(v) != 1 || v[0].Value != "2" {
			problems = append(problems, fmt.Sprintf("sum(baton_clusters_watched) = %v (%v), want 2 (demo and demo2)", v, err))
		}
		v, err := promQuery(`baton_recoveries_enabled`)
		var clusters []string
		for _, s := range v {
			clusters = append(clusters, s.Metric["cluster"])
		}
		slices.Sort(clusters)
		if err != nil || !slices.Contains(clusters, "demo") || !slices.Contains(clusters, "demo2") {
			problems = append(problems, fmt.Sprintf("baton_recoveries_enabled for clusters %v (%v), want demo and demo2", clusters, err))
		}
		v, err = promQuery(`count by (job) (baton_build_info)`)
		jobs := map[string]string{}
		for _, s := range v {
			jobs[s.Metric["job"]] = s.Value
		}
		var agentsBuilt int
		fmt.Sscan(jobs["baton-heartbeat"], &agentsBuilt)
		if err != nil || jobs["baton-worker"] != "1" || jobs["baton-detector"] != "1" || agentsBuilt < len(agents) {
			problems = append(problems, fmt.Sprintf("baton_build_info samples by job %v (%v), want a worker's, a detector's and %d agents'", jobs, err, len(agents)))
		}
		if len(problems) > 0 {
			return fmt.Errorf("%s", strings.Join(problems, "; "))
		}
		return nil
	})
	// Baton's alert rules are loaded, and none of them fails to evaluate.
	var r struct {
		Data struct {
			Groups []struct {
				Name  string
				File  string
				Rules []struct {
					Name      string
					Health    string
					LastError string
				}
			}
		}
	}
	if err := promGet("/api/v1/rules", &r); err != nil {
		t.Fatal(err)
	}
	var alerts []string
	for _, g := range r.Data.Groups {
		if !strings.HasSuffix(g.File, "baton-rules.yml") {
			continue
		}
		for _, rule := range g.Rules {
			alerts = append(alerts, rule.Name)
			if rule.Health == "err" {
				t.Errorf("alert %s does not evaluate: %s", rule.Name, rule.LastError)
			}
		}
	}
	for _, want := range []string{"BatonFailoverFailed", "BatonDurabilityDegraded", "BatonClusterUnwatched", "BatonReplicaLagHigh", "BatonNodeFenced", "BatonFailoverUnacknowledged", "BatonProcessDown"} {
		if !slices.Contains(alerts, want) {
			t.Errorf("the sandbox's Prometheus has no alert %s from baton-rules.yml (loaded: %v)", want, alerts)
		}
	}
}

type promSample struct {
	Metric map[string]string
	Value  string
}

// promQuery runs an instant query and returns its samples' labels and values.
func promQuery(q string) ([]promSample, error) {
	var r struct {
		Data struct {
			Result []struct {
				Metric map[string]string
				Value  []any
			}
		}
	}
	if err := promGet("/api/v1/query?query="+url.QueryEscape(q), &r); err != nil {
		return nil, err
	}
	var out []promSample
	for _, s := range r.Data.Result {
		v := ""
		if len(s.Value) == 2 {
			v, _ = s.Value[1].(string)
		}
		out = append(out, promSample{Metric: s.Metric, Value: v})
	}
	return out, nil
}

// promGet decodes one of Prometheus's API answers into v, failing on an error status.
func promGet(path string, v any) error {
	cl := http.Client{Timeout: 5 * time.Second}
	resp, err := cl.Get(prometheusURL + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("prometheus %s: %s", path, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// poll calls f every 500 ms until it returns nil, and fails with its last error after limit.
func poll(t *testing.T, limit time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %v", limit, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// An operator's act reaches the alerts through the real pipeline: demo2's recoveries switch
// turned off shows as baton_recoveries_enabled 0 and puts BatonRecoveriesDisabled for demo2
// in pending (it fires after an hour), and turning it on clears both; demo is untouched.
func TestPrometheusAlertFollowsAClustersRecoveriesSwitch(t *testing.T) {
	gauge := func(cluster string) string {
		v, err := promQuery(`baton_recoveries_enabled{cluster="` + cluster + `"}`)
		if err != nil || len(v) != 1 {
			return fmt.Sprintf("%v (%v)", v, err)
		}
		return v[0].Value
	}
	pending := func() (map[string]string, error) {
		var r struct {
			Data struct {
				Alerts []struct {
					Labels map[string]string
					State  string
				}
			}
		}
		if err := promGet("/api/v1/alerts", &r); err != nil {
			return nil, err
		}
		out := map[string]string{}
		for _, a := range r.Data.Alerts {
			if a.Labels["alertname"] == "BatonRecoveriesDisabled" {
				out[a.Labels["cluster"]] = a.State
			}
		}
		return out, nil
	}
	poll(t, 30*time.Second, func() error {
		if g := gauge("demo2"); g != "1" {
			return fmt.Errorf("baton_recoveries_enabled{cluster=demo2} = %s before the switch, want 1", g)
		}
		return nil
	})
	mustBaton(t, "recoveries", "disable", "--cluster", "demo2", "--reason", "alert pipeline test", "--as", "bob")
	t.Cleanup(func() { baton(t, "recoveries", "enable", "--cluster", "demo2") })
	poll(t, 30*time.Second, func() error {
		a, err := pending()
		if g := gauge("demo2"); g != "0" || err != nil || a["demo2"] != "pending" || gauge("demo") != "1" || a["demo"] != "" {
			return fmt.Errorf("after disable: demo2 gauge %s, demo gauge %s, BatonRecoveriesDisabled by cluster %v (%v); want 0, 1, demo2 pending", g, gauge("demo"), a, err)
		}
		return nil
	})
	mustBaton(t, "recoveries", "enable", "--cluster", "demo2", "--as", "bob")
	poll(t, 30*time.Second, func() error {
		a, err := pending()
		if g := gauge("demo2"); g != "1" || err != nil || a["demo2"] != "" {
			return fmt.Errorf("after enable: demo2 gauge %s, BatonRecoveriesDisabled by cluster %v (%v); want 1 and no alert", g, a, err)
		}
		return nil
	})
}
