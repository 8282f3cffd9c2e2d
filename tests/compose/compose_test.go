// Package compose checks docker-compose.yml, which cannot run on a machine without a
// Docker engine: it loads it with compose-go as `docker compose` does and asserts the
// topology, the bootstrap, the files it mounts, the commands it runs, and renders the remote
// HAProxy template with the real consul-template and haproxy.
package compose

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
)

var root, _ = filepath.Abs("../..")

// load reads docker-compose.yml as `docker compose [--profile P] up` would: no profile
// means Compose's default (the empty profile). env holds variables such as BATON_FLAVOR.
func load(t *testing.T, env []string, profiles ...string) *types.Project {
	t.Helper()
	for _, f := range []string{"secrets.env", "agent.env"} {
		secrets := filepath.Join(root, "deploy/docker", f)
		if _, err := os.Stat(secrets); os.IsNotExist(err) {
			// The secrets files are git-ignored; compose-go only checks that they are named.
			if err := os.WriteFile(secrets, []byte("# test placeholder\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.Remove(secrets) })
		}
	}
	opts, err := cli.NewProjectOptions([]string{filepath.Join(root, "docker-compose.yml")},
		cli.WithWorkingDirectory(root), cli.WithEnv(env), cli.WithDefaultProfiles(profiles...), cli.WithName("baton"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("docker-compose.yml does not load: %v", err)
	}
	return p
}

// flavours are the two ways to run the stack: the default and the mysql profile.
var flavours = []struct {
	name     string
	env      []string
	profiles []string
	nodes    []string // the database services that run
	off      []string // the other flavour's, which must not
	image    string
}{
	{"mariadb", nil, nil, []string{"node1", "node2", "node3"}, []string{"mysql1", "mysql2", "mysql3"}, "mariadb:10.11"},
	{"mysql", []string{"BATON_FLAVOR=mysql"}, []string{"mysql"}, []string{"mysql1", "mysql2", "mysql3"}, []string{"node1", "node2", "node3"}, "mysql:8.4"},
}

// common runs whatever the database flavour.
var common = []string{"consul", "temporal", "haproxy-a", "consul-agent-a", "consul-template-a",
	"haproxy-b", "consul-agent-b", "consul-template-b", "haproxy-local", "bootstrap",
	"baton-worker", "baton-detector", "heartbeat-1", "heartbeat-2", "heartbeat-3"}

func service(t *testing.T, p *types.Project, name string) types.ServiceConfig {
	t.Helper()
	s, err := p.GetService(name)
	if err != nil {
		t.Fatalf("service %s missing: %v", name, err)
	}
	return s
}

func TestComposeServicesOfEachProfile(t *testing.T) {
	for _, f := range flavours {
		t.Run(f.name, func(t *testing.T) {
			p := load(t, f.env, f.profiles...)
			for _, name := range append(slices.Clone(common), f.nodes...) {
				if _, err := p.GetService(name); err != nil {
					t.Errorf("service %s missing: %v", name, err)
				}
			}
			for _, name := range f.off {
				if _, err := p.GetService(name); err == nil {
					t.Errorf("%s runs in the %s stack", name, f.name)
				}
			}
			for _, name := range f.nodes {
				if s := service(t, p, name); s.Image != f.image {
					t.Errorf("%s image %s, want %s", name, s.Image, f.image)
				}
			}
		})
	}
}

// Both flavours' nodes are the same hosts to the rest of the stack: hostname, alias, fixed
// address (Consul and HAProxy use the IPv4), server_id, report_host and published port; and
// no two nodes share a server_id or an address.
func TestComposeNodesHaveTheSameIdentityInBothFlavours(t *testing.T) {
	maria, mysql := load(t, nil), load(t, []string{"BATON_FLAVOR=mysql"}, "mysql")
	seen := map[string]string{}
	for i := 1; i <= 3; i++ {
		a, b := service(t, maria, fmt.Sprintf("node%d", i)), service(t, mysql, fmt.Sprintf("mysql%d", i))
		host := fmt.Sprintf("node%d.demo.baton.test", i)
		for _, s := range []types.ServiceConfig{a, b} {
			n := s.Networks["default"]
			if s.Hostname != host || n == nil || !slices.Contains(n.Aliases, host) || n.Ipv4Address == "" {
				t.Fatalf("%s: hostname %q, network %+v; want %s as hostname and alias, with a fixed address", s.Name, s.Hostname, n, host)
			}
			if !slices.Contains(s.Command, "--report-host="+host) || serverID(s) == "" {
				t.Errorf("%s command %v: want --server-id and --report-host=%s (Baton discovers replicas by report_host)", s.Name, s.Command, host)
			}
		}
		for _, id := range []string{"server_id " + serverID(a), "address " + a.Networks["default"].Ipv4Address} {
			if other, dup := seen[id]; dup {
				t.Errorf("%s and %s share the %s: every node needs its own", other, a.Name, id)
			}
			seen[id] = a.Name
		}
		if a.Networks["default"].Ipv4Address != b.Networks["default"].Ipv4Address || !slices.Equal(a.Command, b.Command) ||
			len(a.Ports) != 1 || len(b.Ports) != 1 || a.Ports[0].HostIP != b.Ports[0].HostIP || a.Ports[0].Published != b.Ports[0].Published {
			t.Errorf("%s and %s differ: %v %v %v / %v %v %v", a.Name, b.Name, a.Networks["default"], a.Command, a.Ports,
				b.Networks["default"], b.Command, b.Ports)
		}
	}
}

// serverID is a node's --server-id ("" if its command sets none).
func serverID(s types.ServiceConfig) string {
	for _, c := range s.Command {
		if id, ok := strings.CutPrefix(c, "--server-id="); ok {
			return id
		}
	}
	return ""
}

// Every image is pinned to a version; Baton's own are built from deploy/docker/Dockerfile's
// stages and tagged.
func TestComposeImagesArePinned(t *testing.T) {
	version := regexp.MustCompile(`^[a-z0-9./-]+:[0-9]+(\.[0-9]+)*(-[a-z0-9.]+)?$`)
	for _, f := range flavours {
		p := load(t, f.env, f.profiles...)
		for _, s := range p.Services {
			switch {
			case s.Build != nil:
				if s.Build.Dockerfile != "deploy/docker/Dockerfile" || s.Build.Target == "" {
					t.Errorf("%s builds %+v: want a stage of deploy/docker/Dockerfile", s.Name, s.Build)
				}
				if tag := s.Image[strings.LastIndex(s.Image, ":")+1:]; !strings.Contains(s.Image, ":") || tag == "latest" {
					t.Errorf("%s image %q: want an explicit tag", s.Name, s.Image)
				}
			case !version.MatchString(s.Image):
				t.Errorf("%s image %q is not pinned to a version", s.Name, s.Image)
			}
		}
	}
}

func TestComposePortsAreLoopbackOnly(t *testing.T) {
	p := load(t, nil)
	wantPorts := map[string][]string{
		"consul":        {"8500"},
		"temporal":      {"7233", "8233"},
		"haproxy-a":     {"3306", "3307"},
		"haproxy-b":     {"3306", "3307"},
		"haproxy-local": {"3306", "3307"},
		"node1":         {"3306"},
	}
	for _, s := range p.Services {
		var got []string
		for _, pc := range s.Ports {
			if !strings.HasPrefix(pc.HostIP, "127.") {
				t.Errorf("%s publishes %s on %q: only loopback is allowed", s.Name, pc.Published, pc.HostIP)
			}
			got = append(got, pc.Published)
		}
		for _, port := range wantPorts[s.Name] {
			if !slices.Contains(got, port) {
				t.Errorf("%s publishes %v, want %s", s.Name, got, port)
			}
		}
	}
}

func dependsOn(t *testing.T, s types.ServiceConfig, dep, cond string) {
	t.Helper()
	d, ok := s.DependsOn[dep]
	if !ok || d.Condition != cond {
		t.Errorf("%s depends on %s with %q, want %q", s.Name, dep, d.Condition, cond)
	}
}

func TestComposeStartOrder(t *testing.T) {
	for _, f := range flavours {
		t.Run(f.name, func(t *testing.T) {
			p := load(t, f.env, f.profiles...)
			// The bootstrap runs once the servers it talks to are healthy, and once HAProxy runs,
			// so that the seeded topology reaches it as a reload.
			b := service(t, p, "bootstrap")
			for _, dep := range append([]string{"consul", "temporal", "haproxy-a", "haproxy-b"}, f.nodes...) {
				dependsOn(t, b, dep, types.ServiceConditionHealthy)
			}
			for _, dep := range f.off { // the other flavour's nodes are optional, not waited for
				if d, ok := b.DependsOn[dep]; ok && d.Required {
					t.Errorf("bootstrap requires %s, which the %s stack does not run", dep, f.name)
				}
			}
			if b.Restart != "" && b.Restart != "no" {
				t.Errorf("bootstrap restart %q: it runs once", b.Restart)
			}
			for _, name := range []string{"baton-worker", "baton-detector", "heartbeat-1", "heartbeat-2", "heartbeat-3"} {
				dependsOn(t, service(t, p, name), "bootstrap", types.ServiceConditionCompletedSuccessfully)
			}
			dependsOn(t, service(t, p, "haproxy-local"), "haproxy-a", types.ServiceConditionHealthy)
			dependsOn(t, service(t, p, "haproxy-local"), "haproxy-b", types.ServiceConditionHealthy)
			for _, h := range []string{"a", "b"} {
				agent, ct := service(t, p, "consul-agent-"+h), service(t, p, "consul-template-"+h)
				dependsOn(t, agent, "consul", types.ServiceConditionHealthy)
				// consul-template reads through its own host's agent, once that agent has joined.
				dependsOn(t, ct, "consul-agent-"+h, types.ServiceConditionHealthy)
				if !containsPair(ct.Command, "-consul-addr", "consul-agent-"+h+":8500") {
					t.Errorf("%s command %v: want -consul-addr consul-agent-%s:8500", ct.Name, ct.Command, h)
				}
				// One host: the agent's process check and the reload helper see the same
				// processes and the same folder as HAProxy.
				for _, s := range []types.ServiceConfig{agent, ct} {
					if s.Pid != "service:haproxy-"+h {
						t.Errorf("%s pid %q, want service:haproxy-%s", s.Name, s.Pid, h)
					}
					if mountOf(s, "/var/lib/haproxy") != "haproxy-"+h {
						t.Errorf("%s does not mount the volume haproxy-%s at /var/lib/haproxy", s.Name, h)
					}
				}
				if mountOf(service(t, p, "haproxy-"+h), "/var/lib/haproxy") != "haproxy-"+h {
					t.Errorf("haproxy-%s does not mount the volume haproxy-%s at /var/lib/haproxy", h, h)
				}
			}
		})
	}
}

// Every long-running server has a health check: the nodes, Consul and its agents, Temporal
// and the HAProxies.
func TestComposeHealthChecks(t *testing.T) {
	for _, f := range flavours {
		p := load(t, f.env, f.profiles...)
		for _, name := range append([]string{"consul", "consul-agent-a", "consul-agent-b", "temporal",
			"haproxy-a", "haproxy-b", "haproxy-local"}, f.nodes...) {
			s := service(t, p, name)
			if s.HealthCheck == nil || s.HealthCheck.Disable || len(s.HealthCheck.Test) < 2 {
				t.Errorf("%s has no health check", name)
			}
		}
	}
}

// Each database node has its heartbeat agent, which gets the agent's secrets and config,
// never Baton's (least privilege).
func TestComposeHeartbeatAgentsHoldOnlyTheirOwnSecrets(t *testing.T) {
	p := load(t, nil)
	for i, node := range []string{"node1", "node2", "node3"} {
		s := service(t, p, fmt.Sprintf("heartbeat-%d", i+1))
		if len(s.Secrets) != 1 || s.Secrets[0].Source != "agent" || len(s.Configs) != 0 {
			t.Errorf("%s gets secrets %+v and configs %+v, want only the agent secret", s.Name, s.Secrets, s.Configs)
		}
		if !containsPair(s.Command, "--config", "/etc/baton/agent.yaml") || !containsPair(s.Command, "--node", node) ||
			!containsPair(s.Command, "--cluster", "demo") {
			t.Errorf("%s command %v", s.Name, s.Command)
		}
	}
}

// containsPair reports whether args holds flag followed by value.
func containsPair(args []string, flag, value string) bool {
	for i := 0; i+1 < len(args); i++ {
		if args[i] == flag && args[i+1] == value {
			return true
		}
	}
	return false
}

// mountOf returns the source of the volume or bind mount at target ("" if none).
func mountOf(s types.ServiceConfig, target string) string {
	for _, v := range s.Volumes {
		if v.Target == target {
			return v.Source
		}
	}
	return ""
}
