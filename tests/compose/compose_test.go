// Package compose checks docker-compose.yml, which cannot run on a machine without a
// Docker engine, by loading it with compose-go and asserting the topology.
package compose

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
)

func load(t *testing.T, profiles ...string) *types.Project {
	t.Helper()
	root, _ := filepath.Abs("../..")
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
		cli.WithWorkingDirectory(root), cli.WithProfiles(profiles), cli.WithName("baton"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("docker-compose.yml does not load: %v", err)
	}
	return p
}

func TestComposeDefaultIsMySQL84WithTheWholeTopology(t *testing.T) {
	p := load(t)
	want := []string{"mysql1", "mysql2", "mysql3", "consul", "temporal", "haproxy-a", "consul-template-a",
		"haproxy-b", "consul-template-b", "haproxy-local", "baton-worker", "baton-detector"}
	for _, name := range want {
		if _, err := p.GetService(name); err != nil {
			t.Errorf("service %s missing: %v", name, err)
		}
	}
	for _, name := range []string{"mariadb1", "mariadb2", "mariadb3"} {
		if _, err := p.GetService(name); err == nil {
			t.Errorf("%s runs without the mariadb profile", name)
		}
	}
	for _, name := range []string{"mysql1", "mysql2", "mysql3"} {
		s, _ := p.GetService(name)
		if s.Image != "mysql:8.4" {
			t.Errorf("%s image %s, want mysql:8.4", name, s.Image)
		}
		if s.HealthCheck == nil || len(s.HealthCheck.Test) == 0 {
			t.Errorf("%s has no health check", name)
		}
	}
}

func TestComposeMariaDBProfile(t *testing.T) {
	p := load(t, "mariadb")
	for _, name := range []string{"mariadb1", "mariadb2", "mariadb3"} {
		s, err := p.GetService(name)
		if err != nil {
			t.Fatalf("%s missing with the mariadb profile: %v", name, err)
		}
		if s.Image != "mariadb:10.11" {
			t.Errorf("%s image %s", name, s.Image)
		}
	}
}

func TestComposePortsAreLoopbackOnly(t *testing.T) {
	p := load(t)
	wantPorts := map[string][]string{
		"consul":        {"8500"},
		"temporal":      {"7233", "8233"},
		"haproxy-a":     {"3306", "3307"},
		"haproxy-b":     {"3306", "3307"},
		"haproxy-local": {"3306", "3307"},
	}
	for name, ports := range wantPorts {
		s, _ := p.GetService(name)
		var got []string
		for _, pc := range s.Ports {
			if pc.HostIP == "" || pc.HostIP[:4] != "127." {
				t.Errorf("%s publishes %s on %q: only loopback is allowed", name, pc.Published, pc.HostIP)
			}
			got = append(got, pc.Published)
		}
		for _, port := range ports {
			if !slices.Contains(got, port) {
				t.Errorf("%s publishes %v, want %s", name, got, port)
			}
		}
	}
}

func TestComposeHealthChecksAndDependencies(t *testing.T) {
	p := load(t)
	for _, name := range []string{"consul", "temporal", "haproxy-a", "haproxy-b"} {
		s, _ := p.GetService(name)
		if s.HealthCheck == nil || len(s.HealthCheck.Test) == 0 {
			t.Errorf("%s has no health check", name)
		}
	}
	deps := map[string]map[string]string{
		"baton-worker":      {"temporal": "service_healthy", "consul": "service_healthy", "mysql1": "service_healthy"},
		"baton-detector":    {"temporal": "service_healthy", "consul": "service_healthy"},
		"haproxy-local":     {"haproxy-a": "service_healthy", "haproxy-b": "service_healthy"},
		"consul-template-a": {"consul": "service_healthy"},
		"consul-template-b": {"consul": "service_healthy"},
	}
	for name, want := range deps {
		s, _ := p.GetService(name)
		for dep, cond := range want {
			d, ok := s.DependsOn[dep]
			if !ok || d.Condition != cond {
				t.Errorf("%s depends on %s with %q, want %q", name, dep, d.Condition, cond)
			}
		}
	}
	for _, ct := range []string{"consul-template-a", "consul-template-b"} {
		s, _ := p.GetService(ct)
		if s.Pid == "" {
			t.Errorf("%s must share its HAProxy's PID namespace to reload it", ct)
		}
	}
}

// Each database node has its heartbeat agent, which gets the agent's secrets and config,
// never Baton's (least privilege).
func TestComposeHeartbeatAgentsHoldOnlyTheirOwnSecrets(t *testing.T) {
	p := load(t)
	for i, node := range []string{"node1", "node2", "node3"} {
		s, err := p.GetService("heartbeat-" + string(rune('1'+i)))
		if err != nil {
			t.Fatal(err)
		}
		if len(s.Secrets) != 1 || s.Secrets[0].Source != "agent" {
			t.Errorf("%s gets secrets %+v, want only agent", s.Name, s.Secrets)
		}
		if !slices.Contains(s.Command, "/etc/baton/agent.yaml") || !slices.Contains(s.Command, node) {
			t.Errorf("%s command %v", s.Name, s.Command)
		}
	}
}
