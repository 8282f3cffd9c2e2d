// Package tests holds Baton's integration tests. They run against the real sandbox
// (MariaDB, Consul, consul-template, HAProxy, Temporal): no mocks. They run only with
// BATON_INTEGRATION=1, so that a plain `go test ./...` needs no server. TestMain starts the
// sandbox when it is not running, and stops it again at the end if it started it.
package tests

import (
	"context"
	"crypto/tls"
	"database/sql"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/hashicorp/consul/api"

	"github.com/baton-db/baton/internal/config"
	"github.com/baton-db/baton/internal/envfile"
	"github.com/baton-db/baton/internal/loadgen"
	"github.com/baton-db/baton/internal/topology"
	"github.com/baton-db/baton/tests/sandboxkit"
)

var (
	root    string
	kit     *sandboxkit.Kit   // the sandbox, shared with the nemesis (tests/sandboxkit)
	sandbox map[string]string // the env file
	secrets config.Secrets
	appUser struct{ user, password string }
	// adminTLS is Baton's MySQL TLS, checking only the chain: tests also connect through
	// proxies, whose addresses no certificate names.
	adminTLS *tls.Config
	// clusterCfg is the sandbox cluster's config (its durability policy, for one).
	clusterCfg config.ClusterConfig
	topo       *topology.Store
	consulKV   *api.KV
)

func TestMain(m *testing.M) {
	if os.Getenv("BATON_INTEGRATION") == "" {
		fmt.Println("tests: the real-server tests run only with BATON_INTEGRATION=1 (deploy/test.sh sets it and brings the sandbox up); skipped")
		os.Exit(0)
	}
	_ = mysql.SetLogger(log.New(io.Discard, "", 0)) // dropped connections are the point of these tests
	root, _ = filepath.Abs("..")
	state := filepath.Join(root, "deploy/local/state")
	started := false
	if !sandboxRunning(state) {
		fmt.Println("tests: starting the sandbox (deploy/local/sandbox.sh up)")
		cmd := exec.Command(filepath.Join(root, "deploy/local/sandbox.sh"), "up")
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Println("tests: sandbox up failed:", err)
			os.Exit(1)
		}
		started = true
	} else {
		fmt.Println("tests: reusing the running sandbox")
	}
	code := run(m, state)
	printFaultSummary()
	if started && os.Getenv("BATON_KEEP_SANDBOX") == "" {
		cmd := exec.Command(filepath.Join(root, "deploy/local/sandbox.sh"), "down")
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		_ = cmd.Run()
	}
	os.Exit(code)
}

func run(m *testing.M, state string) int {
	var err error
	if kit, err = sandboxkit.Load(root); err != nil {
		fmt.Println("tests:", err)
		return 1
	}
	sandbox, secrets, adminTLS = kit.Env, kit.Secrets, kit.AdminTLS
	if b := os.Getenv("BATON_CLI"); b != "" {
		sandbox["BATON_BIN"] = b // a CLI built from the tree (go build -o /tmp/baton-cli ./starter), not the sandbox's
	}
	appUser.user, appUser.password = kit.AppUser, kit.AppPassword
	if clusterCfg, err = kit.Config.Cluster("demo"); err != nil {
		fmt.Println("tests:", err)
		return 1
	}
	topo, consulKV = kit.Topo, kit.Consul.KV()
	if err := prepareSchema(); err != nil {
		fmt.Println("tests: schema:", err)
		return 1
	}
	return m.Run()
}

func sandboxRunning(state string) bool {
	env, err := envfile.Read(filepath.Join(state, "env"))
	if err != nil {
		return false
	}
	out, err := exec.Command(filepath.Join(root, "deploy/local/sandbox.sh"), "status").Output()
	if err != nil || strings.Contains(string(out), " dead") || !strings.Contains(string(out), "worker running") {
		return false
	}
	db := openDB(env["LOCAL_WRITER_ADDR"], "nobody", "x")
	defer db.Close()
	err = ping(db)
	return err == nil || strings.Contains(err.Error(), "Access denied")
}

func ping(db *sql.DB) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return db.PingContext(ctx)
}

func openDB(addr, user, password string) *sql.DB { return openTLS(addr, user, password, nil) }

func openTLS(addr, user, password string, t *tls.Config) *sql.DB {
	return sandboxkit.OpenTLS(addr, user, password, t)
}

func adminDB(addr string) *sql.DB {
	return openTLS(addr, secrets.AdminUser, secrets.AdminPassword, adminTLS)
}
func appDB(addr string) *sql.DB { return openDB(addr, appUser.user, appUser.password) }

// nodes returns the sandbox's MySQL addresses.
func nodes() []string { return strings.Fields(sandbox["MYSQL_NODES"]) }

// writers returns every writer endpoint: both remote HAProxies and the local one.
func writers() map[string]string {
	return map[string]string{"remote a": sandbox["REMOTE_A_WRITER_ADDR"], "remote b": sandbox["REMOTE_B_WRITER_ADDR"], "local": sandbox["LOCAL_WRITER_ADDR"]}
}

// serverIDVia opens a fresh connection through addr and returns @@server_id.
func serverIDVia(addr string) (uint32, error) {
	db := adminDB(addr)
	defer db.Close()
	var id uint32
	err := db.QueryRow("SELECT @@server_id").Scan(&id)
	return id, err
}

func prepareSchema() error {
	for _, c := range []string{"demo", "demo2"} {
		t, err := topo.Read(context.Background(), c)
		if err != nil {
			return err
		}
		db := adminDB(t.Primary.Addr())
		defer db.Close()
		for _, q := range []string{
			"CREATE DATABASE IF NOT EXISTS app",
			loadgen.Schema,
			"CREATE TABLE IF NOT EXISTS app.ddl_target (id INT PRIMARY KEY)",
		} {
			var err error
			for try := 0; try < 10; try++ { // a sandbox just up may still end sessions as its agents settle
				if _, err = db.Exec(q); err == nil {
					break
				}
				fmt.Printf("tests: schema: %s on %s: %v; again\n", q, c, err)
				time.Sleep(500 * time.Millisecond)
			}
			if err != nil {
				return fmt.Errorf("%s on %s: %w", q, c, err)
			}
		}
	}
	return nil
}

// baton runs the CLI with the sandbox's config and returns its combined output and exit code.
func baton(t *testing.T, args ...string) (string, int) {
	t.Helper()
	return batonConfig(t, sandbox["BATON_CONFIG"], args...)
}

// batonConfig runs the baton CLI with another config file.
func batonConfig(t *testing.T, config string, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute) // no command may hang the suite
	defer cancel()
	cmd := exec.CommandContext(ctx, sandbox["BATON_BIN"], append([]string{"--config", config}, args...)...)
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run baton %v: %v", args, err)
	}
	return string(out), code
}

func readTopo(t *testing.T) topology.Topology {
	t.Helper()
	return readTopoOf(t, "demo")
}

// readTopoOf reads a cluster's topology (the sandbox has demo and demo2).
func readTopoOf(t *testing.T, cluster string) topology.Topology {
	t.Helper()
	tp, err := topo.Read(context.Background(), cluster)
	if err != nil {
		t.Fatal(err)
	}
	return tp
}

// waitRouting waits until every writer endpoint reaches serverID and returns how long it took.
func waitRouting(t *testing.T, serverID uint32, limit time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		ok := true
		last := ""
		for name, addr := range writers() {
			id, err := serverIDVia(addr)
			if err != nil || id != serverID {
				ok, last = false, fmt.Sprintf("%s reached %d (%v)", name, id, err)
			}
		}
		if ok {
			return time.Since(start)
		}
		if time.Since(start) > limit {
			t.Fatalf("writers did not all reach server_id %d within %s: %s", serverID, limit, last)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// startNode restarts a killed node's mysqld and reports whether it had to be rebuilt: MariaDB
// 10.11 now and then aborts in crash recovery, and start-node then replaces its datadir with
// a copy of the primary's (exit 3). The rebuild is counted and noted in the test's row, and a
// caller that reads what the node held must not read the copy as the node's own data.
func startNode(t *testing.T, name string) (rebuilt bool) {
	t.Helper()
	rebuilt, out, err := sandboxkit.StartNode(root, name)
	if err != nil {
		t.Fatal(err)
	}
	if rebuilt {
		rebuilds.Add(1)
		t.Logf("mysqld of %s aborted in crash recovery; start-node rebuilt it from the primary:\n%s", name, out)
		noteFault(t, "mysqld of "+name+" aborted in crash recovery (MariaDB), rebuilt from the primary")
	}
	return rebuilt
}

// socketQuery runs query on node name as OS root over its Unix socket, which no iptables
// rule cuts, and returns the first column of the first row.
func socketQuery(t *testing.T, name, query string) string {
	t.Helper()
	out, err := trySocketQuery(name, query)
	if err != nil {
		t.Fatalf("query %s over its socket: %v", name, err)
	}
	return out
}

// trySocketQuery is socketQuery that returns its error (with the client's message).
func trySocketQuery(name, query string) (string, error) {
	cnf := filepath.Join(sandbox["SANDBOX_STATE"], "mariadb", name, "my.cnf")
	out, err := exec.Command("mariadb", "--defaults-file="+cnf, "-uroot", "-N", "-B", "-e", query).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%w: %s", err, strings.TrimSpace(string(out)))
	}
	return strings.TrimSpace(string(out)), nil
}

// sandboxCmd runs deploy/local/sandbox.sh with args.
func sandboxCmd(t *testing.T, args ...string) {
	t.Helper()
	out, err := exec.Command(filepath.Join(root, "deploy/local/sandbox.sh"), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("sandbox.sh %v: %v\n%s", args, err, out)
	}
}
