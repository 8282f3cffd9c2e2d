package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.temporal.io/sdk/temporal"

	"github.com/baton-db/baton/activities"
	"github.com/baton-db/baton/internal/config"
	"github.com/baton-db/baton/internal/topology"
)

// The cluster verbs load the CLI's config (temporal: only, no secrets) and go to Temporal;
// only --local, the bootstrap before any worker runs, needs the full config.
func TestClusterVerbsNeedOnlyTemporal(t *testing.T) {
	for _, k := range []string{"MYSQL_ADMIN_USER", "MYSQL_ADMIN_PASSWORD", "MYSQL_REPL_USER", "MYSQL_REPL_PASSWORD", "CONSUL_HTTP_TOKEN", "BATON_CONFIG"} {
		t.Setenv(k, "")
	}
	p := filepath.Join(t.TempDir(), "cli.yaml")
	// Nothing listens on port 1: a verb that got past its config fails on Temporal.
	if err := os.WriteFile(p, []byte("temporal:\n  address: 127.0.0.1:1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"cluster", "add", "--name", "demo3", "--primary", "127.0.1.6:3306"},
		{"cluster", "add", "--name", "demo3", "--primary", "127.0.1.6:3306", "--dry-run"},
		{"cluster", "list"},
		{"cluster", "remove", "--name", "demo3", "--yes"},
	} {
		code, out := run(t, append(args, "--config", p)...)
		if code != exitFailed { // a config it could not load would be a usage error (2)
			t.Errorf("baton %v with a temporal-only config: exit %d, want 1 (Temporal refused)\n%s", args, code, out)
		}
	}
	for _, args := range [][]string{
		{"cluster", "add", "--local", "--name", "demo3", "--primary", "127.0.1.6:3306"},
		{"cluster", "list", "--local"},
	} {
		if code, out := run(t, append(args, "--config", p)...); code != exitUsage {
			t.Errorf("baton %v with a temporal-only config: exit %d, want 2 (the full config)\n%s", args, code, out)
		}
	}
	// Bad input the CLI can tell: nothing is started.
	for _, args := range [][]string{
		{"cluster", "add", "--name", "Bad Name", "--primary", "127.0.1.6:3306"},
		{"cluster", "add", "--name", "demo3", "--primary", "127.0.1.6:3306", "--flavor", "oracle"},
		{"cluster", "add", "--name", "demo3", "--primary", "127.0.1.6:3306", "--as", " "},
	} {
		if code, out := run(t, append(args, "--config", p)...); code != exitUsage {
			t.Errorf("baton %v: exit %d, want 2\n%s", args, code, out)
		}
	}
}

// The worker's refusals of an add keep their exit codes: bad settings or addresses are a
// usage error, an existing cluster or servers that fail the checks a refusal.
func TestClusterAddExitCodes(t *testing.T) {
	viaWorkflow := func(typ string) error {
		err := temporal.NewNonRetryableApplicationError("cluster demo3: nothing was changed", typ, nil)
		return clusterExit(remoteError(fmt.Errorf("workflow execution error (type: AddCluster): activity error: %w", err), "baton"))
	}
	for typ, want := range map[string]int{
		activities.ErrBadSettings:    exitUsage,
		activities.ErrClusterExists:  exitRefused,
		activities.ErrCannotOnboard:  exitRefused,
		activities.ErrUnknownCluster: exitRefused,
		"*errors.errorString":        exitFailed,
	} {
		err := viaWorkflow(typ)
		if exitCode(err) != want || err.Error() != "cluster demo3: nothing was changed" {
			t.Errorf("%s: exit %d %q, want %d and the step's message", typ, exitCode(err), err, want)
		}
	}
	// --local: the step's error itself.
	if err := clusterExit(temporal.NewNonRetryableApplicationError("x", activities.ErrBadSettings, nil)); exitCode(err) != exitUsage {
		t.Errorf("local bad settings: exit %d", exitCode(err))
	}
}

// What `cluster add` prints is what it always printed (deploy/local/sandbox.sh and the
// tests read it): the discovered nodes, the seed, the entry with each HAProxy's frontends.
func TestPrintAdd(t *testing.T) {
	res := activities.AddClusterResult{Cluster: "demo3", Flavor: "mariadb",
		Prepared: &activities.PrepareResult{Primary: "127.0.1.6:3306", Opened: true, Attached: 1},
		Primary:  topology.Node{Name: "node6", IPv4: "127.0.1.6", Port: 3306, Zone: "a", ServerID: 106},
		Replicas: []topology.Node{{Name: "node7", IPv4: "127.0.1.7", Port: 3306, Zone: "b", ServerID: 107}},
		HAProxies: []config.HAProxy{{Name: "a", Zone: "a", Writer: "127.0.2.1:3326", Reader: "127.0.2.1:3327"},
			{Name: "b", Zone: "b", Writer: "127.0.2.2:3326", Reader: "127.0.2.2:3327"}},
		Seed: &activities.SeedResult{Entered: true}}
	var b bytes.Buffer
	if err := printAdd(&b, res); err != nil {
		t.Fatal(err)
	}
	want := `prepared: primary 127.0.1.6:3306 opened, 1 server(s) attached
cluster demo3 (mariadb): primary node6 (127.0.1.6:3306, zone a, server_id 106)
  replica node7 (127.0.1.7:3306, zone b, server_id 107)
seeded demo3 in Consul at epoch 1
entered demo3 in the catalog: the detectors watch it, the workers serve it, and the remote HAProxies route it:
  HAProxy a (zone a): writer 127.0.2.1:3326, reader 127.0.2.1:3327
  HAProxy b (zone b): writer 127.0.2.2:3326, reader 127.0.2.2:3327
`
	if b.String() != want {
		t.Errorf("printed:\n%s\nwant:\n%s", b.String(), want)
	}

	b.Reset()
	res.Prepared, res.Seed, res.DryRun = nil, nil, true
	if err := printAdd(&b, res); err != nil || !strings.HasSuffix(b.String(), "server_id 107)\ndry run: every check passed; nothing was written\n") {
		t.Errorf("dry run: %v\n%s", err, b.String())
	}

	b.Reset()
	res.DryRun, res.Seed = false, &activities.SeedResult{AlreadyInCatalog: true}
	if err := printAdd(&b, res); err != nil || !strings.Contains(b.String(), "demo3 was already in the catalog (entered from a config file); its settings there are kept") {
		t.Errorf("already in the catalog: %v\n%s", err, b.String())
	}

	b.Reset()
	res.Seed = &activities.SeedResult{EnterError: "write baton/catalog/demo3 to Consul: 403"}
	err := printAdd(&b, res)
	if exitCode(err) != exitFailed || !strings.Contains(b.String(), "seeded demo3 in Consul at epoch 1") ||
		!strings.Contains(err.Error(), "seeded, but not entered in the catalog (no detector watches it yet): write baton/catalog/demo3 to Consul: 403; run `baton cluster remove --name demo3 --yes`") {
		t.Errorf("not entered: %v\n%s", err, b.String())
	}
}
