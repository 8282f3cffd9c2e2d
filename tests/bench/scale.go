package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/server"
	"github.com/hashicorp/consul/api"
	"go.opentelemetry.io/otel/metric/noop"

	"github.com/baton-db/baton/internal/config"
	"github.com/baton-db/baton/internal/detect"
	"github.com/baton-db/baton/internal/flavor"
	"github.com/baton-db/baton/internal/mysqladmin"
	"github.com/baton-db/baton/internal/telemetry"
	"github.com/baton-db/baton/internal/topology"
)

// fakePrimary answers the detector's probes: SELECT 1 at once, DO SLEEP(n) after n seconds.
type fakePrimary struct{ server.EmptyHandler }

func (fakePrimary) HandleQuery(q string) (*gomysql.Result, error) {
	if s, ok := strings.CutPrefix(q, "DO SLEEP("); ok {
		secs, err := strconv.ParseFloat(strings.TrimSuffix(s, ")"), 64)
		if err != nil {
			return nil, err
		}
		time.Sleep(time.Duration(secs * float64(time.Second)))
		return &gomysql.Result{}, nil
	}
	rs, err := gomysql.BuildSimpleTextResultset([]string{"1"}, [][]any{{1}})
	if err != nil {
		return nil, err
	}
	return &gomysql.Result{Resultset: rs}, nil
}

// serveFakes runs in a child process, so that its CPU is not counted as the detector's.
// With tlsDir set it requires TLS with a client certificate (the sandbox's REQUIRE X509).
func serveFakes(n int, tlsDir string) {
	var tc *tls.Config
	if tlsDir != "" {
		cert, err := tls.LoadX509KeyPair(filepath.Join(tlsDir, "server.pem"), filepath.Join(tlsDir, "server-key.pem"))
		if err != nil {
			fatal("%v", err)
		}
		ca, _ := os.ReadFile(filepath.Join(tlsDir, "ca.pem"))
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(ca)
		tc = &tls.Config{Certificates: []tls.Certificate{cert}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert}
	}
	srv := server.NewServer("10.11.0-fake", gomysql.DEFAULT_COLLATION_ID, gomysql.AUTH_NATIVE_PASSWORD, nil, tc)
	// The user's stored hash must be native too: the default (caching_sha2) makes the server
	// ask for full authentication, which the driver refuses without TLS, and every probe fails.
	auth := server.NewInMemoryAuthenticationHandler(gomysql.AUTH_NATIVE_PASSWORD)
	if err := auth.AddUser("bench", "bench"); err != nil {
		fatal("%v", err)
	}
	var addrs []string
	var live, total atomic.Int64 // connections past their handshake: open, and in all
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
					conn, err := srv.NewCustomizedConn(c, auth, fakePrimary{})
					if err != nil {
						return
					}
					live.Add(1)
					total.Add(1)
					defer live.Add(-1)
					for conn.HandleCommand() == nil {
					}
				}()
			}
		}()
	}
	b, _ := json.Marshal(addrs)
	fmt.Println(string(b))
	go func() { // then, every 50 ms, the connections open and made in all
		for range time.Tick(50 * time.Millisecond) {
			fmt.Println(live.Load(), total.Load())
		}
	}()
	_, _ = io.Copy(io.Discard, os.Stdin) // until the parent closes stdin
}

// startFakes runs n fake primaries in a child process (with TLS when tlsDir is set) and
// returns their addresses, how to stop them, and their connections (open, and made in all).
func startFakes(n int, tlsDir string) ([]string, func(), *fakeConns) {
	args := []string{"-serve-fake-primaries", strconv.Itoa(n)}
	if tlsDir != "" {
		args = append(args, "-fake-tls", tlsDir)
	}
	child := exec.Command(os.Args[0], args...)
	stdin, _ := child.StdinPipe()
	stdout, _ := child.StdoutPipe()
	if err := child.Start(); err != nil {
		fatal("%v", err)
	}
	stop := func() { stdin.Close(); _ = child.Wait() }
	r := bufio.NewReader(stdout)
	line, _ := r.ReadString('\n')
	var addrs []string
	if err := json.Unmarshal([]byte(line), &addrs); err != nil {
		stop()
		fatal("fake primaries: %v (%q)", err, line)
	}
	conns := &fakeConns{pid: child.Process.Pid}
	go func() {
		for sc := bufio.NewScanner(r); sc.Scan(); {
			var l, t int64
			if _, err := fmt.Sscan(sc.Text(), &l, &t); err == nil {
				conns.open.Store(l)
				conns.made.Store(t)
			}
		}
	}()
	return addrs, stop, conns
}

type fakeConns struct {
	open, made atomic.Int64
	pid        int
}

// benchPrefix holds the simulated clusters in the sandbox's Consul, apart from Baton's own.
const benchPrefix = "baton-bench/clusters"

// benchConsul writes n simulated clusters to Consul (with the management token: Baton's
// own token may only write baton/clusters/) and returns a store on them and a cleanup.
func benchConsul(addrs []string, n int) (*topology.Store, func()) {
	tok, err := os.ReadFile(filepath.Join(root, "deploy/local/state/consul-management.token"))
	if err != nil {
		fatal("management token: %v", err)
	}
	cc := api.DefaultConfig()
	cc.Address, cc.Token = env["CONSUL_HTTP_ADDR"], strings.TrimSpace(string(tok))
	c, err := api.NewClient(cc)
	if err != nil {
		fatal("%v", err)
	}
	var ops api.KVTxnOps
	flush := func() {
		if ok, resp, _, err := c.KV().Txn(ops, nil); err != nil || !ok {
			fatal("write simulated clusters: %v %v", err, resp)
		}
		ops = ops[:0]
	}
	for i := 0; i < n; i++ {
		host, port, _ := net.SplitHostPort(addrs[i%len(addrs)])
		p, _ := strconv.Atoi(port)
		v, _ := json.Marshal(topology.Node{Name: "p", IPv4: host, Port: p, ServerID: 1})
		k := fmt.Sprintf("%s/c%05d/", benchPrefix, i)
		ops = append(ops, &api.KVTxnOp{Verb: api.KVSet, Key: k + "primary", Value: v},
			&api.KVTxnOp{Verb: api.KVSet, Key: k + "epoch", Value: []byte("1")})
		if len(ops) >= 64 { // Consul's limit per transaction
			flush()
		}
	}
	if len(ops) > 0 {
		flush()
	}
	return topology.New(c, benchPrefix), func() { _, _ = c.KV().DeleteTree(benchPrefix+"/", nil) }
}

// procCPU is a process's CPU time from /proc (clock ticks at 100 Hz).
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

func consulPID() int {
	b, _ := os.ReadFile(filepath.Join(root, "deploy/local/state/pids/consul.pid"))
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
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

// troubles counts the watchers' log records other than "watching primary": a healthy
// simulated fleet logs none, so a count above zero means the figures are not of healthy probes.
var troubles atomic.Int64

type countingHandler struct{ slog.Handler }

func (h countingHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Message != "watching primary" {
		troubles.Add(1)
	}
	return h.Handler.Handle(ctx, r)
}

// benchLog discards the watchers' logs unless BATON_BENCH_LOG is set, and counts them.
var benchLog = func() *slog.Logger {
	var w io.Writer = io.Discard
	if os.Getenv("BATON_BENCH_LOG") != "" {
		w = os.Stderr
	}
	return slog.New(countingHandler{slog.NewTextHandler(w, nil)})
}()

// startProfile profiles the measurement window when -cpuprofile is set (one file per N).
func startProfile(n int, mode string) (stop func()) {
	if cpuProfile == "" {
		return func() {}
	}
	f, err := os.Create(fmt.Sprintf("%s.%d.%s", cpuProfile, n, mode))
	if err != nil {
		fatal("-cpuprofile: %v", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		fatal("-cpuprofile: %v", err)
	}
	return func() { pprof.StopCPUProfile(); f.Close() }
}

func benchScale(list, reads string) {
	fmt.Printf("## Detector scale\n\nOne detector process watching N simulated primaries (go-mysql server, in a child process) at a %s probe interval, each with its persistent connection, their topologies in the sandbox's Consul. Topology reads: `cache` is the detector's (one blocking query on every cluster's keys), `direct` is one Consul read per cluster per second (the detector before the cache). CPU measured with getrusage over 20 s after 5 s of warm-up; Consul's CPU from /proc.\n\n", scaleInterval)
	fmt.Printf("| clusters | topology reads | CPU (cores) | CPU per cluster | RSS | memory per cluster | clusters per core | Consul CPU (cores) | watcher warnings |\n|---|---|---|---|---|---|---|---|---|\n")
	for _, f := range strings.Split(list, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			fatal("-scale: %q is not a number", f)
		}
		for _, mode := range strings.Split(reads, ",") {
			if mode != "cache" && mode != "direct" {
				fatal("-scale-reads: %q is neither cache nor direct", mode)
			}
			scaleOnce(n, mode)
		}
	}
	fmt.Println()
}

func scaleOnce(n int, mode string) {
	addrs, stop, _ := startFakes(n, "")
	defer stop()
	consul, cleanup := benchConsul(addrs, n)
	defer cleanup()
	runtime.GC()
	rss0 := rssKB()
	m, _ := telemetry.NewMetrics(noop.NewMeterProvider())
	ctx, cancel := context.WithCancel(context.Background())
	var topos detect.Topologies
	if mode == "cache" {
		topos = consul.Watch(ctx)
	}
	dc := cfg.Detector
	dc.ProbeInterval = scaleInterval
	gate := detect.NewGate(dc.ConcurrentHandshakes)
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("c%05d", i)
		w := detect.New(detect.Options{Cluster: name, ClusterConfig: config.ClusterConfig{AntiFlap: time.Hour}, Detector: dc,
			Flavor: flavor.MariaDB{}, Consul: consul, Topologies: topos, Metrics: m,
			Log: benchLog, Handshakes: gate,
			MySQL: mysqladmin.Options{User: "bench", Password: "bench", ConnectTimeout: dc.ProbeTimeout, ReadTimeout: dc.ProbeTimeout}})
		go w.Run(ctx)
	}
	time.Sleep(5 * time.Second)
	troubles.Store(0)
	stopProfile := startProfile(n, mode)
	cpid := consulPID()
	c0, k0, t0 := cpuTime(), procCPU(cpid), time.Now()
	time.Sleep(20 * time.Second)
	stopProfile()
	cores := float64(cpuTime()-c0) / float64(time.Since(t0))
	consulCores := float64(procCPU(cpid)-k0) / float64(time.Since(t0))
	bad := troubles.Load()
	rss := rssKB() - rss0
	cancel()
	time.Sleep(500 * time.Millisecond)
	perCluster := time.Duration(float64(time.Second) * cores / float64(n))
	fmt.Printf("| %d | %s | %.3f | %s CPU/s | %.1f MiB | %.1f KiB | %.0f | %.3f | %d |\n", n, mode, cores, perCluster.Round(time.Microsecond),
		float64(rss)/1024, float64(rss)/float64(n), float64(n)/cores, consulCores, bad)
	fmt.Fprintf(os.Stderr, "scale %d %s: %.3f cores, %d KiB RSS, Consul %.3f cores\n", n, mode, cores, rss, consulCores)
}
