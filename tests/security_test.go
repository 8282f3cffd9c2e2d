package tests

import (
	"context"
	"crypto/x509"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/baton-db/baton/internal/config"
	"github.com/baton-db/baton/tests/sandboxkit"
)

// Baton's MySQL connections use TLS with a client certificate, and its replication links
// are encrypted and verify the source: proven by a switchover against servers that refuse
// anything less, and by the refusals themselves.
func TestMySQLTLS(t *testing.T) {
	cfg, err := config.Load(sandbox["BATON_CONFIG"], nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MySQL.TLS.Mode != "verify_identity" || !cfg.MySQL.ReplicationTLS.Enabled {
		t.Fatalf("the sandbox config should use verify_identity and replication TLS, has %+v", cfg.MySQL)
	}
	opts, err := cfg.MySQLOptions(secrets.AdminUser, secrets.AdminPassword)
	if err != nil {
		t.Fatal(err)
	}
	opts.SourceAddr = ""
	node := nodes()[0]
	queryErr := func(db *sql.DB) error {
		defer db.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		var v string
		return db.QueryRowContext(ctx, "SELECT 1").Scan(&v)
	}

	t.Run("the admin user is refused without TLS", func(t *testing.T) {
		err := queryErr(openDB(node, secrets.AdminUser, secrets.AdminPassword))
		if err == nil || !strings.Contains(err.Error(), "Access denied") {
			t.Fatalf("plain connection as %s: %v, want Access denied", secrets.AdminUser, err)
		}
	})
	t.Run("the admin user is refused without a client certificate", func(t *testing.T) {
		noCert := opts.TLS.Clone()
		noCert.Certificates = nil
		err := queryErr(openTLS(node, secrets.AdminUser, secrets.AdminPassword, noCert))
		if err == nil || !strings.Contains(err.Error(), "Access denied") {
			t.Fatalf("TLS without a client certificate: %v, want Access denied", err)
		}
	})
	t.Run("verify_identity refuses a certificate that names another host", func(t *testing.T) {
		// Through a remote HAProxy the server's certificate names the node, not the proxy.
		db, err := opts.OpenDB(sandbox["REMOTE_A_WRITER_ADDR"])
		if err != nil {
			t.Fatal(err)
		}
		err = queryErr(db)
		var hn x509.HostnameError
		if !errors.As(err, &hn) {
			t.Fatalf("verify_identity through a proxy: %v, want a host name mismatch", err)
		}
	})
	t.Run("a CA that did not sign the server is refused", func(t *testing.T) {
		other := opts.TLS.Clone()
		other.RootCAs = x509.NewCertPool() // trusts nothing
		err := queryErr(openTLS(node, secrets.AdminUser, secrets.AdminPassword, other))
		if err == nil || !strings.Contains(err.Error(), "certificate") {
			t.Fatalf("unknown CA: %v, want a certificate error", err)
		}
	})

	out, code := baton(t, "switchover", "--cluster", "demo", "--wait")
	if code != 0 {
		t.Fatalf("switchover over TLS: exit %d\n%s", code, out)
	}
	after := readTopo(t)
	for _, addr := range nodes() {
		db, err := opts.OpenDB(addr)
		if err != nil {
			t.Fatal(err)
		}
		var name, cipher string
		if err := db.QueryRow("SHOW SESSION STATUS LIKE 'Ssl_cipher'").Scan(&name, &cipher); err != nil || cipher == "" {
			t.Fatalf("%s: Baton's connection is not encrypted (Ssl_cipher %q, %v)", addr, cipher, err)
		}
		st := replicaStatus(t, db)
		db.Close()
		if addr == after.Primary.Addr() {
			continue
		}
		if st["Master_Host"] != after.Primary.IPv4 || st["Slave_IO_Running"] != "Yes" ||
			st["Master_SSL_Allowed"] != "Yes" || st["Master_SSL_Verify_Server_Cert"] != "Yes" {
			t.Fatalf("%s after Baton reparented it: source %s io %s ssl %s verify %s (%s)", addr, st["Master_Host"],
				st["Slave_IO_Running"], st["Master_SSL_Allowed"], st["Master_SSL_Verify_Server_Cert"], st["Last_IO_Error"])
		}
	}
	// The heartbeat user, too, is only accepted over TLS: fresh beats prove the agents use it.
	assertFreshHeartbeats(t, after.Primary.Addr(), after.Replicas)
	fmt.Printf("METRIC mysql_tls ok: admin REQUIRE X509, repl and heartbeat REQUIRE SSL, replication links verify the source (primary %s)\n", after.Primary.Name)
}

func replicaStatus(t *testing.T, db *sql.DB) map[string]string {
	t.Helper()
	m, err := sandboxkit.ReplicaStatus(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// Consul runs with ACLs, default deny. Baton's token may write its own KV prefix and read
// the HAProxy services, nothing more; consul-template's may only read.
func TestConsulACL(t *testing.T) {
	state := sandbox["SANDBOX_STATE"]
	ctToken, err := os.ReadFile(filepath.Join(state, "consul-template.token"))
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + sandbox["CONSUL_HTTP_ADDR"]
	status := func(method, path, token, body string) int {
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		if token != "" {
			req.Header.Set("X-Consul-Token", token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	primaryKey := "/v1/kv/baton/clusters/demo/primary"
	for _, c := range []struct {
		what, method, path, token string
		want                      int
	}{
		{"anonymous read of the topology", "GET", primaryKey, "", 403},
		{"anonymous write of the topology", "PUT", "/v1/kv/baton/clusters/demo/x", "", 403},
		{"Baton reads the topology", "GET", primaryKey, secrets.ConsulToken, 200},
		{"Baton writes under baton/", "PUT", "/v1/kv/baton/clusters/demo/acl-test", secrets.ConsulToken, 200},
		{"Baton may not write outside baton/", "PUT", "/v1/kv/other/acl-test", secrets.ConsulToken, 403},
		{"Baton may not manage ACLs", "GET", "/v1/acl/tokens", secrets.ConsulToken, 403},
		{"consul-template reads the topology", "GET", primaryKey, strings.TrimSpace(string(ctToken)), 200},
		{"consul-template may not write the topology", "PUT", primaryKey, strings.TrimSpace(string(ctToken)), 403},
	} {
		if got := status(c.method, c.path, c.token, "v"); got != c.want {
			t.Errorf("%s: HTTP %d, want %d", c.what, got, c.want)
		}
	}
	status("DELETE", "/v1/kv/baton/clusters/demo/acl-test", secrets.ConsulToken, "")

	// Baton's view through its token is whole: the HAProxy services and their checks.
	hosts, err := topo.HAProxies(context.Background())
	if err != nil || len(hosts) != 2 {
		t.Fatalf("HAProxy services seen with Baton's token: %v, %v", hosts, err)
	}
	// A wrong token is a clear error, and nothing changes.
	bad := filepath.Join(t.TempDir(), "secrets.env")
	raw, _ := os.ReadFile(sandbox["SECRETS_FILE"])
	var lines []string
	for _, l := range strings.Split(string(raw), "\n") {
		if strings.HasPrefix(l, "CONSUL_HTTP_TOKEN=") {
			l = "CONSUL_HTTP_TOKEN=00000000-0000-0000-0000-000000000000"
		}
		lines = append(lines, l)
	}
	if err := os.WriteFile(bad, []byte(strings.Join(lines, "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	cfgFile := filepath.Join(t.TempDir(), "baton.yaml")
	orig, _ := os.ReadFile(sandbox["BATON_CONFIG"])
	if err := os.WriteFile(cfgFile, []byte(strings.Replace(string(orig), "secrets_file: "+sandbox["SECRETS_FILE"], "secrets_file: "+bad, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	// Only the bootstrap path reaches Consul from the CLI (`cluster ... --local`, for a fleet
	// with no worker yet); every other verb runs on the worker, with the worker's token.
	for _, args := range [][]string{{"cluster", "list", "--local"}, {"cluster", "add", "--local", "--dry-run", "--name", "scratch", "--primary", "127.0.1.1:3306"}} {
		out, code := batonConfig(t, cfgFile, args...)
		if code == 0 || !strings.Contains(out, "Consul refused Baton's ACL token; set CONSUL_HTTP_TOKEN in secrets_file") {
			t.Fatalf("baton %v with a wrong Consul token: exit %d\n%s", args, code, out)
		}
		t.Logf("baton %v with a wrong token: %s", args, lastLine(out))
	}
}

// A database host holds only what its heartbeat agent needs: its own config and secrets
// (the heartbeat user's password, its own Consul token), never the admin or replication
// password, and a token that writes its own reach/ key and nothing else.
func TestHeartbeatAgentsHoldLeastPrivilege(t *testing.T) {
	fault(t, "heartbeat agents: own config and secrets, a Consul token for their own reach/ key only")
	tp := readTopo(t)
	for _, n := range append(tp.Replicas, tp.Primary) {
		dir := filepath.Join(sandbox["SANDBOX_STATE"], "agents")
		env, err := os.ReadFile(filepath.Join(dir, n.Name+".env"))
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := os.ReadFile(filepath.Join(dir, n.Name+".yaml"))
		if err != nil {
			t.Fatal(err)
		}
		for _, secret := range []string{secrets.AdminPassword, secrets.ReplPassword, secrets.ConsulToken} {
			if strings.Contains(string(env), secret) || strings.Contains(string(cfg), secret) {
				t.Fatalf("the agent files of %s hold a secret of Baton's", n.Name)
			}
		}
		token := strings.TrimSpace(strings.SplitN(string(env[strings.Index(string(env), "CONSUL_HTTP_TOKEN=")+len("CONSUL_HTTP_TOKEN="):]), "\n", 2)[0])
		cc := api.DefaultConfig()
		cc.Address, cc.Token = sandbox["CONSUL_HTTP_ADDR"], token
		c, err := api.NewClient(cc)
		if err != nil {
			t.Fatal(err)
		}
		kv := c.KV()
		if _, _, err := kv.Get("baton/clusters/demo/primary", nil); err != nil {
			t.Fatalf("the agent of %s cannot read the primary: %v", n.Name, err)
		}
		own := "baton/reach/demo/" + n.Name
		p, _, err := kv.Get(own, nil)
		if err != nil {
			t.Fatal(err)
		}
		if p != nil {
			if _, err := kv.Put(p, nil); err != nil {
				t.Fatalf("the agent of %s cannot write its own reach key: %v", n.Name, err)
			}
		}
		for _, key := range []string{"baton/clusters/demo/primary", "baton/clusters/demo/epoch", "baton/reach/demo/someone-else", "baton/clusters/demo/maintenance"} {
			if _, err := kv.Put(&api.KVPair{Key: key, Value: []byte("x")}, nil); err == nil || !strings.Contains(err.Error(), "403") {
				t.Fatalf("the agent token of %s may write %s: %v", n.Name, key, err)
			}
		}
	}
	if out, err := exec.Command("ps", "-eo", "args").Output(); err != nil || strings.Contains(string(out), "baton-heartbeat --config "+sandbox["BATON_CONFIG"]) {
		t.Fatalf("a heartbeat agent runs with Baton's own config: %v", err)
	}
}

// The sandbox runs Temporal and Consul without TLS: the worker, the detector and
// `baton config validate` say so, once for each.
func TestUnsafeSettingsAreAnnounced(t *testing.T) {
	fault(t, "unsafe settings announced at startup and by baton config validate")
	out, code := baton(t, "config", "validate")
	if code != 0 {
		t.Fatalf("config validate: %s", out)
	}
	for _, want := range []string{"warning: temporal.tls.enabled is false", "warning: consul.tls.enabled is false"} {
		if strings.Count(out, want) != 1 {
			t.Fatalf("config validate should print %q once:\n%s", want, out)
		}
	}
	if strings.Contains(out, "mysql.tls.mode") {
		t.Fatalf("the sandbox verifies MySQL TLS, yet config validate warns about it:\n%s", out)
	}
	for _, proc := range []string{"worker", "detector"} {
		b, err := os.ReadFile(filepath.Join(sandbox["SANDBOX_STATE"], "logs", proc+".log"))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), "unsafe setting: consul.tls.enabled is false") {
			t.Fatalf("the %s did not warn at startup about plaintext Consul", proc)
		}
	}
}
