package compose

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/hashicorp/consul/api"

	"github.com/baton-db/baton/internal/catalog"
	"github.com/baton-db/baton/internal/config"
	"github.com/baton-db/baton/internal/envfile"
	"github.com/baton-db/baton/internal/topology"
)

// tools reads the binaries deploy/tools/build.sh built (its cache file names them).
func tools(t *testing.T) map[string]string {
	t.Helper()
	cache := os.Getenv("BATON_CACHE")
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, ".cache/baton")
	}
	kv, err := envfile.Read(filepath.Join(cache, "tools.env"))
	if err != nil {
		t.Fatalf("%v: run deploy/tools/build.sh first", err)
	}
	for _, k := range []string{"CONSUL_BIN", "CONSUL_TEMPLATE_BIN"} {
		if _, err := os.Stat(kv[k]); err != nil {
			t.Fatalf("%s: %v: run deploy/tools/build.sh first", k, err)
		}
	}
	return kv
}

// freePort is a port free on consulIP.
func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", consulIP+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}

// start starts cmd and stops it (SIGINT, then SIGKILL after 10 s) when the test ends, or
// earlier by the stop it returns; exited is closed once the process has exited.
func start(t *testing.T, cmd *exec.Cmd) (exited <-chan struct{}, stop func()) {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			_ = cmd.Process.Signal(os.Interrupt)
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				_ = cmd.Process.Kill()
				<-done
			}
		})
	}
	t.Cleanup(stop)
	return done, stop
}

// consulIP is the throwaway Consul's address: on 127.0.7.x, which no sandbox uses
// (deploy/checks/remote-template.sh and internal/fleet's tests take 127.0.7.1 and .2).
const consulIP = "127.0.7.3"

// throwawayConsul starts a Consul dev agent on consulIP, every port it binds a free one
// there (DNS and gRPC off), and stops it when the test ends.
func throwawayConsul(t *testing.T, bin string) (*api.Client, string) {
	t.Helper()
	http := freePort(t)
	cmd := exec.Command(bin, "agent", "-dev", "-bind", consulIP, "-client", consulIP, "-node", "baton-compose-test",
		"-http-port", http, "-https-port", "-1", "-dns-port", "-1", "-grpc-port", "-1", "-grpc-tls-port", "-1",
		"-server-port", freePort(t), "-serf-lan-port", freePort(t), "-serf-wan-port", freePort(t), "-log-level", "warn")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	exited, _ := start(t, cmd)
	addr := consulIP + ":" + http
	c, err := api.NewClient(&api.Config{Address: addr})
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if leader, err := c.Status().Leader(); err == nil && leader != "" {
			return c, addr
		}
		select {
		case <-exited:
			t.Fatalf("consul agent -dev exited: %v\n%s", cmd.ProcessState, out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("consul agent -dev has no leader after 30 s\n%s", out.String())
		}
	}
}

// render runs consul-template once in dry mode with conf, its configuration, and env, its
// environment, and returns what it would write to dest.
func render(t *testing.T, bin, consul, conf, dest string, env []string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, "-config", conf, "-consul-addr", consul, "-once", "-dry")
	cmd.Stderr, cmd.Env = &stderr, env
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("consul-template -once -dry: %v\n%s", err, stderr.String())
	}
	head, body, _ := strings.Cut(string(out), "\n")
	if head != "> "+dest {
		t.Fatalf("consul-template -dry printed %q first, want the destination %s", head, dest)
	}
	return body
}

// haproxyCheck runs `haproxy -c` on a rendered configuration.
func haproxyCheck(t *testing.T, cfg string) {
	t.Helper()
	bin, err := exec.LookPath("haproxy")
	if err != nil {
		t.Fatalf("haproxy is not installed (deploy/deps.sh installs it): %v", err)
	}
	path := filepath.Join(t.TempDir(), "haproxy.cfg")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "-c", "-f", path).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Configuration file is valid") {
		t.Fatalf("haproxy -c refuses the rendered configuration: %v\n%s\n--- config:\n%s", err, out, cfg)
	}
}

// servers returns the server lines of each backend: name and address.
func servers(cfg string) map[string][]string {
	out := map[string][]string{}
	backend := ""
	for _, line := range strings.Split(cfg, "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 2 && (f[0] == "backend" || f[0] == "frontend" || f[0] == "listen" || f[0] == "global" || f[0] == "defaults"):
			backend = map[bool]string{true: f[1], false: ""}[f[0] == "backend"]
		case len(f) >= 3 && f[0] == "server" && backend != "":
			out[backend] = append(out[backend], f[1]+" "+f[2])
		}
	}
	return out
}

// hostTemplate is one remote HAProxy host's consul-template as its container runs it: its
// configuration file, the destination it renders, and its environment.
type hostTemplate struct {
	name, conf, dest string
	env              []string
}

// remoteHost sets up consul-template-<name>: the template as its entrypoint assembles it
// (haproxy-global.cfg, then haproxy-remote.cfg.ctmpl), consul-template.hcl with its folder
// moved to a temporary one (the dry run does not run its command), and the service's
// environment, which tells the template which host it is.
func remoteHost(t *testing.T, p *types.Project, name string) hostTemplate {
	t.Helper()
	ct := service(t, p, "consul-template-"+name)
	var cat []string
	if len(ct.Entrypoint) >= 3 {
		cat = regexp.MustCompile(`cat (\S+) (\S+) >`).FindStringSubmatch(ct.Entrypoint[2])
	}
	if cat == nil {
		t.Fatalf("%s entrypoint %v does not assemble its template", ct.Name, ct.Entrypoint)
	}
	dir, tmp := "/var/lib/haproxy", t.TempDir()
	if hcl(read(t, "deploy/docker/consul-template.hcl"))["source"] != dir+"/haproxy.cfg.ctmpl" {
		t.Fatalf("consul-template.hcl does not render %s/haproxy.cfg.ctmpl", dir)
	}
	h := hostTemplate{name: name, conf: filepath.Join(tmp, "consul-template.hcl"), dest: filepath.Join(tmp, "haproxy.cfg")}
	for file, text := range map[string]string{
		h.conf:                                  strings.ReplaceAll(read(t, "deploy/docker/consul-template.hcl"), dir, tmp),
		filepath.Join(tmp, "haproxy.cfg.ctmpl"): read(t, repoFile(ct, cat[1])) + read(t, repoFile(ct, cat[2])),
	} {
		if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "BATON_HAPROXY_") {
			h.env = append(h.env, kv)
		}
	}
	for k, v := range ct.Environment {
		if v != nil {
			h.env = append(h.env, k+"="+*v)
		}
	}
	return h
}

// sections returns each frontend's and backend's lines ("frontend writer_demo": its lines,
// trimmed).
func sections(cfg string) map[string][]string {
	out := map[string][]string{}
	cur := ""
	for _, line := range strings.Split(cfg, "\n") {
		switch {
		case strings.HasPrefix(line, "frontend ") || strings.HasPrefix(line, "backend "):
			cur = line
			out[cur] = []string{}
		case line == "" || line[0] != ' ':
			cur = ""
		case cur != "":
			out[cur] = append(out[cur], strings.TrimSpace(line))
		}
	}
	return out
}

// haproxyRefuses runs `haproxy -c` on a rendered configuration that it must refuse with msg.
func haproxyRefuses(t *testing.T, cfg, msg string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "haproxy.cfg")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "haproxy", "-c", "-f", path).CombinedOutput()
	if err == nil {
		t.Errorf("haproxy -c loads a configuration it must refuse (%s):\n%s", msg, cfg)
	} else if !strings.Contains(string(out), msg) {
		t.Errorf("haproxy -c refuses the configuration, but not with %q:\n%s", msg, out)
	}
}

// port is an address's port, with the colon (":3306").
func port(t *testing.T, addr string) string {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("%q: %v", addr, err)
	}
	return ":" + p
}

// The remote hosts' template, rendered by the real consul-template as each host's
// consul-template service runs it, routes every catalog cluster that names the host, as
// the sandbox's does:
//   - before the bootstrap (an empty catalog) it renders the stats listener alone, which
//     HAProxy accepts;
//   - the demo cluster as `baton cluster add --local` enters it (its section of the compose
//     Baton config, topology seeded) gets writer_demo and reader_demo on both hosts, bound
//     on the ports of its entry's addresses, with the primary and the replicas by IPv4;
//   - a cluster added at run time without a file section (frontends at the next free port
//     pair on every registered HAProxy host, as `baton cluster add` derives them) is routed
//     too; one that names only host b is not routed on host a;
//   - hand-written values never reach the file, which HAProxy still accepts;
//   - an address that is not the host's, a port bound twice, or a host that does not know
//     which it is, make HAProxy refuse the file.
func TestComposeRemoteTemplateRendersEveryCatalogCluster(t *testing.T) {
	bins := tools(t)
	p := load(t, nil)
	cfg := batonConfig(t, p)
	demo, err := cfg.Cluster("demo")
	if err != nil {
		t.Fatal(err)
	}
	hosts := map[string]hostTemplate{}
	for _, h := range demo.HAProxies {
		hosts[h.Name] = remoteHost(t, p, h.Name)
	}
	if len(hosts) != 2 {
		t.Fatalf("cluster demo names the HAProxy hosts %v, want a and b", demo.HAProxies)
	}
	c, addr := throwawayConsul(t, bins["CONSUL_BIN"])
	ctx := context.Background()
	store := topology.New(c, cfg.Consul.KVPrefix)
	if store.CatalogPrefix() != "baton/catalog" {
		t.Fatalf("the compose config's catalog is %s, the template reads baton/catalog", store.CatalogPrefix())
	}
	renderHost := func(h hostTemplate) string {
		t.Helper()
		return render(t, bins["CONSUL_TEMPLATE_BIN"], addr, h.conf, h.dest, h.env)
	}

	// 1. Before the bootstrap: no cluster, the stats listener alone.
	for _, h := range hosts {
		empty := renderHost(h)
		if s := sections(empty); len(s) != 0 {
			t.Errorf("host %s: an empty catalog renders %v", h.name, s)
		}
		if !regexp.MustCompile(`(?m)^listen stats\n(?:\s+.*\n)*?\s+bind :8404\n`).MatchString(empty) {
			t.Errorf("host %s: an empty catalog renders no stats listener:\n%s", h.name, empty)
		}
		haproxyCheck(t, empty)
	}

	// 2. The demo cluster as the bootstrap enters it: the compose nodes, the file's section.
	node := func(name, ipv4, zone string, id uint32) topology.Node {
		return topology.Node{Name: name, FQDN: name + ".demo.baton.test", IPv4: ipv4, Port: 3306, Zone: zone, ServerID: id}
	}
	var nodes []topology.Node
	for i, zone := range []string{"a", "b", "a"} {
		s := service(t, p, fmt.Sprintf("node%d", i+1))
		id, _ := strconv.Atoi(serverID(s))
		n := node(fmt.Sprintf("node%d", i+1), s.Networks["default"].Ipv4Address, zone, uint32(id))
		n.FQDN = s.Hostname
		nodes = append(nodes, n)
	}
	if err := store.Seed(ctx, "demo", nodes[0], nodes[1:]); err != nil {
		t.Fatal(err)
	}
	if err := store.PutCatalogEntry(ctx, "demo", catalog.Entry(demo, "bootstrap", "add", time.Now()), 0); err != nil {
		t.Fatal(err)
	}

	// 3. demo2, added at run time with no file section: its frontends on every HAProxy host
	// registered in Consul (each host's service definition), at the next free port pair.
	for _, h := range demo.HAProxies {
		var def struct{ Service api.AgentServiceRegistration }
		if err := json.Unmarshal([]byte(read(t, "deploy/docker/consul-haproxy-"+h.Name+".json")), &def); err != nil {
			t.Fatal(err)
		}
		def.Service.Checks, def.Service.Check = nil, nil
		if err := c.Agent().ServiceRegister(&def.Service); err != nil {
			t.Fatal(err)
		}
	}
	registered, err := store.HAProxies(ctx)
	if err != nil {
		t.Fatal(err)
	}
	list, err := store.ListCatalog(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	raw := map[string]any{"flavor": "mariadb", "haproxies": config.EncodeSettings(config.ClusterConfig{
		HAProxies: catalog.HAProxies(registered, catalog.FreePort(catalog.UsedPorts(list)))})["haproxies"]}
	demo2, err := config.DecodeSettings("demo2", raw)
	if err != nil {
		t.Fatalf("demo2's settings as `baton cluster add` derives them: %v", err)
	}
	if err := store.PutCatalogEntry(ctx, "demo2", topology.CatalogEntry{Settings: raw, By: "operator", At: time.Now(), Change: "add"}, 0); err != nil {
		t.Fatal(err)
	}
	nodes2 := []topology.Node{node("node4", "10.89.7.14", "a", 104), node("node5", "10.89.7.15", "b", 105)}
	if err := store.Seed(ctx, "demo2", nodes2[0], nodes2[1:]); err != nil {
		t.Fatal(err)
	}
	// demo3 names host b only (and has no topology yet).
	demo3 := config.ClusterConfig{Flavor: config.FlavorMariaDB, HAProxies: []config.HAProxy{{Name: "b", Zone: "b", Writer: "haproxy-b:3326", Reader: "haproxy-b:3327"}}}
	if err := store.PutCatalogEntry(ctx, "demo3", catalog.Entry(demo3, "operator", "add", time.Now()), 0); err != nil {
		t.Fatal(err)
	}

	// 4. Values no Baton would write, by hand: none may reach the file.
	kv := func(key, v string) {
		t.Helper()
		if _, err := c.KV().Put(&api.KVPair{Key: key, Value: []byte(v)}, nil); err != nil {
			t.Fatal(err)
		}
	}
	entry := func(haproxies string) string {
		return `{"settings":{"flavor":"mariadb","haproxies":` + haproxies + `},"by":"test","at":"2026-01-01T00:00:00Z"}`
	}
	kv("baton/catalog/Evil", entry(`[{"name":"a","writer":"haproxy-a:3336","reader":"haproxy-a:3337"}]`))
	kv("baton/catalog/evil1", entry(`[{"name":"a","writer":"haproxy-a:3346\n    server injected 6.6.6.6:1","reader":"haproxy-a:3347"}]`))
	kv("baton/catalog/evil2", "not JSON")
	kv("baton/catalog/evil3", `{"settings":"haproxies"}`)
	kv("baton/catalog/evil4", `{"settings":{"haproxies":["a",{"name":"a"}]}}`)
	kv("baton/clusters/demo/replicas/evil", `{"name":"evil\n    server injected 6.6.6.6:1","ipv4":"10.89.7.66","port":3306,"zone":"a","server_id":166}`)
	kv("baton/clusters/demo/replicas/evil2", `{"name":"evil2","ipv4":"6.6.6.6 backup","port":3306,"zone":"a","server_id":167}`)

	serverLine := func(n topology.Node) string {
		return n.Name + "_" + strings.ReplaceAll(n.IPv4, ".", "_") + "_3306 " + n.IPv4 + ":3306"
	}
	want := map[string][]topology.Node{ // each cluster's writer, then its readers
		"demo":  nodes,
		"demo2": nodes2,
		"demo3": nil,
	}
	clusters := map[string]config.ClusterConfig{"demo": demo, "demo2": demo2, "demo3": demo3}
	for _, h := range hosts {
		rendered := renderHost(h)
		got, srv := sections(rendered), servers(rendered)
		routed := 0
		for name, cc := range clusters {
			i := slices.IndexFunc(cc.HAProxies, func(x config.HAProxy) bool { return x.Name == h.name })
			w, r := "frontend writer_"+name, "frontend reader_"+name
			if i < 0 {
				if _, ok := got[w]; ok {
					t.Errorf("host %s routes %s, which does not name it", h.name, name)
				}
				continue
			}
			routed++
			e := cc.HAProxies[i]
			if !slices.Equal(got[w], []string{"bind " + port(t, e.Writer), "default_backend writer_" + name}) {
				t.Errorf("host %s: %s %v, want bind %s (its writer %s)", h.name, w, got[w], port(t, e.Writer), e.Writer)
			}
			if !slices.Equal(got[r], []string{"bind " + port(t, e.Reader), "default_backend reader_" + name}) {
				t.Errorf("host %s: %s %v, want bind %s (its reader %s)", h.name, r, got[r], port(t, e.Reader), e.Reader)
			}
			if _, ok := got["backend writer_"+name]; !ok || !slices.Contains(got["backend writer_"+name], "retries 0") {
				t.Errorf("host %s: backend writer_%s %v, want one that does not retry", h.name, name, got["backend writer_"+name])
			}
			if _, ok := got["backend reader_"+name]; !ok {
				t.Errorf("host %s: no backend reader_%s", h.name, name)
			}
			var ws, rs []string
			if n := want[name]; len(n) > 0 {
				ws = []string{serverLine(n[0])}
				for _, x := range n[1:] {
					rs = append(rs, serverLine(x))
				}
			}
			if !slices.Equal(srv["writer_"+name], ws) {
				t.Errorf("host %s: backend writer_%s %v, want the primary's IPv4 %v", h.name, name, srv["writer_"+name], ws)
			}
			if !slices.Equal(srv["reader_"+name], rs) {
				t.Errorf("host %s: backend reader_%s %v, want the replicas' IPv4s %v", h.name, name, srv["reader_"+name], rs)
			}
		}
		if len(got) != 4*routed {
			t.Errorf("host %s renders %d sections, want %d (the %d clusters that name it): %v", h.name, len(got), 4*routed, routed, slices.Sorted(maps.Keys(got)))
		}
		for _, bad := range []string{"injected", "6.6.6.6", "10.89.7.66", "evil", "Evil", "3336", "3346", ".demo.baton.test"} {
			if strings.Contains(rendered, bad) {
				t.Errorf("host %s: the rendered configuration holds %q", h.name, bad)
			}
		}
		if !strings.Contains(rendered, "hard-stop-after") {
			t.Errorf("host %s: the rendered configuration lacks the global settings", h.name)
		}
		haproxyCheck(t, rendered)
	}
	// demo's frontends are the ports the compose file publishes for each HAProxy host.
	for _, e := range demo.HAProxies {
		var published []string
		for _, pc := range service(t, p, "haproxy-"+e.Name).Ports {
			published = append(published, ":"+strconv.Itoa(int(pc.Target)))
		}
		for _, a := range []string{e.Writer, e.Reader} {
			if !slices.Contains(published, port(t, a)) {
				t.Errorf("haproxy-%s publishes %v, not demo's frontend %s", e.Name, published, a)
			}
		}
	}
	// demo2 is at the next free port pair: beside demo's, not on it.
	for _, e := range demo2.HAProxies {
		if e.Writer != "haproxy-"+e.Name+":3316" || e.Reader != "haproxy-"+e.Name+":3317" {
			t.Errorf("demo2 frontends on host %s: %s %s, want haproxy-%s:3316 and :3317", e.Name, e.Writer, e.Reader, e.Name)
		}
	}

	// 5. Conflicts on host a: the file is refused, never loaded with a port shared by two
	// frontends or bound for clients that connect elsewhere.
	for _, tc := range []struct{ writer, reader, msg string }{
		{"haproxy-b:3356", "haproxy-a:3357", "writer_demo4: haproxy-b:3356 is not this host's address (haproxy-a:port); file refused"},
		{"10.89.7.21:3356", "haproxy-a:3357", "writer_demo4: 10.89.7.21:3356 is not this host's address (haproxy-a:port); file refused"},
		{"haproxy-a:3356", "0.0.0.0:3357", "reader_demo4: 0.0.0.0:3357 is not this host's address (haproxy-a:port); file refused"},
		{"haproxy-a:3306", "haproxy-a:3357", "writer_demo4: port :3306 is bound by writer_demo already; file refused"},
		{"haproxy-a:3356", "haproxy-a:8404", "reader_demo4: port :8404 is bound by the stats listener already; file refused"},
		{"haproxy-a:3356", "haproxy-a:3356", "reader_demo4: port :3356 is bound by writer_demo4 already; file refused"},
	} {
		kv("baton/catalog/demo4", entry(`[{"name":"a","zone":"a","writer":"`+tc.writer+`","reader":"`+tc.reader+`"}]`))
		haproxyRefuses(t, renderHost(hosts["a"]), tc.msg)
	}
	if _, err := c.KV().Delete("baton/catalog/demo4", nil); err != nil {
		t.Fatal(err)
	}

	// 6. A consul-template that is not told which host it is renders a file HAProxy refuses.
	lost := hosts["a"]
	lost.env = slices.DeleteFunc(slices.Clone(lost.env), func(kv string) bool { return strings.HasPrefix(kv, "BATON_HAPROXY_HOST=") })
	haproxyRefuses(t, renderHost(lost), "consul-template runs without BATON_HAPROXY_NAME and BATON_HAPROXY_HOST")
}

// Each HAProxy host's service definition is one its Consul agent loads (`consul validate`,
// with the agent's script checks enabled as its command line does).
func TestComposeConsulServicesValidate(t *testing.T) {
	bin := tools(t)["CONSUL_BIN"]
	for _, h := range []string{"a", "b"} {
		dir := t.TempDir()
		file := "deploy/docker/consul-haproxy-" + h + ".json"
		for name, text := range map[string]string{
			"haproxy.json": read(t, file),
			"agent.json":   `{"data_dir": "` + filepath.Join(dir, "data") + `", "enable_local_script_checks": true}`,
		} {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		out, err := exec.CommandContext(ctx, bin, "validate", dir).CombinedOutput()
		cancel()
		if err != nil {
			t.Errorf("consul validate %s: %v\n%s", file, err, out)
		}
	}
}

// The Consul check that consul-template is alive, run as the host's agent runs it: passing
// while the real consul-template runs (its pid file has no trailing newline), critical
// (exit 2) once it has stopped.
func TestComposeConsulTemplateCheckFollowsTheProcess(t *testing.T) {
	bins := tools(t)
	_, addr := throwawayConsul(t, bins["CONSUL_BIN"])
	pidFile := hcl(read(t, "deploy/docker/consul-template.hcl"))["pid_file"]
	var def struct {
		Service struct {
			Checks []struct {
				Name string
				Args []string
			}
		}
	}
	if err := json.Unmarshal([]byte(read(t, "deploy/docker/consul-haproxy-a.json")), &def); err != nil {
		t.Fatal(err)
	}
	var args []string
	for _, c := range def.Service.Checks {
		if c.Name == "consul-template" {
			args = c.Args
		}
	}
	if len(args) != 3 || args[0] != "sh" || !strings.Contains(args[2], pidFile) {
		t.Fatalf("consul-template check %v: want sh -c reading %s", args, pidFile)
	}
	dir := t.TempDir()
	local := filepath.Join(dir, "consul-template.pid")
	script := strings.ReplaceAll(args[2], pidFile, local)
	check := func() int {
		err := exec.Command("sh", "-c", script).Run()
		if e, ok := err.(*exec.ExitError); ok {
			return e.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0
	}

	tmpl := filepath.Join(dir, "t.ctmpl")
	if err := os.WriteFile(tmpl, []byte("x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ct := exec.Command(bins["CONSUL_TEMPLATE_BIN"], "-consul-addr", addr, "-pid-file", local, "-template", tmpl+":"+filepath.Join(dir, "out"))
	_, stop := start(t, ct)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if b, _ := os.ReadFile(local); len(b) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("consul-template wrote no pid file")
		}
	}
	if rc := check(); rc != 0 {
		t.Errorf("the check exits %d while consul-template runs, want 0 (passing)", rc)
	}
	stop()
	// A stale pid file, as a crash leaves it.
	if err := os.WriteFile(local, []byte(strconv.Itoa(ct.Process.Pid)), 0o600); err != nil {
		t.Fatal(err)
	}
	if rc := check(); rc != 2 {
		t.Errorf("the check exits %d once consul-template has stopped, want 2 (critical)", rc)
	}
}
