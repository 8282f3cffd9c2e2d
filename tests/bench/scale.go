package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/server"
	"go.opentelemetry.io/otel/metric/noop"

	"github.com/baton-db/baton/internal/config"
	"github.com/baton-db/baton/internal/detect"
	"github.com/baton-db/baton/internal/flavor"
	"github.com/baton-db/baton/internal/mysqladmin"
	"github.com/baton-db/baton/internal/telemetry"
	"github.com/baton-db/baton/internal/topology"
)

// fakePrimary answers the detector's probes: SELECT 1 at once, DO SLEEP(n) by holding.
type fakePrimary struct{ server.EmptyHandler }

func (fakePrimary) HandleQuery(q string) (*gomysql.Result, error) {
	if strings.HasPrefix(q, "DO SLEEP") {
		time.Sleep(30 * time.Second)
		return &gomysql.Result{}, nil
	}
	rs, err := gomysql.BuildSimpleTextResultset([]string{"1"}, [][]any{{1}})
	if err != nil {
		return nil, err
	}
	return &gomysql.Result{Resultset: rs}, nil
}

// serveFakes runs in a child process, so that its CPU is not counted as the detector's.
func serveFakes(n int) {
	srv := server.NewServer("10.11.0-fake", gomysql.DEFAULT_COLLATION_ID, gomysql.AUTH_NATIVE_PASSWORD, nil, nil)
	var addrs []string
	for i := 0; i < 8; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			fatal("%v", err)
		}
		addrs = append(addrs, ln.Addr().String())
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go func() {
					conn, err := srv.NewConn(c, "bench", "bench", fakePrimary{})
					if err != nil {
						return
					}
					for conn.HandleCommand() == nil {
					}
				}()
			}
		}()
	}
	b, _ := json.Marshal(addrs)
	fmt.Println(string(b))
	_, _ = io.Copy(io.Discard, os.Stdin) // until the parent closes stdin
}

type fakeConsul map[string]topology.Topology

func (f fakeConsul) Read(_ context.Context, c string) (topology.Topology, error) { return f[c], nil }
func (f fakeConsul) Reaches(context.Context, string) (map[string]topology.Reach, error) {
	return nil, nil
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func rssKB() int64 {
	b, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			v, _ := strconv.ParseInt(strings.Fields(line)[1], 10, 64)
			return v
		}
	}
	return 0
}

// scaleInterval is the probe interval the scale target is stated at (the default), whatever
// the sandbox's own detector uses.
const scaleInterval = 500 * time.Millisecond

var cpuProfile string

// startProfile profiles the measurement window when -cpuprofile is set (one file per N).
func startProfile(n int) (stop func()) {
	if cpuProfile == "" {
		return func() {}
	}
	f, err := os.Create(fmt.Sprintf("%s.%d", cpuProfile, n))
	if err != nil {
		fatal("-cpuprofile: %v", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		fatal("-cpuprofile: %v", err)
	}
	return func() { pprof.StopCPUProfile(); f.Close() }
}

func benchScale(list string) {
	fmt.Printf("## Detector scale\n\nOne detector process watching N simulated primaries (go-mysql server, in a child process) at a %s probe interval, each with its persistent connection; CPU measured with getrusage over 20 s after 5 s of warm-up.\n\n", scaleInterval)
	fmt.Printf("| clusters | CPU (cores) | CPU per cluster | RSS | memory per cluster | clusters per core |\n|---|---|---|---|---|---|\n")
	for _, f := range strings.Split(list, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			fatal("-scale: %q is not a number", f)
		}
		scaleOnce(n)
	}
	fmt.Println()
}

func scaleOnce(n int) {
	child := exec.Command(os.Args[0], "-serve-fake-primaries", strconv.Itoa(n))
	stdin, _ := child.StdinPipe()
	stdout, _ := child.StdoutPipe()
	if err := child.Start(); err != nil {
		fatal("%v", err)
	}
	defer func() { stdin.Close(); _ = child.Wait() }()
	line, _ := bufio.NewReader(stdout).ReadString('\n')
	var addrs []string
	if err := json.Unmarshal([]byte(line), &addrs); err != nil {
		fatal("fake primaries: %v (%q)", err, line)
	}
	runtime.GC()
	rss0 := rssKB()
	consul := fakeConsul{}
	m, _ := telemetry.NewMetrics(noop.NewMeterProvider())
	ctx, cancel := context.WithCancel(context.Background())
	dc := cfg.Detector
	dc.ProbeInterval = scaleInterval
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("c%05d", i)
		host, port, _ := net.SplitHostPort(addrs[i%len(addrs)])
		p, _ := strconv.Atoi(port)
		consul[name] = topology.Topology{Cluster: name, Primary: topology.Node{Name: "p", IPv4: host, Port: p}}
		w := detect.New(detect.Options{Cluster: name, ClusterConfig: config.ClusterConfig{AntiFlap: time.Hour}, Detector: dc,
			Flavor: flavor.MariaDB{}, Consul: consul, TaskQueue: "none", Metrics: m,
			Log:   slog.New(slog.NewTextHandler(io.Discard, nil)),
			MySQL: mysqladmin.Options{User: "bench", Password: "bench", ConnectTimeout: dc.ProbeTimeout, ReadTimeout: dc.ProbeTimeout}})
		go w.Run(ctx)
	}
	time.Sleep(5 * time.Second)
	stopProfile := startProfile(n)
	c0, t0 := cpuTime(), time.Now()
	time.Sleep(20 * time.Second)
	stopProfile()
	cores := float64(cpuTime()-c0) / float64(time.Since(t0))
	rss := rssKB() - rss0
	cancel()
	time.Sleep(500 * time.Millisecond)
	perCluster := time.Duration(float64(time.Second) * cores / float64(n))
	fmt.Printf("| %d | %.3f | %s CPU/s | %.1f MiB | %.1f KiB | %.0f |\n", n, cores, perCluster.Round(time.Microsecond),
		float64(rss)/1024, float64(rss)/float64(n), float64(n)/cores)
	fmt.Fprintf(os.Stderr, "scale %d: %.3f cores, %d KiB RSS\n", n, cores, rss)
}
