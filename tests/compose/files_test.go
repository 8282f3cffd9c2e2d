package compose

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/baton-db/baton/internal/config"
	"github.com/baton-db/baton/internal/flavor"
)

func read(t *testing.T, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// repoFile returns the repository file bind-mounted at target in s ("" if none).
func repoFile(s types.ServiceConfig, target string) string {
	for _, v := range s.Volumes {
		if v.Type == types.VolumeTypeBind && v.Target == target {
			if rel, err := filepath.Rel(root, v.Source); err == nil {
				return rel
			}
		}
	}
	return ""
}

// cnf reads an option file: each option (dashes as underscores, a loose- prefix dropped)
// with its last value, "ON" for a bare flag; plugin-load-add values are listed apart.
func cnf(text string) (map[string]string, []string) {
	opts, plugins := map[string]string{}, []string(nil)
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, "[") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			v = "ON"
		}
		k = strings.TrimPrefix(strings.ReplaceAll(strings.TrimSpace(k), "-", "_"), "loose_")
		if k == "plugin_load_add" {
			plugins = append(plugins, strings.TrimSpace(v))
			continue
		}
		opts[k] = strings.TrimSpace(v)
	}
	return opts, plugins
}

// setVar is the variable of Baton's "SET GLOBAL var = value" statement.
func setVar(t *testing.T, stmt string) string {
	t.Helper()
	m := regexp.MustCompile(`^SET GLOBAL (\w+) =`).FindStringSubmatch(stmt)
	if m == nil {
		t.Fatalf("unexpected statement %q", stmt)
	}
	return m[1]
}

// Each flavour's option file sets what Baton runs on: the semi-sync variables its statements
// switch (replicas acknowledge, the primary waits only once Baton opens it, AFTER_SYNC), what
// `baton cluster add` requires of every node (GTIDs enforced, replicas logging what they apply),
// read_only at start, and the report port Baton discovers replicas by.
func TestComposeDatabaseConfigs(t *testing.T) {
	for _, c := range []struct {
		service, file string
		f             flavor.Flavor
		plugins       []string
		load          func(t *testing.T) *types.Project
	}{
		{"node1", "deploy/docker/mariadb.cnf", flavor.MariaDB{}, nil, func(t *testing.T) *types.Project { return load(t, nil) }},
		{"mysql1", "deploy/docker/mysql.cnf", flavor.MySQL{}, []string{"semisync_source.so", "semisync_replica.so"},
			func(t *testing.T) *types.Project { return load(t, []string{"BATON_FLAVOR=mysql"}, "mysql") }},
	} {
		t.Run(c.f.Name(), func(t *testing.T) {
			s := service(t, c.load(t), c.service)
			if got := repoFile(s, "/etc/mysql/conf.d/baton.cnf"); got != c.file {
				t.Errorf("%s mounts %q as its option file, want %s", s.Name, got, c.file)
			}
			opts, plugins := cnf(read(t, c.file))
			primary, replica := setVar(t, c.f.SetSemiSyncPrimary(true)[0]), setVar(t, c.f.SetSemiSyncReplica(true)[0])
			want := map[string]string{
				primary: "OFF",
				replica: "ON",
				strings.Replace(primary, "_enabled", "_wait_point", 1): "AFTER_SYNC",
				"read_only":   "ON",
				"report_port": "3306",
			}
			for _, m := range regexp.MustCompile(`@@(\w+)`).FindAllStringSubmatch(c.f.Onboarding(), -1) {
				if m[1] != "server_id" { // each node's own, from its command
					want[m[1]] = "ON"
				}
			}
			for k, v := range want {
				if !strings.EqualFold(opts[k], v) {
					t.Errorf("%s: %s = %q, want %s", c.file, k, opts[k], v)
				}
			}
			if opts["log_bin"] == "" {
				t.Errorf("%s: log_bin is not set", c.file)
			}
			for _, p := range c.plugins {
				if !slices.Contains(plugins, p) {
					t.Errorf("%s: plugin-load-add %s missing (semi-sync is a plugin in MySQL)", c.file, p)
				}
			}
		})
	}
}

// Each node creates Baton's accounts on its first start, from the mounted secrets file, for
// the addresses of the project's network.
func TestComposeNodesCreateBatonsAccounts(t *testing.T) {
	script := "deploy/docker/node-users.sh"
	for _, f := range flavours {
		p := load(t, f.env, f.profiles...)
		subnet := p.Networks["default"].Ipam.Config
		if len(subnet) != 1 || !strings.HasSuffix(subnet[0].Subnet, ".0/24") {
			t.Fatalf("the default network's subnet is %+v, want one /24", subnet)
		}
		prefix := strings.TrimSuffix(subnet[0].Subnet, "0/24")
		for _, name := range f.nodes {
			s := service(t, p, name)
			if got := repoFile(s, "/docker-entrypoint-initdb.d/node-users.sh"); got != script {
				t.Errorf("%s runs %q at its first start, want %s", name, got, script)
			}
			if len(s.Secrets) != 1 || s.Secrets[0].Source != "baton" {
				t.Errorf("%s secrets %+v, want the baton secrets file", name, s.Secrets)
			}
			if h := s.Environment["BATON_ACCOUNT_HOST"]; h == nil || *h != prefix+"%" {
				t.Errorf("%s: BATON_ACCOUNT_HOST %v, want %s%% (the project's network)", name, h, prefix)
			}
			if ip := s.Networks["default"].Ipv4Address; !strings.HasPrefix(ip, prefix) {
				t.Errorf("%s address %s is outside %s", name, ip, subnet[0].Subnet)
			}
		}
	}
	// Every secret the script reads is in the example secrets file; the accounts `baton
	// cluster add` requires (replication, heartbeat) are among them.
	text, example := read(t, script), read(t, "deploy/docker/secrets.env.example")
	keys := regexp.MustCompile(`(?:account|password|secret) (MYSQL_[A-Z_]+)`).FindAllStringSubmatch(text, -1)
	var used []string
	for _, k := range keys {
		used = append(used, k[1])
		if !regexp.MustCompile(`(?m)^` + k[1] + `=`).MatchString(example) {
			t.Errorf("%s reads %s, which secrets.env.example lacks", script, k[1])
		}
	}
	for _, k := range []string{"MYSQL_ADMIN_USER", "MYSQL_REPL_USER", "MYSQL_HEARTBEAT_USER", "MYSQL_GUARD_USER", "MYSQL_APP_USER"} {
		if !slices.Contains(used, k) {
			t.Errorf("%s does not create the account %s", script, k)
		}
	}
	if !strings.Contains(text, "sql_log_bin=0") || !strings.Contains(text, "RESET MASTER") || !strings.Contains(text, "RESET BINARY LOGS AND GTIDS") {
		t.Errorf("%s must not binlog the accounts and must start every node with an empty GTID history", script)
	}
	// The agents log in with the heartbeat account the nodes create.
	user := regexp.MustCompile(`(?m)^MYSQL_HEARTBEAT_USER=.*$`)
	if a, b := user.FindString(read(t, "deploy/docker/agent.env.example")), user.FindString(example); a == "" || a != b {
		t.Errorf("agent.env.example %q and secrets.env.example %q must name the same heartbeat user", a, b)
	}
}

// batonConfig writes the compose file's Baton config with the example secrets file, as
// Baton would read it in the container, and loads it with Baton's own loader.
func batonConfig(t *testing.T, p *types.Project) *config.Config {
	t.Helper()
	dir := t.TempDir()
	secrets := filepath.Join(dir, "secrets.env")
	if err := os.WriteFile(secrets, []byte(read(t, "deploy/docker/secrets.env.example")), 0o600); err != nil {
		t.Fatal(err)
	}
	text := p.Configs["baton"].Content
	if !strings.Contains(text, "secrets_file: /run/secrets/baton\n") {
		t.Fatalf("the baton config does not read /run/secrets/baton:\n%s", text)
	}
	path := filepath.Join(dir, "baton.yaml")
	text = strings.Replace(text, "/run/secrets/baton", secrets, 1)
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(path, nil)
	if err != nil {
		t.Fatalf("Baton refuses the compose config: %v", err)
	}
	return c
}

// The config Baton's containers get is valid for Baton, its cluster's flavour follows
// BATON_FLAVOR, and its HAProxies are the stack's.
func TestComposeBatonConfig(t *testing.T) {
	for _, f := range flavours {
		t.Run(f.name, func(t *testing.T) {
			p := load(t, f.env, f.profiles...)
			c := batonConfig(t, p)
			cc, err := c.Cluster("demo")
			if err != nil {
				t.Fatal(err)
			}
			if string(cc.Flavor) != f.name {
				t.Errorf("cluster demo's flavor %s, want %s", cc.Flavor, f.name)
			}
			if c.Temporal.Address != "temporal:7233" || c.Consul.Address != "consul:8500" || cc.LocalWriter != "haproxy-local:3306" {
				t.Errorf("config addresses %s %s %s", c.Temporal.Address, c.Consul.Address, cc.LocalWriter)
			}
			var names []string
			for _, h := range cc.HAProxies {
				names = append(names, h.Name)
				if h.Writer != "haproxy-"+h.Name+":3306" || h.Reader != "haproxy-"+h.Name+":3307" || h.Zone != h.Name {
					t.Errorf("haproxy %+v: want writer haproxy-%s:3306, reader :3307 in zone %s", h, h.Name, h.Name)
				}
				service(t, p, "haproxy-"+h.Name)
			}
			if !slices.Equal(names, []string{"a", "b"}) {
				t.Errorf("haproxies %v, want a and b", names)
			}
			for _, name := range []string{"bootstrap", "baton-worker", "baton-detector"} {
				s := service(t, p, name)
				if len(s.Configs) != 1 || s.Configs[0].Source != "baton" || s.Configs[0].Target != "/etc/baton/baton.yaml" ||
					len(s.Secrets) != 1 || s.Secrets[0].Source != "baton" {
					t.Errorf("%s configs %+v secrets %+v: want the baton config at /etc/baton/baton.yaml and the baton secrets", name, s.Configs, s.Secrets)
				}
			}
		})
	}
	// The heartbeat agents' config loads with their own secrets only (Baton's loader refuses
	// the admin or the replication password there).
	dir := t.TempDir()
	secrets := filepath.Join(dir, "agent.env")
	if err := os.WriteFile(secrets, []byte(read(t, "deploy/docker/agent.env.example")), 0o600); err != nil {
		t.Fatal(err)
	}
	text := read(t, "deploy/docker/agent.yaml")
	if !strings.Contains(text, "/run/secrets/agent") {
		t.Fatalf("agent.yaml does not read /run/secrets/agent")
	}
	path := filepath.Join(dir, "agent.yaml")
	if err := os.WriteFile(path, []byte(strings.Replace(text, "/run/secrets/agent", secrets, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := config.LoadAgent(path, nil); err != nil {
		t.Errorf("Baton refuses the agents' config: %v", err)
	}
}

// logicalLines returns a shell script's lines with continuations joined and comments dropped.
func logicalLines(text string) []string {
	var out []string
	for _, l := range strings.Split(strings.ReplaceAll(text, "\\\n", " "), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return out
}

// flags reads --flag value and --flag pairs (a flag followed by another flag has the value "").
func flags(args []string) map[string]string {
	out := map[string]string{}
	for i := 0; i < len(args); i++ {
		if strings.HasPrefix(args[i], "--") {
			if i+1 < len(args) && !strings.HasPrefix(args[i+1], "--") {
				out[args[i]] = args[i+1]
				i++
			} else {
				out[args[i]] = ""
			}
		}
	}
	return out
}

// The bootstrap sets Temporal up and onboards the cluster with Baton's own commands, exactly
// as the nodes are defined, and writes nothing to Consul or MySQL by hand.
func TestComposeBootstrapUsesBatonsCommandsOnly(t *testing.T) {
	p := load(t, nil)
	b := service(t, p, "bootstrap")
	script := "deploy/docker/bootstrap.sh"
	if len(b.Entrypoint) != 1 || repoFile(b, b.Entrypoint[0]) != script {
		t.Fatalf("bootstrap runs %v, want %s mounted and run", b.Entrypoint, script)
	}
	call := regexp.MustCompile(`(?:^|[\s(])baton\s+([^)]*)`)
	var calls [][]string
	for _, l := range logicalLines(read(t, script)) {
		for _, m := range call.FindAllStringSubmatch(l, -1) {
			args := strings.Fields(m[1])
			if !containsPair(args, "--config", "/etc/baton/baton.yaml") {
				t.Errorf("%s: %q does not use the mounted config", script, l)
			}
			calls = append(calls, slices.DeleteFunc(args, func(a string) bool { return a == "--config" || a == "/etc/baton/baton.yaml" }))
		}
		for _, bad := range []string{`(?:^|[;&|(]|\bthen|\bdo|\bexec)\s*(consul|curl|wget|nc|socat|mysql\w*|mariadb\w*)\b`, `/v1/`,
			`\b(INSERT|UPDATE|DELETE|CREATE|ALTER|GRANT|DROP|SET\s+GLOBAL|CHANGE\s+(MASTER|REPLICATION)|START\s+(SLAVE|REPLICA))\b`} {
			if regexp.MustCompile(`(?i)` + bad).MatchString(l) {
				t.Errorf("%s writes by hand (%s): %q; only Baton's commands may", script, bad, l)
			}
		}
	}
	idx := func(sub ...string) int {
		return slices.IndexFunc(calls, func(c []string) bool { return len(c) >= len(sub) && slices.Equal(c[:len(sub)], sub) })
	}
	setup, list, add := idx("setup"), idx("cluster", "list"), idx("cluster", "add")
	if setup < 0 || add < 0 {
		t.Fatalf("%s calls %v: want baton setup and baton cluster add", script, calls)
	}
	if list < 0 || list > add {
		t.Errorf("%s must ask `baton cluster list` before adding (a restart skips a cluster Consul has)", script)
	}
	// The cluster add names exactly the compose nodes: node1 the primary, node2 and node3
	// attached, names as the heartbeat agents know them, zones as the HAProxies'.
	host := func(i int) string { return service(t, p, fmt.Sprintf("node%d", i)).Hostname }
	want := map[string]string{
		"--name":    "demo",
		"--primary": host(1) + ":3306",
		"--init":    "",
		"--local":   "", // in the bootstrap's process: no worker runs yet
		"--attach":  host(2) + ":3306," + host(3) + ":3306",
		"--names":   host(1) + "=node1," + host(2) + "=node2," + host(3) + "=node3",
		"--zones":   host(1) + "=a," + host(2) + "=b," + host(3) + "=a",
	}
	got := flags(calls[add][2:])
	for k, v := range want {
		if g, ok := got[k]; !ok {
			t.Errorf("baton cluster add lacks %s", k)
		} else if g != v {
			t.Errorf("baton cluster add %s %q, want %q", k, g, v)
		}
	}
	if len(got) != len(want) {
		t.Errorf("baton cluster add flags %v, want exactly %v", got, want)
	}
	for i, node := range []string{"node1", "node2", "node3"} {
		if hb := service(t, p, fmt.Sprintf("heartbeat-%d", i+1)); !containsPair(hb.Command, "--node", node) {
			t.Errorf("%s does not run for %s", hb.Name, node)
		}
	}
}

// hcl reads `key = "value"` lines of an HCL file.
func hcl(text string) map[string]string {
	out := map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^\s*(\w+)\s*=\s*"([^"]*)"`).FindAllStringSubmatch(text, -1) {
		out[m[1]] = m[2]
	}
	// A list of strings (consul-template's command run without a shell): its elements
	// joined by spaces.
	for _, m := range regexp.MustCompile(`(?m)^\s*(\w+)\s*=\s*\[([^\]]*)\]`).FindAllStringSubmatch(text, -1) {
		var elems []string
		for _, e := range regexp.MustCompile(`"([^"]*)"`).FindAllStringSubmatch(m[2], -1) {
			elems = append(elems, e[1])
		}
		out[m[1]] = strings.Join(elems, " ")
	}
	return out
}

// The remote HAProxy hosts are wired as the sandbox's: the global settings (hard-stop-after,
// the runtime and master sockets baton-haproxy-reload uses, in the folder it is given), one
// template routing by ipv4, consul-template running the reload helper, and a Consul agent
// registering the service haproxy with the checks Baton's pre-checks read.
func TestComposeRemoteHAProxyHosts(t *testing.T) {
	p := load(t, nil)
	ct := hcl(read(t, "deploy/docker/consul-template.hcl"))
	m := regexp.MustCompile(`^baton-haproxy-reload --dir (\S+)$`).FindStringSubmatch(ct["command"])
	if m == nil {
		t.Fatalf("consul-template's command %q, want baton-haproxy-reload --dir DIR", ct["command"])
	}
	dir := m[1]
	if ct["destination"] != dir+"/haproxy.cfg" || ct["pid_file"] == "" || filepath.Dir(ct["pid_file"]) != dir {
		t.Errorf("consul-template renders %q, pid file %q: want both in %s", ct["destination"], ct["pid_file"], dir)
	}
	global := read(t, "deploy/docker/haproxy-global.cfg")
	for _, re := range []string{`(?m)^\s*hard-stop-after \d+m?s$`, `(?m)^\s*stats socket ` + dir + `/admin.sock .*level admin`,
		`(?m)^\s*server-state-file ` + dir + `/server-state$`, `(?m)^\s*load-server-state-from-file global$`, `(?m)^\s*mode tcp$`} {
		if !regexp.MustCompile(re).MatchString(global) {
			t.Errorf("haproxy-global.cfg lacks %s", re)
		}
	}
	remote := read(t, "deploy/docker/haproxy-remote.cfg.ctmpl")
	if !strings.Contains(remote, "$p.ipv4") || !strings.Contains(remote, "$n.ipv4") || strings.Contains(remote, "fqdn") {
		t.Errorf("haproxy-remote.cfg.ctmpl must route by ipv4, never by fqdn")
	}
	// Catalog-driven, as the sandbox's: every cluster of baton/catalog, its topology under
	// baton/clusters, for the host the service's environment names.
	for _, want := range []string{`range ls "baton/catalog"`, `tree (printf "baton/clusters/%s/" $c)`,
		`env "BATON_HAPROXY_NAME"`, `env "BATON_HAPROXY_HOST"`} {
		if !strings.Contains(remote, want) {
			t.Errorf("haproxy-remote.cfg.ctmpl lacks %s", want)
		}
	}
	local := read(t, "deploy/docker/haproxy-local.cfg")
	if strings.Contains(local, "fqdn") || strings.Contains(local, "{{") ||
		!regexp.MustCompile(`server remote_b haproxy-b:3306 .*\n.*server remote_a haproxy-a:3306 .*backup`).MatchString(local) {
		t.Errorf("haproxy-local.cfg must forward the writer to haproxy-b, haproxy-a as backup")
	}
	stats := regexp.MustCompile(`(?m)^listen stats\n(?:\s+.*\n)*?\s+bind :(\d+)`).FindStringSubmatch(remote)
	if stats == nil {
		t.Fatalf("haproxy-remote.cfg.ctmpl has no stats listener")
	}
	lsvc := service(t, p, "haproxy-local")
	if !slices.Equal(lsvc.Command, []string{"haproxy", "-f", "/usr/local/etc/haproxy/global.cfg", "-f", "/usr/local/etc/haproxy/local.cfg"}) ||
		repoFile(lsvc, "/usr/local/etc/haproxy/global.cfg") != "deploy/docker/haproxy-global.cfg" ||
		repoFile(lsvc, "/usr/local/etc/haproxy/local.cfg") != "deploy/docker/haproxy-local.cfg" {
		t.Errorf("haproxy-local runs %v with %v: want haproxy-global.cfg, then haproxy-local.cfg", lsvc.Command, lsvc.Volumes)
	}
	// What haproxy-local connects to is what the catalog entry of demo says each host binds.
	forwards := servers(local)

	cfg := batonConfig(t, p)
	cc, _ := cfg.Cluster("demo")
	for _, h := range cc.HAProxies {
		for backend, addr := range map[string]string{"writer": h.Writer, "reader": h.Reader} {
			if !slices.Contains(forwards[backend], "remote_"+h.Name+" "+addr) {
				t.Errorf("haproxy-local.cfg %s servers %v: want remote_%s %s, demo's %s on host %s", backend, forwards[backend], h.Name, addr, backend, h.Name)
			}
		}
		// consul-template knows which host it renders for: the entries' name, the host of
		// their addresses (the HAProxy container's service).
		env := service(t, p, "consul-template-"+h.Name).Environment
		for k, want := range map[string]string{"BATON_HAPROXY_NAME": h.Name, "BATON_HAPROXY_HOST": "haproxy-" + h.Name} {
			if v := env[k]; v == nil || *v != want {
				t.Errorf("consul-template-%s: %s %v, want %s", h.Name, k, v, want)
			}
		}
		for _, a := range []string{h.Writer, h.Reader} {
			if host, _, _ := strings.Cut(a, ":"); host != "haproxy-"+h.Name {
				t.Errorf("demo's frontend %s on host %s: want it at haproxy-%s, the host's service, which the template binds", a, h.Name, h.Name)
			}
		}
		// HAProxy: master-worker, its master socket where the helper looks, the rendered file.
		hp := service(t, p, "haproxy-"+h.Name)
		run := strings.Join(hp.Command, " ")
		for _, want := range []string{"haproxy -W", "-S " + dir + "/master.sock", "-f " + ct["destination"]} {
			if !strings.Contains(run, want) {
				t.Errorf("haproxy-%s runs %q, want %q in it", h.Name, run, want)
			}
		}
		// consul-template: the global settings, then the remote template, as one template.
		c := service(t, p, "consul-template-"+h.Name)
		if len(c.Entrypoint) < 3 || c.Entrypoint[0] != "sh" || c.Entrypoint[1] != "-c" {
			t.Fatalf("consul-template-%s entrypoint %v", h.Name, c.Entrypoint)
		}
		cat := regexp.MustCompile(`cat (\S+) (\S+) >(\S+) && exec consul-template -config (\S+) "\$@"`).FindStringSubmatch(c.Entrypoint[2])
		if cat == nil {
			t.Fatalf("consul-template-%s entrypoint %q: want cat GLOBAL TEMPLATE >SOURCE && exec consul-template -config HCL", h.Name, c.Entrypoint[2])
		}
		if repoFile(c, cat[1]) != "deploy/docker/haproxy-global.cfg" || repoFile(c, cat[2]) != "deploy/docker/haproxy-remote.cfg.ctmpl" ||
			cat[3] != ct["source"] || repoFile(c, cat[4]) != "deploy/docker/consul-template.hcl" {
			t.Errorf("consul-template-%s: %q with mounts %v does not render haproxy-global.cfg + haproxy-remote.cfg.ctmpl into %s",
				h.Name, c.Entrypoint[2], c.Volumes, ct["source"])
		}
		// The host's Consul agent: node haproxy-X, the service haproxy-X with its two checks.
		agent := service(t, p, "consul-agent-"+h.Name)
		for _, flag := range []string{"-node=haproxy-" + h.Name, "-retry-join=consul", "-enable-local-script-checks"} {
			if !slices.Contains(agent.Command, flag) {
				t.Errorf("consul-agent-%s command %v lacks %s", h.Name, agent.Command, flag)
			}
		}
		file := "deploy/docker/consul-haproxy-" + h.Name + ".json"
		if repoFile(agent, "/consul/config/haproxy.json") != file {
			t.Errorf("consul-agent-%s does not load %s", h.Name, file)
		}
		var def struct {
			Service struct {
				ID, Name string
				Meta     map[string]string
				Checks   []struct {
					ID, Name, TCP string
					Args          []string
				}
			}
		}
		if err := json.Unmarshal([]byte(read(t, file)), &def); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		sv := def.Service
		if sv.ID != "haproxy-"+h.Name || sv.Name != "haproxy" || sv.Meta["zone"] != h.Zone || sv.Meta["writer"] != h.Writer || sv.Meta["reader"] != h.Reader {
			t.Errorf("%s registers %s/%s meta %v; want haproxy-%s/haproxy, zone %s, writer %s, reader %s", file, sv.ID, sv.Name, sv.Meta, h.Name, h.Zone, h.Writer, h.Reader)
		}
		if len(sv.Checks) != 2 {
			t.Fatalf("%s has %d checks, want haproxy and consul-template", file, len(sv.Checks))
		}
		if c := sv.Checks[0]; c.Name != "haproxy" || c.TCP != "haproxy-"+h.Name+":"+stats[1] {
			t.Errorf("%s check %+v: want haproxy, TCP on haproxy-%s:%s (the stats port)", file, c, h.Name, stats[1])
		}
		if c := sv.Checks[1]; c.Name != "consul-template" || len(c.Args) != 3 || c.Args[0] != "sh" ||
			!strings.Contains(c.Args[2], ct["pid_file"]) || !strings.Contains(c.Args[2], "exit 2") {
			t.Errorf("%s check %+v: want consul-template, alive by its pid file %s, critical (exit 2) otherwise", file, c, ct["pid_file"])
		}
	}
}
