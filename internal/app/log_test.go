package app

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"github.com/baton-db/baton/internal/version"
)

// log.format json: every line is one JSON object, and the first names the version.
func TestJSONLogLinesCarryTheVersionFirst(t *testing.T) {
	var buf bytes.Buffer
	l := NewLogger(&buf, "json")
	LogStarting(l, "heartbeat", "cluster", "demo", "node", "node2")
	l.Warn("something else", "n", 3)
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("want 2 lines:\n%s", buf.String())
	}
	for _, line := range lines {
		if !json.Valid([]byte(line)) {
			t.Fatalf("not a JSON line: %s", line)
		}
	}
	var first map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil {
		t.Fatal(err)
	}
	if first["msg"] != "baton-heartbeat starting" || first["version"] != version.Get().String() || first["cluster"] != "demo" || first["level"] != "INFO" {
		t.Fatalf("first line: %v", first)
	}
	buf.Reset()
	LogStarting(NewLogger(&buf, "text"), "worker")
	if s := buf.String(); strings.HasPrefix(s, "{") || !strings.Contains(s, `msg="baton-worker starting" version=`) {
		t.Fatalf("text line: %s", s)
	}
}

// --log-format overrides log.format; without it the file's (or the default text) holds.
func TestLogFormatFlagOverridesConfig(t *testing.T) {
	dir := t.TempDir()
	sec := filepath.Join(dir, "agent.env")
	p := filepath.Join(dir, "agent.yaml")
	if err := os.WriteFile(sec, []byte("MYSQL_HEARTBEAT_USER=hb\nMYSQL_HEARTBEAT_PASSWORD=x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	load := func(body string, args ...string) (string, error) {
		if err := os.WriteFile(p, []byte("secrets_file: "+sec+"\nconsul: {address: 127.0.0.1:8500}\n"+body), 0o600); err != nil {
			t.Fatal(err)
		}
		fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
		AddFlags(fs)
		AddLogFlags(fs)
		if err := fs.Parse(append([]string{"--config", p}, args...)); err != nil {
			t.Fatal(err)
		}
		c, err := LoadAgentConfig(fs)
		if err != nil {
			return "", err
		}
		return c.Log.Format, nil
	}
	for _, c := range []struct {
		body string
		args []string
		want string
	}{
		{"", nil, "text"},
		{"log: {format: json}\n", nil, "json"},
		{"", []string{"--log-format", "json"}, "json"},
		{"log: {format: json}\n", []string{"--log-format=text"}, "text"},
	} {
		if got, err := load(c.body, c.args...); err != nil || got != c.want {
			t.Errorf("%q %v: got %q, %v; want %q", c.body, c.args, got, err, c.want)
		}
	}
	if _, err := load("", "--log-format", "xml"); err == nil || !strings.Contains(err.Error(), "log.format") {
		t.Errorf("--log-format xml: %v", err)
	}
}
