package compose

import (
	"encoding/json"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"
)

// upstream lists, for each upstream image the stack uses, the executables this test relies
// on it to have, and what its entrypoint runs for a service's command.
var upstream = map[string]struct {
	has []string
	run func(command []string) []string
}{
	"mariadb:10.11":             {[]string{"mariadbd", "mariadb", "mariadb-admin", "healthcheck.sh", "sh", "bash"}, optionsFor("mariadbd")},
	"mysql:8.4":                 {[]string{"mysqld", "mysql", "mysqladmin", "sh", "bash"}, optionsFor("mysqld")},
	"haproxy:2.6":               {[]string{"haproxy", "sh", "bash", "cat", "sleep", "touch"}, optionsFor("haproxy")},
	"hashicorp/consul:1.22.7":   {[]string{"consul", "sh"}, consulEntrypoint},
	"temporalio/temporal:1.5.1": {[]string{"/temporal"}, func(c []string) []string { return append([]string{"/temporal"}, c...) }},
	"debian:bookworm-slim":      {[]string{"sh", "bash", "grep"}, nil},
	"golang:1.26-bookworm":      {[]string{"go", "sh"}, nil},
}

// optionsFor is the entrypoint of images that run bin when the command starts with an option.
func optionsFor(bin string) func([]string) []string {
	return func(c []string) []string {
		if len(c) > 0 && strings.HasPrefix(c[0], "-") {
			return append([]string{bin}, c...)
		}
		return c
	}
}

// consulEntrypoint: Consul's image runs `consul` for its subcommands.
func consulEntrypoint(c []string) []string {
	if len(c) > 0 && (c[0] == "agent" || c[0] == "version") {
		return append([]string{"consul"}, c...)
	}
	return c
}

// stage is one build stage of deploy/docker/Dockerfile.
type stage struct {
	base       string
	files      []string // what it built or copied, by absolute path
	entrypoint []string
}

// dockerfile reads deploy/docker/Dockerfile's stages: each `go build -o` output (whose
// package must exist), each COPY --from (of a stage's output, or of a pinned image), and
// the ENTRYPOINT.
func dockerfile(t *testing.T) map[string]*stage {
	t.Helper()
	stages := map[string]*stage{}
	var cur *stage
	build := regexp.MustCompile(`go build -o (\S+) (\./\S+)`)
	for _, line := range logicalLines(read(t, "deploy/docker/Dockerfile")) {
		f := strings.Fields(line)
		switch strings.ToUpper(f[0]) {
		case "FROM":
			cur = &stage{base: f[1]}
			if len(f) == 4 && strings.EqualFold(f[2], "AS") {
				stages[f[3]] = cur
			}
		case "RUN":
			for _, m := range build.FindAllStringSubmatch(line, -1) {
				if matches, _ := filepath.Glob(filepath.Join(root, m[2], "*.go")); len(matches) == 0 {
					t.Errorf("Dockerfile builds %s, which has no Go files", m[2])
				}
				cur.files = append(cur.files, m[1])
			}
		case "COPY":
			from := ""
			for _, a := range f[1:] {
				from = strings.TrimPrefix(a, "--from=")
				if from != a {
					break
				}
				from = ""
			}
			if from == "" {
				continue
			}
			src, dst := f[len(f)-2], f[len(f)-1]
			if s, ok := stages[from]; ok {
				for _, file := range s.files {
					switch {
					case strings.HasSuffix(src, "/") && strings.HasPrefix(file, src):
						cur.files = append(cur.files, path.Join(dst, strings.TrimPrefix(file, src)))
					case file == src && strings.HasSuffix(dst, "/"):
						cur.files = append(cur.files, path.Join(dst, path.Base(src)))
					case file == src:
						cur.files = append(cur.files, dst)
					}
				}
				continue
			}
			if _, ok := upstream[from]; !ok && !regexp.MustCompile(`:[0-9][0-9.]*$`).MatchString(from) {
				t.Errorf("Dockerfile copies from %s, neither a stage nor a pinned image", from)
			}
			if strings.HasSuffix(dst, "/") {
				dst = path.Join(dst, path.Base(src))
			}
			cur.files = append(cur.files, dst)
		case "ENTRYPOINT":
			if err := json.Unmarshal([]byte(strings.TrimSpace(line[len(f[0]):])), &cur.entrypoint); err != nil {
				t.Errorf("Dockerfile: %q: %v", line, err)
			}
		}
	}
	return stages
}

// container is what one service's container can run.
type container struct {
	name  string
	files []string // absolute paths
	names []string // found on PATH
}

var pathDirs = []string{"/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"}

func (c container) has(exe string) bool {
	if strings.HasPrefix(exe, "/") {
		return slices.Contains(c.files, exe) || slices.Contains(c.names, exe)
	}
	return slices.Contains(c.names, exe)
}

// shellCommands returns the commands a short `sh -c` script runs (builtins left out).
func shellCommands(script string) []string {
	keywords := []string{"if", "then", "else", "elif", "while", "until", "do", "done", "fi", "exec", "!", "{", "}"}
	builtins := []string{"[", "test", "read", "exit", "echo", "printf", "true", "false", ":", "cd", "set", "export", "kill", "command"}
	var out []string
	for _, seg := range regexp.MustCompile(`&&|\|\||[;|\n]`).Split(script, -1) {
		f := strings.Fields(seg)
		for len(f) > 0 && slices.Contains(keywords, f[0]) {
			f = f[1:]
		}
		if len(f) == 0 || slices.Contains(builtins, f[0]) || regexp.MustCompile(`^\d*[<>]`).MatchString(f[0]) {
			continue
		}
		out = append(out, f[0])
	}
	return out
}

// runs returns every executable an argv starts, the commands of `sh -c` scripts included.
func runs(argv []string) []string {
	if len(argv) == 0 {
		return nil
	}
	out := []string{argv[0]}
	if (argv[0] == "sh" || argv[0] == "bash") && len(argv) >= 3 && argv[1] == "-c" {
		out = append(out, shellCommands(argv[2])...)
	}
	return out
}

// Every command a service runs exists in its container: for Baton's images, a binary the
// Dockerfile stage built or copied (or its base image has); for upstream images, one of the
// table above; for scripts mounted from the repository, an executable file. That covers
// entrypoints and commands, health checks, the Consul checks the agents run, and
// consul-template's command.
func TestComposeEveryCommandExists(t *testing.T) {
	stages := dockerfile(t)
	for _, f := range flavours {
		p := load(t, f.env, f.profiles...)
		for _, s := range p.Services {
			c := container{name: s.Name}
			var argv []string
			if s.Build != nil {
				st, ok := stages[s.Build.Target]
				if !ok {
					t.Errorf("%s builds the stage %q, which deploy/docker/Dockerfile lacks", s.Name, s.Build.Target)
					continue
				}
				base, ok := upstream[st.base]
				if !ok {
					t.Errorf("stage %s is based on %s, which the table lacks", s.Build.Target, st.base)
				}
				c.names = append(c.names, base.has...)
				for _, file := range st.files {
					c.files = append(c.files, file)
					if slices.Contains(pathDirs, path.Dir(file)) {
						c.names = append(c.names, path.Base(file))
					}
				}
				argv = append(slices.Clone(st.entrypoint), s.Command...)
				if len(s.Entrypoint) > 0 {
					argv = append(slices.Clone(s.Entrypoint), s.Command...)
				}
			} else {
				img, ok := upstream[s.Image]
				if !ok {
					t.Errorf("%s uses %s, which the table of upstream images lacks", s.Name, s.Image)
					continue
				}
				c.names = append(c.names, img.has...)
				argv = s.Command
				if img.run != nil {
					argv = img.run(s.Command)
				}
				if len(s.Entrypoint) > 0 {
					argv = append(slices.Clone(s.Entrypoint), s.Command...)
				}
			}
			// Files mounted from the repository: they must exist; scripts must be executable.
			for _, v := range s.Volumes {
				if v.Type != types.VolumeTypeBind {
					continue
				}
				info, err := os.Stat(v.Source)
				if err != nil {
					t.Errorf("%s mounts %s: %v", s.Name, v.Source, err)
					continue
				}
				if strings.HasSuffix(v.Source, ".sh") && info.Mode()&0o111 == 0 {
					t.Errorf("%s mounts %s, which is not executable", s.Name, v.Source)
				}
				if info.Mode()&0o111 != 0 {
					c.files = append(c.files, v.Target)
				}
			}
			check := func(what string, argv []string) {
				if len(argv) == 0 {
					t.Errorf("%s: %s runs nothing", s.Name, what)
				}
				for _, exe := range runs(argv) {
					if !c.has(exe) {
						t.Errorf("%s: %s runs %q, which its container does not have (%v)", s.Name, what, exe, argv)
					}
				}
			}
			check("the container", argv)
			if hc := s.HealthCheck; hc != nil && len(hc.Test) > 0 {
				switch hc.Test[0] {
				case "CMD":
					check("the health check", hc.Test[1:])
				case "CMD-SHELL":
					check("the health check", []string{"sh", "-c", hc.Test[1]})
				default:
					t.Errorf("%s: health check %v", s.Name, hc.Test)
				}
			}
			if src := repoFile(s, "/consul/config/haproxy.json"); src != "" {
				var def struct {
					Service struct{ Checks []struct{ Args []string } }
				}
				if err := json.Unmarshal([]byte(read(t, src)), &def); err != nil {
					t.Fatal(err)
				}
				for _, ch := range def.Service.Checks {
					if ch.Args != nil {
						check("a Consul check of "+src, ch.Args)
					}
				}
			}
			if src := repoFile(s, "/etc/baton/consul-template.hcl"); src != "" {
				check("consul-template's command", strings.Fields(hcl(read(t, src))["command"]))
			}
		}
	}
}

// The build context is the repository: the sandbox's state (hundreds of MB of data) and the
// secrets stay out of it.
func TestComposeBuildContextLeavesStateOut(t *testing.T) {
	ignore := read(t, "deploy/docker/Dockerfile.dockerignore")
	for _, want := range []string{"deploy/local/state", "deploy/docker/secrets.env", "deploy/docker/agent.env"} {
		if !regexp.MustCompile(`(?m)^/?` + regexp.QuoteMeta(want) + `/?$`).MatchString(ignore) {
			t.Errorf("deploy/docker/Dockerfile.dockerignore does not leave out %s", want)
		}
	}
}
