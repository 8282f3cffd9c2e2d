package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const good = `
secrets_file: %SECRETS%
temporal: {address: 127.0.0.1:7233}
clusters:
  demo:
    haproxies: [{name: a, zone: a, writer: 127.0.2.1:3306}]
`

func write(t *testing.T, body string) string {
	t.Helper()
	dir := t.TempDir()
	sec := filepath.Join(dir, "secrets.env")
	os.WriteFile(sec, []byte("MYSQL_ADMIN_USER=admin\nMYSQL_ADMIN_PASSWORD=s3cret\nMYSQL_REPL_USER=repl\n"), 0o600)
	p := filepath.Join(dir, "baton.yaml")
	os.WriteFile(p, []byte(strings.ReplaceAll(body, "%SECRETS%", sec)), 0o600)
	return p
}

func TestLoadGoodConfigWithDefaults(t *testing.T) {
	c, err := Load(write(t, good), nil)
	if err != nil {
		t.Fatal(err)
	}
	d := c.Clusters["demo"]
	if d.Flavor != "mariadb" || d.MaxLag.String() != "5s" || d.AntiFlap.String() != "5m0s" || d.AckTimeout.String() != "10s" || c.Detector.ProbeInterval.String() != "500ms" {
		t.Fatalf("defaults not applied: %+v %+v", d, c.Detector)
	}
	if c.Secrets.AdminPassword != "s3cret" {
		t.Fatal("secrets not read")
	}
}

func TestBadConfigNamesTheKey(t *testing.T) {
	cases := map[string]string{
		"unknown key":            good + "    max_lagg: 3s\n",
		"negative timeout":       good + "    catchup_timeout: -5s\n",
		"bad flavor":             good + "    flavor: postgres\n",
		"bad address":            strings.Replace(good, "127.0.2.1:3306", "nowhere", 1),
		"bad cluster name":       strings.Replace(good, "demo:", "\"demo; DROP TABLE x\":", 1),
		"shell in node name":     good + "    prefer: [\"$(rm -rf /)\"]\n",
		"zero probe interval":    good + "detector: {probe_interval: 0s}\n",
		"unknown top-level key":  good + "tempral: {address: x}\n",
		"bad mysql tls mode":     good + "mysql: {tls: {mode: verify-full}}\n",
		"mysql tls without ca":   good + "mysql: {tls: {mode: verify_identity}}\n",
		"missing ca file":        good + "mysql: {tls: {mode: verify_ca, ca_file: /nonexistent/ca.pem}}\n",
		"unknown tls key":        good + "mysql: {tls: {mode: required, ca: x}}\n",
		"repl verify without ca": good + "mysql: {replication_tls: {enabled: true, verify_server_cert: true}}\n",
		"temporal tls files off": strings.Replace(good, "{address: 127.0.0.1:7233}", "{address: 127.0.0.1:7233, tls: {ca_file: /etc/ca.pem}}", 1),
		"consul half a keypair":  good + "consul: {tls: {enabled: true, cert_file: /etc/c.pem}}\n",
	}
	want := map[string]string{
		"unknown key":            "max_lagg",
		"negative timeout":       "clusters.demo.catchup_timeout",
		"bad flavor":             "clusters.demo.flavor",
		"bad address":            "clusters.demo.haproxies[0].writer",
		"bad cluster name":       "cluster name must match",
		"shell in node name":     "not a valid node name",
		"zero probe interval":    "detector.probe_interval",
		"unknown top-level key":  "tempral",
		"bad mysql tls mode":     "mysql.tls: mode \"verify-full\" is not disabled, required, verify_ca or verify_identity",
		"mysql tls without ca":   "mysql.tls: mode verify_identity needs ca_file",
		"missing ca file":        "mysql.tls: ca_file: open /nonexistent/ca.pem",
		"unknown tls key":        "mysql.tls",
		"repl verify without ca": "mysql.replication_tls.verify_server_cert: needs ca_file",
		"temporal tls files off": "temporal.tls: ca_file/cert_file/key_file are set but enabled is false",
		"consul half a keypair":  "consul.tls: cert_file and key_file go together",
	}
	for name, body := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := Load(write(t, body), nil)
			if err == nil || !strings.Contains(err.Error(), want[name]) {
				t.Fatalf("error %v, want it to name %q", err, want[name])
			}
		})
	}
}

func TestEnvironmentOverridesFile(t *testing.T) {
	t.Setenv("BATON_TEMPORAL_NAMESPACE", "other")
	c, err := Load(write(t, good), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Temporal.Namespace != "other" {
		t.Fatalf("namespace %q, want the environment's", c.Temporal.Namespace)
	}
}

func TestUnknownClusterListsTheKnownOnes(t *testing.T) {
	c, err := Load(write(t, good), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Cluster("prod"); err == nil || !strings.Contains(err.Error(), "demo") {
		t.Fatalf("error %v", err)
	}
}

func TestUnsafeDefaultsAreWarnedAbout(t *testing.T) {
	c, err := Load(write(t, good), nil)
	if err != nil {
		t.Fatal(err)
	}
	all := strings.Join(c.Warnings(), "\n")
	for _, want := range []string{"mysql.tls.mode is disabled", "mysql.replication_tls.enabled is false", "temporal.tls.enabled is false", "consul.tls.enabled is false"} {
		if !strings.Contains(all, want) {
			t.Errorf("no warning %q in:\n%s", want, all)
		}
	}
	c.MySQL.TLS.Mode, c.MySQL.ReplicationTLS.Enabled = "required", true
	all = strings.Join(c.Warnings(), "\n")
	if !strings.Contains(all, "not checked") || !strings.Contains(all, "verify_server_cert is false") {
		t.Errorf("unverified TLS not warned about:\n%s", all)
	}
	c.MySQL.TLS.Mode, c.MySQL.ReplicationTLS.VerifyServerCert = "verify_identity", true
	c.Temporal.TLS.Enabled, c.Consul.TLS.Enabled = true, true
	if w := c.Warnings(); len(w) != 0 {
		t.Errorf("a safe config warns: %v", w)
	}
}

func TestDurabilityPolicy(t *testing.T) {
	c, err := Load(write(t, good), nil)
	if err != nil {
		t.Fatal(err)
	}
	d := c.Clusters["demo"]
	if d.Durability != DurabilitySemiSync || !d.Acks("a", "a") {
		t.Fatalf("default durability %q should let any replica acknowledge", d.Durability)
	}
	d.Durability = DurabilityCrossZone
	if d.Acks("a", "a") || !d.Acks("a", "b") {
		t.Fatal("cross_zone: only another zone acknowledges")
	}
	if _, err := Load(write(t, good+"    durability: everywhere\n"), nil); err == nil || !strings.Contains(err.Error(), "clusters.demo.durability") {
		t.Fatalf("bad durability not refused by key: %v", err)
	}
}

func TestAgentConfigHoldsNoAdminOrReplicationPassword(t *testing.T) {
	dir := t.TempDir()
	sec := filepath.Join(dir, "agent.env")
	p := filepath.Join(dir, "agent.yaml")
	os.WriteFile(p, []byte("secrets_file: "+sec+"\nconsul: {address: 127.0.0.1:8500}\n"), 0o600)
	os.WriteFile(sec, []byte("MYSQL_HEARTBEAT_USER=hb\nMYSQL_HEARTBEAT_PASSWORD=x\nCONSUL_HTTP_TOKEN=t\n"), 0o600)
	c, err := LoadAgent(p, nil)
	if err != nil || c.Secrets.HeartbeatUser != "hb" || c.Secrets.AdminPassword != "" || c.Secrets.ConsulToken != "t" {
		t.Fatalf("%v %+v", err, c)
	}
	os.WriteFile(sec, []byte("MYSQL_HEARTBEAT_USER=hb\nMYSQL_ADMIN_PASSWORD=root\n"), 0o600)
	if _, err := LoadAgent(p, nil); err == nil || !strings.Contains(err.Error(), "MYSQL_ADMIN_PASSWORD is set") {
		t.Fatalf("an agent accepted the admin password: %v", err)
	}
	if _, err := Load(p, nil); err == nil || !strings.Contains(err.Error(), "MYSQL_ADMIN_USER") {
		t.Fatalf("the worker's loader accepted an agent's secrets: %v", err)
	}
}

// A key the file sets keeps its value, zero included: max_lag: 0s means no lag at all, and
// anti_flap: 0s turns the anti-flap period off.
func TestExplicitZeroIsNotUnset(t *testing.T) {
	c, err := Load(write(t, good+"    max_lag: 0s\n    anti_flap: 0s\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if d := c.Clusters["demo"]; d.MaxLag != 0 || d.AntiFlap != 0 || d.LongDML.String() != "10s" {
		t.Fatalf("explicit zeros lost or defaults missing: %+v", d)
	}
	if _, err := Load(write(t, good+"    catchup_timeout: 0s\n"), nil); err == nil || !strings.Contains(err.Error(), "catchup_timeout: must be positive") {
		t.Fatalf("a zero catchup_timeout was accepted: %v", err)
	}
}

// The README's configuration table is generated from Settings.
func TestREADMEConfigTableMatchesSettings(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	const start, end = "<!-- config table: generated from internal/config/settings.go -->\n", "<!-- end of config table -->"
	s := string(b)
	i, j := strings.Index(s, start), strings.Index(s, end)
	if i < 0 || j < i {
		t.Fatalf("README.md has no %q ... %q section", start, end)
	}
	if got, want := s[i+len(start):j], MarkdownTable(); got != want {
		t.Fatalf("README.md's config table is out of date; replace it with:\n%s", want)
	}
}

func TestHooksAreValidatedAndMerged(t *testing.T) {
	c, err := Load(write(t, good+`    hooks: [{name: page, on: [post-failover], url: "https://pager.example/x?token=t0k"}]
hooks:
  - {name: gate, on: [pre-switchover, pre-failover], command: [/bin/true], timeout: 2s}
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	if h := c.Hooks("demo", PreFailover); len(h) != 1 || h[0].Name != "gate" || h[0].AttemptsAt(PreFailover) != 1 {
		t.Fatalf("pre-failover hooks %+v", h)
	}
	if h := c.Hooks("demo", PostFailover); len(h) != 1 || h[0].Name != "page" || h[0].AttemptsAt(PostFailover) != 3 || h[0].TimeoutOrDefault().String() != "10s" {
		t.Fatalf("post-failover hooks %+v", h)
	}
	bad := good + `hooks:
  - {name: gate, on: [before-failover], command: [/bin/true]}
  - {name: gate, on: [post-failover], command: [/bin/true], url: "https://x"}
  - {name: web, on: [post-failover], url: "ftp://secret-host/t0k"}
  - {name: none, on: [post-failover]}
`
	_, err = Load(write(t, bad), nil)
	for _, want := range []string{`hooks[0].on: "before-failover" is not one of pre-failover`, `hooks[1].name: "gate" is used by another hook`,
		"hooks[1]: set command or url, not both", "hooks[2].url: not an http:// or https:// URL", "hooks[3]: set command"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("error %v lacks %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "t0k") {
		t.Fatalf("the error echoes a webhook URL: %v", err)
	}
}
