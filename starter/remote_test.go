package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"

	"github.com/baton-db/baton/activities"
	"github.com/baton-db/baton/internal/app"
	"github.com/baton-db/baton/internal/config"
)

// cliCommand is a command with the root's flags, set to use the config at path.
func cliCommand(t *testing.T, path string) *cobra.Command {
	t.Helper()
	cmd := &cobra.Command{Use: "test"}
	app.AddFlags(cmd.Flags())
	if err := cmd.Flags().Set("config", path); err != nil {
		t.Fatal(err)
	}
	return cmd
}

// The operator's CLI needs only its Temporal settings: a config with nothing but the
// temporal section loads with no secrets file, no database account and no Consul token
// (the worker, which has them, still refuses it).
func TestCLIConfigNeedsOnlyTemporal(t *testing.T) {
	for _, k := range []string{"MYSQL_ADMIN_USER", "MYSQL_ADMIN_PASSWORD", "MYSQL_REPL_USER", "MYSQL_REPL_PASSWORD", "CONSUL_HTTP_TOKEN", "BATON_CONFIG"} {
		t.Setenv(k, "")
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "cli.yaml")
	body := "temporal:\n  address: 127.0.0.9:7233\n  namespace: ops\n  task_queue: baton-q\n"
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := loadConfig(cliCommand(t, p))
	if err != nil {
		t.Fatalf("a temporal-only config does not load for the CLI: %v", err)
	}
	if cfg.Temporal.Address != "127.0.0.9:7233" || cfg.Temporal.Namespace != "ops" || cfg.Temporal.TaskQueue != "baton-q" {
		t.Errorf("temporal settings = %+v", cfg.Temporal)
	}
	if cfg.Secrets != (config.Secrets{}) || cfg.SecretsFile != "" || len(cfg.Clusters) != 0 {
		t.Errorf("the CLI's config holds secrets or clusters: %+v", cfg)
	}
	// The cluster is the worker's to check; a malformed name is still a usage error here.
	if _, err := loadCluster(cliCommand(t, p), "demo"); err != nil {
		t.Errorf("loadCluster(demo) without clusters in the config: %v", err)
	}
	if _, err := loadCluster(cliCommand(t, p), "Bad Name"); exitCode(err) != exitUsage {
		t.Errorf("loadCluster(Bad Name): %v (exit %d), want usage", err, exitCode(err))
	}
	// The worker's loader (and `baton cluster add --local`) needs secrets.
	if _, err := loadFullConfig(cliCommand(t, p)); err == nil || exitCode(err) != exitUsage {
		t.Errorf("the full config loaded without secrets: %v", err)
	}
	// A secrets file named in the config is not even read by the CLI.
	p2 := filepath.Join(dir, "cli2.yaml")
	if err := os.WriteFile(p2, []byte("secrets_file: "+filepath.Join(dir, "absent.env")+"\n"+body), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := loadConfig(cliCommand(t, p2)); err != nil {
		t.Errorf("the CLI read the secrets file: %v", err)
	}
}

// The error of an Inspect or Operate run is the step's own (its message, its exit code).
func TestRemoteErrorKeepsTheStepsExitCode(t *testing.T) {
	step := func(typ, msg string) error { return temporal.NewNonRetryableApplicationError(msg, typ, nil) }
	viaWorkflow := func(err error) error {
		return fmt.Errorf("workflow execution error (type: Operate): activity error: %w", err)
	}
	for _, c := range []struct {
		err  error
		want int
	}{
		{step(activities.ErrNoDowntime, "node2 of demo has no downtime"), exitRefused},
		{step(activities.ErrNothingToAck, "cluster demo has had no unplanned failover to acknowledge"), exitRefused},
		{step(activities.ErrUnknownNode, "node \"node9\" is not a member"), exitRefused},
		{step(activities.ErrUnknownCluster, "unknown cluster \"nope\""), exitRefused},
		{step(activities.ErrAmbiguousNode, "node \"node2\" is in several clusters (demo, demo2); add --cluster"), exitUsage},
		{temporal.NewApplicationError("connect to Consul: refused", "*errors.errorString"), exitFailed},
	} {
		err := remoteError(viaWorkflow(c.err), "baton")
		var app *temporal.ApplicationError
		errors.As(c.err, &app)
		if exitCode(err) != c.want || err.Error() != app.Message() {
			t.Errorf("%v: exit %d %q, want %d and the step's message", c.err, exitCode(err), err, c.want)
		}
	}
	timeout := remoteError(viaWorkflow(temporal.NewTimeoutError(enums.TIMEOUT_TYPE_START_TO_CLOSE, nil)), "baton-q")
	if exitCode(timeout) != exitFailed || !strings.Contains(timeout.Error(), `task queue "baton-q"`) {
		t.Errorf("timeout: exit %d %v", exitCode(timeout), timeout)
	}
	if remoteError(nil, "q") != nil {
		t.Error("nil is not nil")
	}
	// A dry run's refusal, carried in its result, maps as the step's error would.
	if err := refusalError(&activities.Refusal{Type: activities.ErrPreconditionFailed, Message: "lag"}); exitCode(err) != exitRefused || !strings.HasPrefix(err.Error(), "lag (type: PreconditionFailed") {
		t.Errorf("refusal: exit %d %v", exitCode(err), err)
	}
	if err := refusalError(&activities.Refusal{Message: "consul down"}); exitCode(err) != exitFailed {
		t.Errorf("plain error: exit %d", exitCode(err))
	}
	if refusalError(nil) != nil {
		t.Error("no refusal is an error")
	}
}
