// Command bench measures Baton on the running sandbox and prints Markdown tables:
// unplanned failovers (kill -9 and a silent host), planned switchovers, the Temporal
// overhead of a switchover, and how many clusters one detector watches per core.
//
//	deploy/local/sandbox.sh up && go run ./tests/bench -trials 10
package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/hashicorp/consul/api"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/baton-db/baton/internal/config"
	"github.com/baton-db/baton/internal/envfile"
	"github.com/baton-db/baton/internal/loadgen"
	"github.com/baton-db/baton/internal/start"
	"github.com/baton-db/baton/internal/topology"
	"github.com/baton-db/baton/tests/sandboxkit"
	"github.com/baton-db/baton/workflows"
)

var (
	root  string
	env   map[string]string
	cfg   *config.Config
	store *topology.Store
	tc    client.Client
)

func main() {
	trials := flag.Int("trials", 10, "unplanned (kill -9) trials")
	silent := flag.Int("silent", 1, "silent-host (iptables DROP) trials")
	planned := flag.Int("planned", 10, "planned switchover trials")
	overhead := flag.Int("overhead", 4, "pairs of direct vs workflow switchovers")
	scale := flag.String("scale", "250,500,1000", "detector scale: numbers of simulated clusters")
	scaleReads := flag.String("scale-reads", "cache,direct", "detector scale: how watchers read topologies (cache, direct)")
	serve := flag.Int("serve-fake-primaries", 0, "internal: serve N fake primaries (child process)")
	fakeTLS := flag.String("fake-tls", "", "internal: the fake primaries' TLS files")
	fleetSpec := flag.String("fleet", "200x1,500x1,3000x3@5s", "detector fleet with TLS: CLUSTERSxDETECTORS[@PROBE_INTERVAL],...; with several detectors one is killed")
	fleetChild := flag.String("fleet-detector", "", "internal: run one fleet detector with this ID (child process)")
	flag.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of the detector-scale measurement (and of each fleet detector) to files named after this one")
	flag.Parse()
	if *serve > 0 {
		serveFakes(*serve, *fakeTLS)
		return
	}
	if *fleetChild != "" {
		runFleetDetector(*fleetChild)
		return
	}
	_ = mysql.SetLogger(log.New(io.Discard, "", 0))
	var err error
	root, _ = filepath.Abs(".")
	if env, err = envfile.Read(filepath.Join(root, "deploy/local/state/env")); err != nil {
		fatal("the sandbox is not up (run deploy/local/sandbox.sh up): %v", err)
	}
	if cfg, err = config.Load(env["BATON_CONFIG"], nil); err != nil {
		fatal("%v", err)
	}
	cc := api.DefaultConfig()
	cc.Address, cc.Token = env["CONSUL_HTTP_ADDR"], cfg.Secrets.ConsulToken
	c, _ := api.NewClient(cc)
	store = topology.New(c, "baton/clusters")
	if tc, err = client.Dial(client.Options{HostPort: env["TEMPORAL_ADDRESS"], Namespace: env["TEMPORAL_NAMESPACE"], Logger: quiet{}}); err != nil {
		fatal("%v", err)
	}
	s := secrets()
	admin := openDB(env["LOCAL_WRITER_ADDR"], s["MYSQL_APP_USER"], s["MYSQL_APP_PASSWORD"])
	if _, err := admin.Exec(loadgen.Schema); err != nil {
		fatal("create %s: %v", loadgen.Table, err)
	}
	admin.Close()
	fmt.Printf("# Baton benchmarks, %s\n\nSandbox: MariaDB 10.11 x3, two remote HAProxy + consul-template, local HAProxy, Consul (three servers and a client agent per host), Temporal dev server, all on one 2-core machine. Load: two clients side by side, each 200 inserts/s through the local writer port: the loadgen of Baton's tests, and an application-like `database/sql` pool (4 connections kept open, 0.5 s dial timeout, 2 s read and write timeouts). Stage times come from the workflow's history, each remote HAProxy's runtime API (polled every 10 ms) and a fresh connection through the local writer every 20 ms.\n\n", time.Now().UTC().Format("2006-01-02 15:04 MST"))
	if *trials > 0 || *silent > 0 {
		benchUnplanned(*trials, *silent)
	}
	if *planned > 0 {
		benchPlanned(*planned)
	}
	if *overhead > 0 {
		benchOverhead(*overhead)
	}
	if *scale != "" {
		benchScale(*scale, *scaleReads)
	}
	if *fleetSpec != "" {
		benchFleet(*fleetSpec)
	}
}

func fatal(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", a...)
	os.Exit(1)
}

type quiet struct{}

func (quiet) Debug(string, ...any) {}
func (quiet) Info(string, ...any)  {}
func (quiet) Warn(string, ...any)  {}
func (quiet) Error(string, ...any) {}

func openDB(addr, user, pass string) *sql.DB {
	c := mysql.NewConfig()
	c.User, c.Passwd, c.Net, c.Addr = user, pass, "tcp", addr
	c.Timeout, c.ReadTimeout, c.WriteTimeout = time.Second, 2*time.Second, 2*time.Second
	conn, _ := mysql.NewConnector(c)
	return sql.OpenDB(conn)
}

func secrets() map[string]string {
	s, err := envfile.Read(env["SECRETS_FILE"])
	if err != nil {
		fatal("%v", err)
	}
	return s
}

func lost(l *loadgen.Load, primary string) int {
	if len(l.Acked()) < 100 {
		fatal("only %d writes acked: the load did not run (%s)", len(l.Acked()), l)
	}
	s := secrets()
	db := openDB(primary, s["MYSQL_APP_USER"], s["MYSQL_APP_PASSWORD"])
	defer db.Close()
	miss, err := loadgen.Missing(context.Background(), db, l.Acked(), 15*time.Second)
	if err != nil {
		fatal("count lost writes: %v", err)
	}
	return len(miss)
}

func readTopo() topology.Topology {
	t, err := store.Read(context.Background(), "demo")
	if err != nil {
		fatal("%v", err)
	}
	return t
}

func sh(name string, args ...string) string {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		fatal("%s %v: %v\n%s", name, args, err, out)
	}
	return string(out)
}

func baton(args ...string) (string, error) {
	out, err := exec.Command(env["BATON_BIN"], append([]string{"--config", env["BATON_CONFIG"]}, args...)...).CombinedOutput()
	return string(out), err
}

func pid(node string) int {
	b, _ := os.ReadFile(filepath.Join(env["SANDBOX_STATE"], "pids", "mariadb-"+node+".pid"))
	p, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return p
}

// ageAntiFlap moves the last unplanned failover into the past, so each trial may fail over.
func ageAntiFlap() {
	r := topology.Record{Kind: "unplanned", At: time.Now().Add(-time.Hour)}
	b, _ := json.Marshal(r)
	_, _ = store.Client().KV().Put(&api.KVPair{Key: "baton/clusters/demo/last_unplanned", Value: b}, nil)
}

func waitPrimaryChange(old string, limit time.Duration) (topology.Topology, bool) {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if t := readTopo(); t.Primary.Name != old {
			return t, true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return topology.Topology{}, false
}

// latestRun returns the latest run's start time, its failover input (the detector's
// verdict time) and its result.
func latestRun(id string) (time.Time, start.FailoverInput, workflows.Result) {
	run := tc.GetWorkflow(context.Background(), id, "")
	var r workflows.Result
	_ = run.Get(context.Background(), &r)
	var in start.FailoverInput
	it := tc.GetWorkflowHistory(context.Background(), id, run.GetRunID(), false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	if it.HasNext() {
		if ev, err := it.Next(); err == nil {
			if a := ev.GetWorkflowExecutionStartedEventAttributes(); a != nil && len(a.GetInput().GetPayloads()) > 0 {
				_ = json.Unmarshal(a.GetInput().GetPayloads()[0].GetData(), &in)
			}
			return ev.GetEventTime().AsTime(), in, r
		}
	}
	return time.Time{}, in, r
}

func stepEnd(r workflows.Result, name string) time.Time {
	for _, s := range r.Steps {
		if s.Name == name {
			return s.Start.Add(s.Duration)
		}
	}
	return time.Time{}
}

type stats []time.Duration

func (s stats) row(name string) string {
	if len(s) == 0 {
		return fmt.Sprintf("| %s | - | - | - | 0 |", name)
	}
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	p := func(q float64) time.Duration { return s[min(len(s)-1, int(q*float64(len(s))))] }
	r := func(d time.Duration) string { return d.Round(time.Millisecond).String() }
	return fmt.Sprintf("| %s | %s | %s | %s | %d |", name, r(p(0.5)), r(p(0.95)), r(s[len(s)-1]), len(s))
}

// rebuilt counts the nodes rebuilt after a refused rejoin or a failed crash recovery: each is
// a figure in the table, since a rejoin refused after a plain crash means transactions were
// lost or diverged.
var rebuilt []string

func rejoin(node string) error {
	again, out, err := sandboxkit.StartNode(root, node)
	if err != nil {
		fatal("%v", err)
	}
	if again { // mysqld aborted in crash recovery: rebuilt
		rebuilt = append(rebuilt, node+": mysqld aborted in crash recovery, rebuilt from the primary")
		fmt.Fprintf(os.Stderr, "bench: %s", out)
	}
	didRebuild := false
	for i := 0; ; i++ {
		out, err := baton("rejoin", "--cluster", "demo", "--host", node)
		if err == nil {
			return nil
		}
		if !didRebuild && (strings.Contains(out, "ErrantGTIDs") || strings.Contains(out, "MissingOwnGTIDs")) {
			didRebuild = true
			rebuilt = append(rebuilt, node+": "+lastLine(out))
			fmt.Fprintf(os.Stderr, "bench: rejoin of %s refused, rebuilding it: %s\n", node, lastLine(out))
			sh(filepath.Join(root, "deploy/local/sandbox.sh"), "rebuild-node", node) // as the refusal says
			continue
		}
		if i == 5 {
			return fmt.Errorf("rejoin %s: %s", node, strings.TrimSpace(out))
		}
		time.Sleep(time.Second)
	}
}

func iptables(args ...string) { sh("iptables", args...) }

// Stages of an unplanned failover, from the crash or the cut.
const (
	stDetected  = "detected (the detector's verdict)"
	stStarted   = "workflow started"
	stPublished = "published in Consul"
	stRemoteA   = "remote HAProxy a serves the new primary"
	stRemoteB   = "remote HAProxy b serves the new primary"
	stLocal     = "a new connection through the local writer reaches it"
	stAckLG     = "first acked write: loadgen"
	stAckApp    = "first acked write: application-like pool"
	stVerified  = "routing verified (workflow)"
)

func benchUnplanned(trials, silentTrials int) {
	kill := newTimeline(stDetected, stStarted, stPublished, stRemoteA, stRemoteB, stLocal, stAckLG, stAckApp, stVerified)
	silent := newTimeline(stDetected, stStarted, stPublished, stRemoteA, stRemoteB, stLocal, stAckLG, stAckApp, stVerified)
	var outLG, outApp, sOutLG, sOutApp stats
	var notes []string
	lostTotal, acked := 0, 0
	for i := 0; i < trials+silentTrials; i++ {
		isSilent := i >= trials
		ageAntiFlap()
		time.Sleep(1500 * time.Millisecond) // heartbeats and detector settle
		before := readTopo()
		c := startClients()
		time.Sleep(2 * time.Second)
		wa, wb, probe := watchHAProxy("a"), watchHAProxy("b"), probeLocalWriter()
		time.Sleep(100 * time.Millisecond)
		crash := time.Now()
		var rules [][]string
		if isSilent {
			p := before.Primary.IPv4 // cut from every other host; its own host (its agent) still reaches it
			for _, r := range [][]string{{"INPUT", "-d", p, "-j", "DROP"}, {"INPUT", "-s", p, "-j", "DROP"}, {"INPUT", "-s", p, "-d", p, "-j", "ACCEPT"}} {
				iptables(append([]string{"-I"}, r...)...)
				rules = append(rules, r)
			}
		} else {
			_ = syscall.Kill(pid(before.Primary.Name), syscall.SIGKILL)
		}
		after, ok := waitPrimaryChange(before.Primary.Name, 20*time.Second)
		time.Sleep(2 * time.Second)
		c.stop()
		wa.stop()
		wb.stop()
		probe.stop()
		if isSilent {
			// Stop the isolated old primary before it could commit on its own, then let it back.
			_ = syscall.Kill(pid(before.Primary.Name), syscall.SIGKILL)
			for _, r := range rules {
				iptables(append([]string{"-D"}, r...)...)
			}
		}
		if !ok {
			fatal("trial %d: no failover within 20s", i+1)
		}
		start, in, res := latestRun(workflows.WorkflowID("demo"))
		// The longest stretch without an ack: acks already on the wire at the crash or the cut
		// arrive just after it, so "last ack before, first ack after" would understate it.
		outage := func(l *loadgen.Load) (time.Duration, time.Time) {
			gap, from := l.LongestGap()
			return gap, from.Add(gap)
		}
		oLG, firstLG := outage(c.loadgen)
		oApp, firstApp := outage(c.app)
		tl := kill
		if isSilent {
			tl = silent
			sOutLG, sOutApp = append(sOutLG, oLG), append(sOutApp, oApp)
		} else {
			outLG, outApp = append(outLG, oLG), append(outApp, oApp)
		}
		newAddr := after.Primary.IPv4
		tl.add(stDetected, crash, in.DetectedAt)
		tl.add(stStarted, crash, start)
		tl.add(stPublished, crash, stepEnd(res, "publish topology"))
		tl.add(stRemoteA, crash, wa.upAt(newAddr))
		tl.add(stRemoteB, crash, wb.upAt(newAddr))
		tl.add(stLocal, crash, probe.at(after.Primary.ServerID))
		tl.add(stAckLG, crash, firstLG)
		tl.add(stAckApp, crash, firstApp)
		tl.add(stVerified, crash, stepEnd(res, "verify routing"))
		n, a := c.lost(after.Primary.Addr())
		lostTotal += n
		acked += a
		fmt.Fprintf(os.Stderr, "unplanned %d (%s): %s -> %s published +%s outage loadgen %s app %s lost %d\n", i+1,
			map[bool]string{true: "silent host", false: "kill -9"}[isSilent], before.Primary.Name, after.Primary.Name,
			stepEnd(res, "publish topology").Sub(crash).Round(time.Millisecond), oLG.Round(time.Millisecond), oApp.Round(time.Millisecond), n)
		if err := rejoin(before.Primary.Name); err != nil {
			fmt.Fprintf(os.Stderr, "bench: %v\n", err)
			notes = append(notes, fmt.Sprintf("Trial %d: %s could not rejoin: %v", i+1, before.Primary.Name, err))
		}
	}
	fmt.Printf("## Unplanned failover under load\n\n")
	fmt.Printf("| kill -9 of mysqld: client write outage (longest stretch without an ack) | p50 | p95 | max | trials |\n|---|---|---|---|---|\n")
	fmt.Println(outLG.row("loadgen (8 writers, up to 16 connections)"))
	fmt.Println(outApp.row("application-like pool (4 connections kept open, 0.5 s dial timeout)"))
	fmt.Println()
	kill.print("kill -9: stage, from the crash")
	if silentTrials > 0 {
		fmt.Printf("| silent host (iptables DROP of all its traffic): client write outage | p50 | p95 | max | trials |\n|---|---|---|---|---|\n")
		fmt.Println(sOutLG.row("loadgen"))
		fmt.Println(sOutApp.row("application-like pool"))
		fmt.Println()
		silent.print("silent host: stage, from the cut")
	}
	fmt.Printf("Acked writes lost: **%d** of %d. Nodes rebuilt (a refused rejoin, or a failed crash recovery): **%d**.\n\n", lostTotal, acked, len(rebuilt))
	for _, r := range rebuilt {
		fmt.Printf("- rebuilt %s\n", r)
	}
	for _, n := range notes {
		fmt.Printf("- %s\n", n)
	}
}

func benchPlanned(trials int) {
	tl := newTimeline(stPublished, stRemoteA, stRemoteB, stLocal, stAckLG, stAckApp, stVerified)
	var gapLG, gapApp, totals stats
	lostTotal, acked := 0, 0
	for i := 0; i < trials; i++ {
		c := startClients()
		time.Sleep(1500 * time.Millisecond)
		wa, wb, probe := watchHAProxy("a"), watchHAProxy("b"), probeLocalWriter()
		out, err := baton("switchover", "--cluster", "demo")
		if err != nil {
			fatal("switchover %d: %s", i+1, out)
		}
		time.Sleep(1500 * time.Millisecond)
		c.stop()
		wa.stop()
		wb.stop()
		probe.stop()
		g1, from1 := c.loadgen.LongestGap()
		g2, from2 := c.app.LongestGap()
		_, _, res := latestRun(workflows.WorkflowID("demo"))
		total := stepEnd(res, "record result").Sub(res.Steps[0].Start)
		t := readTopo()
		demoted := stepStart(res, "demote primary")
		tl.add(stPublished, demoted, stepEnd(res, "publish topology"))
		tl.add(stRemoteA, demoted, wa.upAt(t.Primary.IPv4))
		tl.add(stRemoteB, demoted, wb.upAt(t.Primary.IPv4))
		tl.add(stLocal, demoted, probe.at(t.Primary.ServerID))
		tl.add(stAckLG, demoted, from1.Add(g1))
		tl.add(stAckApp, demoted, from2.Add(g2))
		tl.add(stVerified, demoted, stepEnd(res, "verify routing"))
		n, a := c.lost(t.Primary.Addr())
		lostTotal += n
		acked += a
		gapLG, gapApp, totals = append(gapLG, g1), append(gapApp, g2), append(totals, total)
		fmt.Fprintf(os.Stderr, "planned %d: %s -> %s unavailable loadgen %s app %s total %s lost %d\n", i+1, res.From, res.To,
			g1.Round(time.Millisecond), g2.Round(time.Millisecond), total.Round(time.Millisecond), n)
	}
	fmt.Printf("## Planned switchover under load\n\n| figure | p50 | p95 | max | trials |\n|---|---|---|---|---|\n")
	fmt.Println(gapLG.row("client write unavailability (longest gap): loadgen"))
	fmt.Println(gapApp.row("client write unavailability (longest gap): application-like pool"))
	fmt.Println(totals.row("total duration"))
	fmt.Println()
	tl.print("planned: stage, from the demotion's start")
	fmt.Printf("Acked writes lost: **%d** of %d. Nodes rebuilt (a refused rejoin, or a failed crash recovery): **%d**.\n\n", lostTotal, acked, len(rebuilt))
	for _, r := range rebuilt {
		fmt.Printf("- rebuilt %s\n", r)
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
