package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/temporal"

	"github.com/baton-db/baton/activities"
)

// A step's refusal arrives wrapped: the workflow's failure, the activity's error, then the
// step's ApplicationError (and the workflow may have wrapped it in its own words).
func TestExitCode(t *testing.T) {
	step := func(typ string) error { return temporal.NewNonRetryableApplicationError("the step says no", typ, nil) }
	viaWorkflow := func(typ string) error {
		// What the client sees: an ApplicationError for the workflow's fmt wrapping, whose
		// cause is the step's.
		return temporal.NewApplicationErrorWithCause("check preconditions: the step says no", "wrapError", step(typ))
	}
	cases := []struct {
		name string
		err  error
		want int
	}{
		{"nil", nil, 0},
		{"plain error", errors.New("boom"), 1},
		{"usage", usage(errors.New("--for 0s")), 2},
		{"refused", refused(errors.New("--reason is required")), 3},
		{"unknown outcome", unknownOutcome(errors.New("interrupted")), 4},
		{"failed beats a refusal inside", failed(step(activities.ErrPreconditionFailed)), 1},
		{"wrapped exitError", fmt.Errorf("context: %w", refused(errors.New("no"))), 3},
		{"PreconditionFailed", step(activities.ErrPreconditionFailed), 3},
		{"NoCandidate through the workflow", viaWorkflow(activities.ErrNoCandidate), 3},
		{"CandidateIsPrimary explained", explained{msg: "x", err: viaWorkflow(activities.ErrCandidateIsPrimary)}, 3},
		{"UnknownCluster wrapped by fmt", fmt.Errorf("start: %w", step(activities.ErrUnknownCluster)), 3},
		{"a failure after changes", viaWorkflow(activities.ErrRoutingNotConverged), 1},
		{"CandidateBehind (may follow a demotion)", step(activities.ErrCandidateBehind), 1},
		{"EpochChanged", step(activities.ErrEpochChanged), 1},
		{"Update rejected", refusedIfRejected(fmt.Errorf("approve refused: %w", temporal.NewApplicationError("unknown approver", "errorString"))), 3},
		{"no workflow to query", refusedIfRejected(serviceerror.NewNotFound("workflow not found")), 3},
		{"Temporal down", refusedIfRejected(serviceerror.NewUnavailable("connection refused")), 1},
	}
	for _, c := range cases {
		if got := exitCode(c.err); got != c.want {
			t.Errorf("%s: exitCode(%v) = %d, want %d", c.name, c.err, got, c.want)
		}
	}
	// The message is the error's own: main prints it as before.
	if e := refused(errors.New("no")); e.Error() != "no" {
		t.Errorf("message %q", e.Error())
	}
}

// run executes the CLI as main does and returns its exit code and stdout.
func run(t *testing.T, args ...string) (int, string) {
	t.Helper()
	root := newRoot()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	return execute(context.Background(), root), out.String()
}

// cobra's own errors happen before any verb runs: usage, exit 2.
func TestCobraErrorsAreUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"nope"},
		{"status", "--no-such-flag"},
		{"switchover"}, // --cluster is required
		{"version", "extra"},
		{"downtime", "--host", "node2", "--for", "soon", "--reason", "x"},
	} {
		if code, out := run(t, args...); code != exitUsage {
			t.Errorf("baton %v: exit %d, want 2\n%s", args, code, out)
		}
	}
}

// A verb's refusal of its own input changes nothing: exit 3; a malformed value is usage.
func TestVerbInputRefusals(t *testing.T) {
	cfg := writeConfig(t)
	for _, c := range []struct {
		args []string
		want int
	}{
		{[]string{"downtime", "--host", "node2", "--for", "2h", "--as", "alice"}, exitRefused}, // no --reason
		{[]string{"downtime", "--host", "node2", "--for", "0s", "--reason", "x"}, exitUsage},
		{[]string{"recoveries", "disable", "--as", "bob"}, exitRefused},
		{[]string{"cluster", "remove", "--name", "demo"}, exitRefused}, // no --yes
		{[]string{"cluster", "remove", "--name", "Bad Name", "--yes"}, exitUsage},
		{[]string{"ack", "--cluster", "demo", "--as", " "}, exitRefused},
		{[]string{"watch", "--cluster", "nope", "--config", cfg}, exitRefused}, // an unknown cluster
		{[]string{"switchover", "--cluster", "nope", "--config", cfg}, exitRefused},
		{[]string{"status", "-o", "yaml", "--config", cfg}, exitUsage},
		{[]string{"status", "--config", filepath.Join(t.TempDir(), "missing.yaml")}, exitUsage},
	} {
		if code, out := run(t, c.args...); code != c.want {
			t.Errorf("baton %v: exit %d, want %d\n%s", c.args, code, c.want, out)
		}
	}
}

func writeConfig(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	sec := filepath.Join(dir, "secrets.env")
	if err := os.WriteFile(sec, []byte("MYSQL_ADMIN_USER=admin\nMYSQL_ADMIN_PASSWORD=s3cret\nMYSQL_REPL_USER=repl\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "baton.yaml")
	body := "secrets_file: " + sec + "\ntemporal: {address: 127.0.0.1:7233}\nclusters:\n  demo:\n    haproxies: [{name: a, zone: a, writer: 127.0.2.1:3306}]\n"
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestVersionOutput(t *testing.T) {
	code, out := run(t, "version")
	if code != 0 || !strings.HasPrefix(out, "baton ") {
		t.Fatalf("version: %d %q", code, out)
	}
	code, out = run(t, "version", "-o", "json")
	var v versionView
	if err := json.Unmarshal([]byte(out), &v); code != 0 || err != nil || v.Version == "" || v.Go == "" {
		t.Fatalf("version -o json: %d %v %q", code, err, out)
	}
	if code, _ := run(t, "version", "--output", "yaml"); code != exitUsage {
		t.Fatalf("version --output yaml: exit %d", code)
	}
}

func TestConfigValidateOutput(t *testing.T) {
	cfg := writeConfig(t)
	code, out := run(t, "config", "validate", "--config", cfg)
	if code != 0 || !strings.Contains(out, "config is valid: clusters [demo]") || !strings.Contains(out, "warning: mysql.tls.mode is disabled") {
		t.Fatalf("text: %d\n%s", code, out)
	}
	code, out = run(t, "config", "validate", "--config", cfg, "-o", "json")
	var v configView
	if err := json.Unmarshal([]byte(out), &v); code != 0 || err != nil || !v.Valid || len(v.Clusters) != 1 || v.Clusters[0] != "demo" ||
		v.Temporal != "127.0.0.1:7233" || len(v.Warnings) == 0 {
		t.Fatalf("json: %d %v\n%s", code, err, out)
	}
	bad := filepath.Join(filepath.Dir(cfg), "bad.yaml")
	if err := os.WriteFile(bad, []byte("temporal: {address: nowhere}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out = run(t, "config", "validate", "--config", bad, "-o", "json")
	// stdout and stderr share the buffer here: the JSON document comes first.
	dec := json.NewDecoder(strings.NewReader(out))
	v = configView{}
	if err := dec.Decode(&v); code != exitUsage || err != nil || v.Valid || !strings.Contains(v.Error, "temporal.address") {
		t.Fatalf("invalid config: exit %d %v\n%s", code, err, out)
	}
}

// Every verb that reads has -o; the ones that change something do not.
func TestReadingVerbsHaveOutput(t *testing.T) {
	root := newRoot()
	for _, path := range [][]string{{"status"}, {"cluster", "list"}, {"config", "validate"}, {"version"}, {"recoveries"}, {"watch"}, {"postmortem"}} {
		c, _, err := root.Find(path)
		if err != nil || c.Flags().Lookup("output") == nil || c.Flags().ShorthandLookup("o") == nil {
			t.Errorf("%v: no -o/--output (%v)", path, err)
		}
	}
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		if c.RunE != nil && c.Flags().Lookup("output") != nil && c.Flags().Lookup("output").DefValue != "text" {
			t.Errorf("%s: -o defaults to %s", c.CommandPath(), c.Flags().Lookup("output").DefValue)
		}
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	walk(root)
}
