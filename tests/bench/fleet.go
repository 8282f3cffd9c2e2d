package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/consul/api"
	"go.opentelemetry.io/otel/metric/noop"

	"github.com/baton-db/baton/internal/app"
	"github.com/baton-db/baton/internal/config"
	"github.com/baton-db/baton/internal/detect"
	"github.com/baton-db/baton/internal/flavor"
	"github.com/baton-db/baton/internal/fleet"
	"github.com/baton-db/baton/internal/mysqladmin"
	"github.com/baton-db/baton/internal/telemetry"
	"github.com/baton-db/baton/internal/tlsconf"
	"github.com/baton-db/baton/internal/tlsconf/testcerts"
	"github.com/baton-db/baton/internal/topology"
)

// The detector fleet as production runs it: TLS with verify_identity and a client
// certificate to every primary, a persistent connection each, the clusters shared through
// Consul locks by several detector processes. Every detector and every group of fake
// primaries is its own process, so each one's CPU and memory are its own.

const benchFleetPrefix = "baton-bench/detectors"

// fleetChildEnv passes a child detector what it needs.
type fleetChildEnv struct {
	Clusters int           `json:"clusters"`
	Interval time.Duration `json:"interval"`
	TLSDir   string        `json:"tls_dir"`
	Consul   string        `json:"consul"`
	Token    string        `json:"token"`
	Profile  string        `json:"profile,omitempty"` // -cpuprofile: the detector profiles 5 s to 20 s after it starts
}

// runFleetDetector is one detector process of the bench: a fleet member watching its
// share of the simulated clusters; it prints how many it watches and its warnings.
func runFleetDetector(id string) {
	var e fleetChildEnv
	if err := json.Unmarshal([]byte(os.Getenv("BATON_BENCH_FLEET")), &e); err != nil {
		fatal("fleet child: %v", err)
	}
	client := func() *api.Client { // as app.Topology: bounded, and one for the fleet alone
		cc := api.DefaultConfig()
		cc.Address, cc.Token = e.Consul, e.Token
		cc.Transport.MaxConnsPerHost = app.ConsulConns
		c, err := api.NewClient(cc)
		if err != nil {
			fatal("%v", err)
		}
		return c
	}
	c := client()
	tlsc, err := tlsconf.MySQL("verify_identity", tlsconf.Files{CAFile: filepath.Join(e.TLSDir, "ca.pem"),
		CertFile: filepath.Join(e.TLSDir, "client.pem"), KeyFile: filepath.Join(e.TLSDir, "client-key.pem")})
	if err != nil {
		fatal("%v", err)
	}
	store := topology.New(c, benchPrefix)
	ctx := context.Background()
	topos := topology.New(client(), benchPrefix).Watch(ctx) // on its own client, as the detector's
	m, _ := telemetry.NewMetrics(noop.NewMeterProvider())
	dc := config.Detector{ProbeInterval: e.Interval, ProbeTimeout: 400 * time.Millisecond, FailureThreshold: 3, ConfirmWindow: time.Second, ConcurrentHandshakes: 32}
	gate := detect.NewGate(dc.ConcurrentHandshakes)
	names := make([]string, e.Clusters)
	for i := range names {
		names[i] = fmt.Sprintf("c%05d", i)
	}
	var watching atomic.Int64
	watch := func(ctx context.Context, name string) {
		watching.Add(1)
		defer watching.Add(-1)
		detect.New(detect.Options{Cluster: name, ClusterConfig: config.ClusterConfig{AntiFlap: time.Hour}, Detector: dc,
			Flavor: flavor.MariaDB{}, Consul: store, Topologies: topos, Metrics: m, Log: benchLog, Handshakes: gate,
			MySQL: mysqladmin.Options{User: "bench", Password: "bench", ConnectTimeout: dc.ProbeTimeout, ReadTimeout: dc.ProbeTimeout, TLS: tlsc}}).Run(ctx)
	}
	if e.Profile != "" {
		cpuProfile = e.Profile
		go func() {
			time.Sleep(5 * time.Second)
			stop := startProfile(e.Clusters, id)
			time.Sleep(15 * time.Second)
			stop()
		}()
	}
	go func() {
		for range time.Tick(500 * time.Millisecond) {
			fmt.Printf("%d %d\n", watching.Load(), troubles.Load())
		}
	}()
	f := &fleet.Fleet{Consul: client(), Prefix: benchFleetPrefix, ID: id, Clusters: names, Watch: watch,
		Log: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: fleetLogLevel()}))}
	_ = f.Run(ctx)
}

type detectorProc struct {
	id       string
	cmd      *exec.Cmd
	watching atomic.Int64
	warnings atomic.Int64
}

func benchFleet(spec string) {
	fmt.Printf("## Detector fleet with TLS\n\nDetector processes sharing N simulated primaries through Consul locks (internal/fleet), each probe over TLS with `verify_identity` and a client certificate, with the persistent connection per cluster (probe interval per row; the default is %s). The fake primaries are go-mysql servers in three child processes; every detector is its own process, so CPU (from /proc over 20 s after the share settled) and RSS are per detector. Takeover: one detector killed with SIGKILL, until the others hold all its clusters and have started their watchers; in brackets, when Consul released its session and when the fake primaries had accepted as many new connections (TLS and authentication done) as it had clusters.\n\n", scaleInterval)
	fmt.Printf("| clusters | detectors | probe interval | CPU per detector (cores) | clusters per detector core | RSS per detector | memory per cluster | Consul CPU (cores) | watcher warnings | settle | takeover (one killed) |\n|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, f := range strings.Split(spec, ",") {
		f, iv, hasIV := strings.Cut(strings.TrimSpace(f), "@")
		interval := scaleInterval
		if hasIV {
			var err error
			if interval, err = time.ParseDuration(iv); err != nil || interval <= 0 {
				fatal("-fleet: %q is not a probe interval", iv)
			}
		}
		n, d, ok := strings.Cut(f, "x")
		clusters, err1 := strconv.Atoi(n)
		detectors, err2 := strconv.Atoi(d)
		if !ok || err1 != nil || err2 != nil || clusters < 1 || detectors < 1 {
			fatal("-fleet: %q is not CLUSTERSxDETECTORS[@INTERVAL]", f)
		}
		fleetOnce(clusters, detectors, interval)
	}
	fmt.Println()
}

func fleetOnce(n, detectors int, interval time.Duration) {
	dir, _ := os.MkdirTemp("", "baton-fleet")
	defer os.RemoveAll(dir)
	if _, err := testcerts.Write(dir); err != nil {
		fatal("%v", err)
	}
	// Fake primaries in three processes: each connection costs a descriptor on both sides.
	var addrs []string
	var fakes []*fakeConns
	for g := 0; g < 3; g++ {
		a, stop, conns := startFakes(n/3+1, dir)
		defer stop()
		addrs = append(addrs, a...)
		fakes = append(fakes, conns)
	}
	made := func() (m int64) {
		for _, f := range fakes {
			m += f.made.Load()
		}
		return m
	}
	consul, cleanup := benchConsul(addrs, n)
	defer cleanup()
	mgmt := consul.Client()
	defer func() { _, _ = mgmt.KV().DeleteTree(benchFleetPrefix+"/", nil) }()
	tok, _ := os.ReadFile(filepath.Join(root, "deploy/local/state/consul-management.token"))
	envJSON, _ := json.Marshal(fleetChildEnv{Clusters: n, Interval: interval, TLSDir: dir, Consul: env["CONSUL_HTTP_ADDR"], Token: strings.TrimSpace(string(tok)), Profile: cpuProfile})
	procs := make([]*detectorProc, detectors)
	start := time.Now()
	for i := range procs {
		p := &detectorProc{id: fmt.Sprintf("bench-%d", i+1)}
		p.cmd = exec.Command(os.Args[0], "-fleet-detector", p.id)
		p.cmd.Env = append(os.Environ(), "BATON_BENCH_FLEET="+string(envJSON))
		p.cmd.Stderr = os.Stderr
		out, _ := p.cmd.StdoutPipe()
		if err := p.cmd.Start(); err != nil {
			fatal("%v", err)
		}
		go func() {
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				f := strings.Fields(sc.Text())
				if len(f) == 2 {
					w, _ := strconv.ParseInt(f[0], 10, 64)
					x, _ := strconv.ParseInt(f[1], 10, 64)
					p.watching.Store(w)
					p.warnings.Store(x)
				}
			}
		}()
		procs[i] = p
		defer func() { _ = p.cmd.Process.Kill(); _ = p.cmd.Wait() }()
	}
	total := func(ps []*detectorProc) int {
		s := 0
		for _, p := range ps {
			s += int(p.watching.Load())
		}
		return s
	}
	waitUntil := func(limit time.Duration, ok func() bool) bool {
		for end := time.Now().Add(limit); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
			if ok() {
				return true
			}
		}
		return false
	}
	if !waitUntil(3*time.Minute, func() bool { return total(procs) == n }) {
		fatal("fleet of %d did not settle on %d clusters (watching %d)", detectors, n, total(procs))
	}
	settle := time.Since(start)
	// Steady state: the watchers' start-up (thousands of first connections) is over when
	// no warning came for 3 s; the window then measures probing alone.
	warned := func() (n int64) {
		for _, p := range procs {
			n += p.warnings.Load()
		}
		return n
	}
	last, quiet := warned(), time.Now()
	for end := time.Now().Add(time.Minute); time.Since(quiet) < 3*time.Second && time.Now().Before(end); time.Sleep(250 * time.Millisecond) {
		if n := warned(); n != last {
			last, quiet = n, time.Now()
		}
	}
	time.Sleep(2 * time.Second)
	w0 := map[string]int64{}
	for _, p := range procs {
		w0[p.id] = p.warnings.Load()
	}
	cpid := consulPID()
	c0, k0, t0 := map[string]time.Duration{}, procCPU(cpid), time.Now()
	for _, p := range procs {
		c0[p.id] = procCPU(p.cmd.Process.Pid)
	}
	time.Sleep(20 * time.Second)
	el := time.Since(t0)
	var cores, rss float64
	var warnings int64
	for _, p := range procs {
		cores += float64(procCPU(p.cmd.Process.Pid)-c0[p.id]) / float64(el)
		rss += float64(procRSSKB(p.cmd.Process.Pid))
		warnings += p.warnings.Load() - w0[p.id]
	}
	consulCores := float64(procCPU(cpid)-k0) / float64(el)
	takeover := "—"
	var released atomic.Value // string
	released.Store("—")
	if detectors > 1 {
		victim := procs[0]
		orphans, made0 := victim.watching.Load(), made()
		fakeCPU := func() (d time.Duration) {
			for _, f := range fakes {
				d += procCPU(f.pid)
			}
			return d
		}
		fcpu0 := fakeCPU()
		_ = victim.cmd.Process.Signal(syscall.SIGKILL)
		killed := time.Now()
		rest := procs[1:]
		go func() { // when Consul released the dead detector's session (its membership key)
			for time.Since(killed) < time.Minute {
				if p, _, err := mgmt.KV().Get(benchFleetPrefix+"/members/"+victim.id, nil); err == nil && (p == nil || p.Session == "") {
					released.Store(time.Since(killed).Round(time.Millisecond).String())
					return
				}
				time.Sleep(20 * time.Millisecond)
			}
		}()
		if waitUntil(time.Minute, func() bool { return total(rest) == n }) {
			takeover = time.Since(killed).Round(time.Millisecond).String()
		} else {
			takeover = fmt.Sprintf("not within 1 min (%d of %d watched)", total(rest), n)
		}
		// Connected: as many new connections made to the fake primaries as the dead
		// detector watched (the others' connections stay up: they make none in steady state).
		connected := "not within 1 min"
		if waitUntil(time.Minute, func() bool { return made()-made0 >= orphans }) {
			el := time.Since(killed)
			connected = fmt.Sprintf("%s, the fake primaries using %.2f cores meanwhile", el.Round(time.Millisecond), float64(fakeCPU()-fcpu0)/float64(el))
		}
		takeover += " (session released after " + released.Load().(string) + ", all connected after " + connected + ")"
	}
	perDetector := cores / float64(detectors)
	fmt.Printf("| %d | %d | %s | %.3f | %.0f | %.1f MiB | %.1f KiB | %.3f | %d | %s | %s |\n", n, detectors, interval, perDetector,
		float64(n)/cores, rss/1024/float64(detectors), rss/float64(n), consulCores, warnings, settle.Round(100*time.Millisecond), takeover)
	fmt.Fprintf(os.Stderr, "fleet %d x %d: %.3f cores in all, takeover %s\n", n, detectors, cores, takeover)
}

func procRSSKB(pid int) int64 {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			v, _ := strconv.ParseInt(strings.Fields(line)[1], 10, 64)
			return v
		}
	}
	return 0
}

// fleetLogLevel is Warn, or Info with BATON_BENCH_LOG set (the fleet's shares, with times).
func fleetLogLevel() slog.Level {
	if os.Getenv("BATON_BENCH_LOG") != "" {
		return slog.LevelInfo
	}
	return slog.LevelWarn
}
