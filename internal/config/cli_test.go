package config

import (
	"strings"
	"testing"
)

// The CLI's config needs only the temporal section, and reads no secrets; what it sets
// is validated as strictly as the worker's.
func TestLoadCLI(t *testing.T) {
	t.Setenv("MYSQL_ADMIN_USER", "")
	t.Setenv("MYSQL_REPL_USER", "")
	c, err := LoadCLI(write(t, "temporal: {address: 10.0.0.1:7233, namespace: ops, task_queue: q}\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Temporal.Address != "10.0.0.1:7233" || c.Temporal.TaskQueue != "q" || c.Secrets != (Secrets{}) || len(c.Clusters) != 0 {
		t.Errorf("config %+v", c)
	}
	if _, err := Load(write(t, "temporal: {address: 10.0.0.1:7233}\n"), nil); err == nil {
		t.Error("the worker's Load accepted a config without clusters and secrets")
	}
	for body, want := range map[string]string{
		"temporal: {address: nowhere}\n":                              "temporal.address",
		"temporal: {address: 10.0.0.1:7233}\ntempral: {address: x}\n": "tempral",
		"temporal: {address: 10.0.0.1:7233}\nclusters: {x: {}}\n":     "clusters.x",
	} {
		if _, err := LoadCLI(write(t, body), nil); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v; want an error naming %s", body, err, want)
		}
	}
}
