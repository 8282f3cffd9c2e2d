// Command nemesis is Baton's randomized fault injector with an independent checker
// (issue 26). On the running sandbox it draws faults from a seed (kill -9, SIGSTOP,
// partitions, the detector or the worker alone, the primary's agent without Consul, Baton's
// processes killed, a Consul server restarted, switchovers with and without approval,
// downtimes, maintenance), heals between them as an operator would (start, rejoin; a
// refused rejoin is a finding, and the rebuild that follows is counted), while a checker in
// its own process samples every node every 100 ms and writes on each side of a partition.
// It prints the seed, the schedule with times, the counts and a verdict; exit status 1 on
// FAIL. The same seed replays the same schedule:
//
//	go run ./tests/nemesis -seed 7 -duration 3m
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/baton-db/baton/tests/sandboxkit"
)

func main() {
	seed := flag.Uint64("seed", uint64(time.Now().UnixNano()%1_000_000), "seed of the schedule (printed; the same seed replays it)")
	duration := flag.Duration("duration", 3*time.Minute, "how long faults are injected, the last 30 s quiet")
	clusters := flag.String("clusters", "demo,demo2", "clusters to fault, comma-separated")
	maxOverlap := flag.Int("max-overlap", 2, "at most this many faults at once")
	checkerOnly := flag.Bool("checker-only", false, "run as the checker process (the nemesis starts it)")
	pretendLost := flag.Int("pretend-lost", 0, "pretend this many acked writes were lost (proves the verdict fails)")
	planOnly := flag.Bool("plan", false, "print the schedule of the seed and exit")
	flag.Parse()
	// The driver's notes on connections the faults broke ("closing bad idle connection")
	// would bury the schedule; every failed write is counted by the checker anyway.
	_ = mysql.SetLogger(log.New(io.Discard, "", 0))
	cl := strings.Split(*clusters, ",")
	if *planOnly {
		for _, f := range Plan(*seed, *duration, cl, *maxOverlap) {
			fmt.Printf("not before t+%-7s %s\n", f.At, f)
		}
		return
	}
	root, err := repoRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "nemesis:", err)
		os.Exit(2)
	}
	kit, err := sandboxkit.Load(root)
	if err != nil {
		fmt.Fprintln(os.Stderr, "nemesis: the sandbox:", err)
		os.Exit(2)
	}
	if *checkerOnly {
		if err := runChecker(kit, cl, *pretendLost); err != nil {
			fmt.Fprintln(os.Stderr, "checker:", err)
			os.Exit(2)
		}
		return
	}
	os.Exit(runNemesis(kit, *seed, *duration, cl, *maxOverlap, *pretendLost))
}

// repoRoot is the module's root: the working directory or one of its parents.
func repoRoot() (string, error) {
	dir, _ := os.Getwd()
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "deploy/local/sandbox.sh")); err == nil {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("run from inside the Baton repository (no deploy/local/sandbox.sh above %s)", dir)
		}
	}
}

func runNemesis(kit *sandboxkit.Kit, seed uint64, duration time.Duration, clusters []string, maxOverlap, pretendLost int) int {
	plan := Plan(seed, duration, clusters, maxOverlap)
	fmt.Printf("nemesis: seed %d, duration %s, clusters %v, max overlap %d: %d faults planned\n", seed, duration, clusters, maxOverlap, len(plan))
	if out, err := kit.Sandbox("status"); err != nil || !strings.Contains(string(out), "worker running") {
		fmt.Fprintf(os.Stderr, "nemesis: the sandbox is not up (deploy/local/sandbox.sh up): %v\n%s", err, out)
		return 2
	}
	// The checker: this binary again, in its own process, with its own connections.
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, "nemesis:", err)
		return 2
	}
	args := []string{"-checker-only", "-clusters", strings.Join(clusters, ",")}
	if pretendLost > 0 {
		args = append(args, "-pretend-lost", fmt.Sprint(pretendLost))
	}
	chk := exec.Command(self, args...)
	chk.Stderr = os.Stderr
	toChecker, _ := chk.StdinPipe()
	fromChecker, _ := chk.StdoutPipe()
	if err := chk.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "nemesis: start the checker:", err)
		return 2
	}
	n := newRun(kit, seed, duration, clusters, maxOverlap, plan, func(c Command) {
		b, _ := json.Marshal(c)
		_, _ = toChecker.Write(append(b, '\n'))
	})
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sig
		fmt.Fprintln(os.Stderr, "nemesis: interrupted: undoing every fault in place")
		n.undoAll()
		os.Exit(3)
	}()
	n.execute()
	b, _ := json.Marshal(Command{Op: "finish"})
	_, _ = toChecker.Write(append(b, '\n'))
	out, _ := io.ReadAll(bufio.NewReader(fromChecker))
	werr := chk.Wait()
	if err := json.Unmarshal(lastLine(out), &n.rep.Checker); err != nil {
		n.rep.Checker.Errors = append(n.rep.Checker.Errors, fmt.Sprintf("the checker's report: %v (%v): %s", err, werr, out))
	}
	if n.rep.Checker.Workflows == nil {
		n.rep.Checker.Workflows = map[string]int{}
	}
	if n.rep.Print(os.Stdout) {
		return 0
	}
	return 1
}

func lastLine(b []byte) []byte {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return []byte(lines[len(lines)-1])
}
