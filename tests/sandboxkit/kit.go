// Package sandboxkit holds what the integration tests (tests/) and the nemesis
// (tests/nemesis) both need to act on the real sandbox: its env file, secrets and TLS, the
// connections tests open, iptables cuts, the cgroup cut of one process from Consul, and
// the one check of every live member. It returns errors instead of failing a test, so a
// program can use it too.
package sandboxkit

import (
	"context"
	"crypto/tls"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/hashicorp/consul/api"
	"go.temporal.io/sdk/client"

	"github.com/baton-db/baton/internal/config"
	"github.com/baton-db/baton/internal/envfile"
	"github.com/baton-db/baton/internal/tlsconf"
	"github.com/baton-db/baton/internal/topology"
)

// Kit is the running sandbox as a client sees it.
type Kit struct {
	Root    string            // the repository
	Env     map[string]string // deploy/local/state/env
	Config  *config.Config    // Baton's config (the sandbox's baton.yaml)
	Secrets config.Secrets
	// AppUser and AppPassword are the application's account.
	AppUser, AppPassword string
	// AdminTLS is Baton's MySQL TLS, checking only the chain: clients also connect through
	// proxies, whose addresses no certificate names.
	AdminTLS *tls.Config
	Consul   *api.Client
	Topo     *topology.Store
}

// Load reads the sandbox's env file, secrets and config under root.
func Load(root string) (*Kit, error) {
	k := &Kit{Root: root}
	var err error
	if k.Env, err = envfile.Read(filepath.Join(root, "deploy/local/state/env")); err != nil {
		return nil, err
	}
	raw, err := envfile.Read(k.Env["SECRETS_FILE"])
	if err != nil {
		return nil, err
	}
	k.AppUser, k.AppPassword = raw["MYSQL_APP_USER"], raw["MYSQL_APP_PASSWORD"]
	if k.Config, err = config.Load(k.Env["BATON_CONFIG"], nil); err != nil {
		return nil, err
	}
	k.Secrets = k.Config.Secrets
	o, err := k.Config.MySQLOptions(k.Secrets.AdminUser, k.Secrets.AdminPassword)
	if err != nil {
		return nil, err
	}
	k.AdminTLS = tlsconf.ChainOnly(o.TLS)
	cc := api.DefaultConfig()
	cc.Address, cc.Token = k.Env["CONSUL_HTTP_ADDR"], k.Secrets.ConsulToken
	if k.Consul, err = api.NewClient(cc); err != nil {
		return nil, err
	}
	k.Topo = topology.New(k.Consul, "baton/clusters")
	return k, nil
}

// OpenTLS opens a pool to addr with short timeouts (t nil: no TLS).
func OpenTLS(addr, user, password string, t *tls.Config) *sql.DB {
	c := mysql.NewConfig()
	c.User, c.Passwd, c.Net, c.Addr, c.TLS = user, password, "tcp", addr, t
	c.Timeout, c.ReadTimeout, c.WriteTimeout = time.Second, 5*time.Second, 5*time.Second
	conn, _ := mysql.NewConnector(c)
	return sql.OpenDB(conn)
}

// AdminDB opens Baton's admin account on addr (TLS with the client certificate).
func (k *Kit) AdminDB(addr string) *sql.DB {
	return OpenTLS(addr, k.Secrets.AdminUser, k.Secrets.AdminPassword, k.AdminTLS)
}

// AppDB opens the application's account on addr.
func (k *Kit) AppDB(addr string) *sql.DB { return OpenTLS(addr, k.AppUser, k.AppPassword, nil) }

// Nodes returns a sandbox cluster's MySQL addresses.
func (k *Kit) Nodes(cluster string) []string {
	if cluster == "demo2" {
		return strings.Fields(k.Env["DEMO2_MYSQL_NODES"])
	}
	return strings.Fields(k.Env["MYSQL_NODES"])
}

// LocalWriter is the application's local HAProxy writer of a sandbox cluster.
func (k *Kit) LocalWriter(cluster string) string {
	if cluster == "demo2" {
		return k.Env["DEMO2_LOCAL_WRITER_ADDR"]
	}
	return k.Env["LOCAL_WRITER_ADDR"]
}

// State is a path under the sandbox's state directory.
func (k *Kit) State(parts ...string) string {
	return filepath.Join(append([]string{k.Env["SANDBOX_STATE"]}, parts...)...)
}

// PID reads the pid file of a sandbox process (mariadb-node1, worker, heartbeat-node2, ...).
func (k *Kit) PID(name string) (int, error) {
	b, err := os.ReadFile(k.State("pids", name+".pid"))
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

// Sandbox runs deploy/local/sandbox.sh with args and returns its combined output.
func (k *Kit) Sandbox(args ...string) ([]byte, error) {
	out, err := exec.Command(filepath.Join(k.Root, "deploy/local/sandbox.sh"), args...).CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("sandbox.sh %v: %w\n%s", args, err, out)
	}
	return out, nil
}

// StartNode restarts node's mysqld with `sandbox.sh start-node` in the tree at root. MariaDB
// 10.11 now and then aborts in crash recovery after a kill -9; start-node then replaces the
// node's datadir with a copy of the primary's and exits 3: rebuilt is true, err nil, and
// out says so. Callers count it: the node's own data is gone.
func StartNode(root, node string) (rebuilt bool, out []byte, err error) {
	out, err = exec.Command(filepath.Join(root, "deploy/local/sandbox.sh"), "start-node", node).CombinedOutput()
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() == 3 {
		return true, out, nil
	}
	if err != nil {
		return false, out, fmt.Errorf("sandbox.sh start-node %s: %w\n%s", node, err, out)
	}
	return false, out, nil
}

// Baton runs the CLI with the sandbox's config (bounded by limit) and returns its combined
// output and exit code (-1 when it could not run).
func (k *Kit) Baton(limit time.Duration, args ...string) (string, int) {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, k.Env["BATON_BIN"], append([]string{"--config", k.Env["BATON_CONFIG"]}, args...)...)
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return string(out), ee.ExitCode()
	} else if err != nil {
		return string(out) + err.Error(), -1
	}
	return string(out), 0
}

// TemporalClient dials the sandbox's Temporal with a silent logger.
func (k *Kit) TemporalClient() (client.Client, error) {
	return client.Dial(client.Options{HostPort: k.Env["TEMPORAL_ADDRESS"], Namespace: k.Env["TEMPORAL_NAMESPACE"], Logger: Quiet{}})
}

// Quiet is a Temporal logger that drops everything.
type Quiet struct{}

func (Quiet) Debug(string, ...any) {}
func (Quiet) Info(string, ...any)  {}
func (Quiet) Warn(string, ...any)  {}
func (Quiet) Error(string, ...any) {}
