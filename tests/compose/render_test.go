package compose

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

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

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
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

// throwawayConsul starts a Consul dev agent on 127.0.0.1 with every port it binds moved off
// the sandbox's (HTTP 8500, server 8300, serf 8301/8302; DNS and gRPC off), and stops it
// when the test ends.
func throwawayConsul(t *testing.T, bin string) (*api.Client, string) {
	t.Helper()
	http := freePort(t)
	cmd := exec.Command(bin, "agent", "-dev", "-bind", "127.0.0.1", "-client", "127.0.0.1", "-node", "baton-compose-test",
		"-http-port", http, "-https-port", "-1", "-dns-port", "-1", "-grpc-port", "-1", "-grpc-tls-port", "-1",
		"-server-port", freePort(t), "-serf-lan-port", freePort(t), "-serf-wan-port", freePort(t), "-log-level", "warn")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	exited, _ := start(t, cmd)
	addr := "127.0.0.1:" + http
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

// render runs consul-template once in dry mode with conf, its configuration, and returns
// what it would write to dest.
func render(t *testing.T, bin, consul, conf, dest string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, "-config", conf, "-consul-addr", consul, "-once", "-dry")
	cmd.Stderr = &stderr
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

// The remote hosts' template, as consul-template-a assembles it (haproxy-global.cfg, then
// haproxy-remote.cfg.ctmpl), rendered by the real consul-template with consul-template.hcl
// (the dry run does not run its command) from a topology seeded
// the way `baton cluster add` seeds it, routes the writer to the primary's IPv4 and the
// reader to the replicas', drops a node it cannot print safely, and passes `haproxy -c`;
// so does the render before the bootstrap, when Consul has no cluster yet.
func TestComposeRemoteTemplateRendersWithConsulTemplate(t *testing.T) {
	bins := tools(t)
	p := load(t, nil)
	ct := service(t, p, "consul-template-a")
	var cat []string
	if len(ct.Entrypoint) >= 3 {
		cat = regexp.MustCompile(`cat (\S+) (\S+) >`).FindStringSubmatch(ct.Entrypoint[2])
	}
	if cat == nil {
		t.Fatalf("consul-template-a entrypoint %v does not assemble its template", ct.Entrypoint)
	}
	// consul-template.hcl as the container reads it, its folder moved to a temporary one.
	dir, tmp := "/var/lib/haproxy", t.TempDir()
	conf := filepath.Join(tmp, "consul-template.hcl")
	if hcl(read(t, "deploy/docker/consul-template.hcl"))["source"] != dir+"/haproxy.cfg.ctmpl" {
		t.Fatalf("consul-template.hcl does not render %s/haproxy.cfg.ctmpl", dir)
	}
	for file, text := range map[string]string{
		conf:                                    strings.ReplaceAll(read(t, "deploy/docker/consul-template.hcl"), dir, tmp),
		filepath.Join(tmp, "haproxy.cfg.ctmpl"): read(t, repoFile(ct, cat[1])) + read(t, repoFile(ct, cat[2])),
	} {
		if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	dest := filepath.Join(tmp, "haproxy.cfg")
	c, addr := throwawayConsul(t, bins["CONSUL_BIN"])

	empty := render(t, bins["CONSUL_TEMPLATE_BIN"], addr, conf, dest)
	if s := servers(empty); len(s) != 0 {
		t.Errorf("before the bootstrap the template renders servers %v", s)
	}
	haproxyCheck(t, empty)

	// The demo cluster as the bootstrap seeds it: the compose nodes' names, addresses and ids.
	var nodes []topology.Node
	for i, zone := range []string{"a", "b", "a"} {
		s := service(t, p, fmt.Sprintf("node%d", i+1))
		id, _ := strconv.Atoi(serverID(s))
		nodes = append(nodes, topology.Node{Name: fmt.Sprintf("node%d", i+1), FQDN: s.Hostname,
			IPv4: s.Networks["default"].Ipv4Address, Port: 3306, Zone: zone, ServerID: uint32(id)})
	}
	if err := topology.New(c, "baton/clusters").Seed(context.Background(), "demo", nodes[0], nodes[1:]); err != nil {
		t.Fatal(err)
	}
	// Values no Baton would publish, written by hand: they must not reach the file.
	for key, v := range map[string]string{
		"evil":  `{"name":"evil\n    server injected 6.6.6.6:1","ipv4":"10.89.7.66","port":3306,"zone":"a","server_id":166}`,
		"evil2": `{"name":"evil2","ipv4":"6.6.6.6 backup","port":3306,"zone":"a","server_id":167}`,
	} {
		if _, err := c.KV().Put(&api.KVPair{Key: "baton/clusters/demo/replicas/" + key, Value: []byte(v)}, nil); err != nil {
			t.Fatal(err)
		}
	}

	cfg := render(t, bins["CONSUL_TEMPLATE_BIN"], addr, conf, dest)
	got := servers(cfg)
	serverLine := func(n topology.Node) string {
		return n.Name + "_" + strings.ReplaceAll(n.IPv4, ".", "_") + "_3306 " + n.IPv4 + ":3306"
	}
	if w := got["writer"]; len(w) != 1 || w[0] != serverLine(nodes[0]) {
		t.Errorf("writer backend %v, want the primary's IPv4: %s", w, serverLine(nodes[0]))
	}
	if r := got["reader"]; len(r) != 2 || r[0] != serverLine(nodes[1]) || r[1] != serverLine(nodes[2]) {
		t.Errorf("reader backend %v, want the replicas' IPv4s", r)
	}
	for _, bad := range []string{"injected", "6.6.6.6", "10.89.7.66", "evil", ".demo.baton.test"} {
		if strings.Contains(cfg, bad) {
			t.Errorf("the rendered configuration holds %q", bad)
		}
	}
	if !strings.Contains(cfg, "hard-stop-after") {
		t.Errorf("the rendered configuration lacks the global settings")
	}
	haproxyCheck(t, cfg)
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
