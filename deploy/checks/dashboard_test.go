// Package checks holds checks of deploy/'s files against the code: the Grafana dashboard's
// and the alert rules' metric names (this test), and the systemd units (systemd-verify.sh).
package checks

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/spf13/viper"
)

var (
	// a string literal naming one of Baton's metrics, as the instruments are created
	batonLiteral = regexp.MustCompile(`"(baton_[a-z0-9_]+)"`)
	// the Temporal SDK's metric names: TemporalMetricsPrefix + "workflow_failed"
	sdkConstant = regexp.MustCompile(`TemporalMetricsPrefix\s*\+\s*"([a-z0-9_]+)"`)
	identifier  = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)
	quoted      = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)
)

// exported are the names Prometheus sees for an instrument called name: the OpenTelemetry
// exporter adds _total to counters and the unit (_seconds) to histograms and their series.
func exported(name string) []string {
	out := []string{name, name + "_total"}
	for _, h := range []string{name, name + "_seconds"} {
		out = append(out, h, h+"_bucket", h+"_sum", h+"_count")
	}
	return out
}

// registered returns every metric name the code creates (Baton's, from the string literals
// in the module's non-test Go files; the SDK's, from its constants).
func registered(t *testing.T) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	root := filepath.Join("..", "..")
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "state" || d.Name() == "tools" || d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) && p != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, m := range batonLiteral.FindAllStringSubmatch(string(b), -1) {
			for _, n := range exported(m[1]) {
				names[n] = true
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !names["baton_build_info"] || !names["baton_failovers_started_total"] {
		t.Fatalf("the scan of the Go source found too little (%d names): is the module root %s?", len(names), root)
	}
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "go.temporal.io/sdk").Output()
	if err != nil {
		t.Fatalf("go list -m go.temporal.io/sdk: %v", err)
	}
	b, err := os.ReadFile(filepath.Join(strings.TrimSpace(string(out)), "internal", "common", "metrics", "constants.go"))
	if err != nil {
		t.Fatalf("the Temporal SDK's metric names: %v", err)
	}
	sdk := sdkConstant.FindAllStringSubmatch(string(b), -1)
	if len(sdk) < 10 {
		t.Fatalf("found %d of the Temporal SDK's metric names in its constants.go", len(sdk))
	}
	for _, m := range sdk {
		for _, n := range exported("temporal_" + m[1]) {
			names[n] = true
		}
	}
	return names
}

// metricsIn returns the metric names an expression uses (Baton's and the SDK's; up and
// the functions are Prometheus's own).
func metricsIn(expr string) []string {
	var out []string
	for _, id := range identifier.FindAllString(quoted.ReplaceAllString(expr, `""`), -1) {
		if strings.HasPrefix(id, "baton_") || strings.HasPrefix(id, "temporal_") {
			out = append(out, id)
		}
	}
	return out
}

func TestMetricsInDashboardAndAlertsExist(t *testing.T) {
	names := registered(t)
	exprs := map[string][]string{} // where → expressions
	b, err := os.ReadFile(filepath.Join("..", "grafana", "baton-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
		Templating struct {
			List []struct {
				Name       string
				Definition string
			}
		}
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("baton-dashboard.json: %v", err)
	}
	if len(dash.Panels) == 0 {
		t.Fatal("the dashboard has no panels")
	}
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("dashboard panel %q has no query", p.Title)
		}
		for _, q := range p.Targets {
			exprs["dashboard panel "+p.Title] = append(exprs["dashboard panel "+p.Title], q.Expr)
		}
	}
	for _, v := range dash.Templating.List {
		if v.Definition != "" {
			exprs["dashboard variable "+v.Name] = append(exprs["dashboard variable "+v.Name], v.Definition)
		}
	}
	rules := viper.New()
	rules.SetConfigFile(filepath.Join("..", "prometheus", "baton-rules.yml"))
	if err := rules.ReadInConfig(); err != nil {
		t.Fatal(err)
	}
	groups, _ := rules.Get("groups").([]any)
	for _, g := range groups {
		rs, _ := g.(map[string]any)["rules"].([]any)
		for _, r := range rs {
			r, _ := r.(map[string]any)
			name, _ := r["alert"].(string)
			expr, _ := r["expr"].(string)
			if name == "" || expr == "" {
				t.Errorf("alert rule %v has no alert name or expression", r)
				continue
			}
			exprs["alert "+name] = append(exprs["alert "+name], expr)
		}
	}
	if len(exprs) < 10 {
		t.Fatalf("found only %d panels, variables and alerts with expressions", len(exprs))
	}
	var where []string
	for w := range exprs {
		where = append(where, w)
	}
	sort.Strings(where)
	used := 0
	for _, w := range where {
		for _, e := range exprs[w] {
			for _, m := range metricsIn(e) {
				used++
				if !names[m] {
					t.Errorf("%s uses %s, which no instrument in the code exports:\n%s", w, m, e)
				}
			}
		}
	}
	if used == 0 {
		t.Fatal("no metric name found in any expression")
	}
}

func TestMetricsIn(t *testing.T) {
	got := metricsIn(`sum by (le) (rate(baton_x_bucket{cluster=~"baton_not_a_metric", job="temporal_no"}[5m])) / temporal_y_total and up`)
	if strings.Join(got, ",") != "baton_x_bucket,temporal_y_total" {
		t.Errorf("got %v", got)
	}
}
