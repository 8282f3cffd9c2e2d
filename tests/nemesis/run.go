package main

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.temporal.io/api/enums/v1"

	"github.com/baton-db/baton/internal/topology"
	"github.com/baton-db/baton/tests/sandboxkit"
	"github.com/baton-db/baton/workflows"
)

// run executes a plan on the sandbox.
type run struct {
	kit        *sandboxkit.Kit
	clusters   []string
	maxOverlap int
	plan       []Fault
	start      time.Time
	tell       func(Command) // to the checker
	mu         sync.Mutex
	rep        Report
	busy       map[string]bool // resources held by running faults
	active     int             // running faults
	undo       map[int]func()  // each running fault's undo, for an interrupt
	healMu     map[string]*sync.Mutex
}

func newRun(kit *sandboxkit.Kit, seed uint64, duration time.Duration, clusters []string, maxOverlap int, plan []Fault, tell func(Command)) *run {
	r := &run{kit: kit, clusters: clusters, maxOverlap: maxOverlap, plan: plan, tell: tell, busy: map[string]bool{},
		undo: map[int]func(){}, healMu: map[string]*sync.Mutex{},
		rep: Report{Seed: seed, Duration: duration, Planned: plan, Injected: map[Kind]int{}}}
	for _, c := range clusters {
		r.healMu[c] = &sync.Mutex{}
	}
	return r
}

func (r *run) event(format string, a ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e := Event{At: time.Since(r.start), Text: fmt.Sprintf(format, a...)}
	r.rep.Timeline = append(r.rep.Timeline, e)
	fmt.Printf("nemesis t+%-8s %s\n", e.At.Round(100*time.Millisecond), e.Text)
}

// execute runs every planned fault, each no earlier than its time, once its resource is
// free and fewer than max-overlap faults run, then undoes what is left, heals every
// cluster, and keeps quiet until the end of the run.
func (r *run) execute() {
	r.start = time.Now()
	time.Sleep(firstFault)
	var wg sync.WaitGroup
	for _, f := range r.plan {
		if d := f.At - time.Since(r.start); d > 0 {
			time.Sleep(d)
		}
		for {
			r.mu.Lock()
			free := !r.busy[f.Resource()] && r.active < r.maxOverlap && (f.Overlap || r.active == 0)
			if free {
				r.busy[f.Resource()] = true
				r.active++
			}
			r.mu.Unlock()
			if free {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		if time.Since(r.start) > r.rep.Duration-quietPeriod {
			r.event("%s: skipped (the run's quiet period has begun)", f)
			r.release(f)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer r.release(f)
			r.inject(f)
		}()
	}
	wg.Wait()
	r.event("every fault is over: final heal")
	for _, c := range r.clusters {
		r.heal(c)
	}
	if d := r.rep.Duration - time.Since(r.start); d > 0 {
		r.event("quiet until the end of the run (%s)", d.Round(time.Second))
		time.Sleep(d)
	}
	for _, c := range r.clusters {
		r.heal(c)
	}
}

func (r *run) release(f Fault) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.busy, f.Resource())
	r.active--
}

// undoAll runs the undo of every fault in place (an interrupt).
func (r *run) undoAll() {
	r.mu.Lock()
	undo := r.undo
	r.undo = map[int]func(){}
	r.mu.Unlock()
	for _, u := range undo {
		u()
	}
}

func (r *run) setUndo(n int, f func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if f == nil {
		delete(r.undo, n)
	} else {
		r.undo[n] = f
	}
}

func (r *run) healErr(format string, a ...any) {
	msg := fmt.Sprintf(format, a...)
	r.event("HEAL ERROR: %s", msg)
	r.mu.Lock()
	r.rep.HealErrors = append(r.rep.HealErrors, msg)
	r.mu.Unlock()
}

func (r *run) faultErr(f Fault, format string, a ...any) {
	msg := fmt.Sprintf("%s: %s", f, fmt.Sprintf(format, a...))
	r.event("not injected: %s", msg)
	r.mu.Lock()
	r.rep.FaultErrors = append(r.rep.FaultErrors, msg)
	r.mu.Unlock()
}

// topo reads cluster from Consul as an operator would: a read that fails while a Consul
// server restarts (a consistent read forwarded to it can hang until the agent gives up) is
// tried again, three times in all.
func (r *run) topo(cluster string) (tp topology.Topology, err error) {
	for try := 1; try <= 3; try++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		tp, err = r.kit.Topo.Read(ctx, cluster)
		cancel()
		if err == nil {
			return tp, nil
		}
		time.Sleep(time.Second)
	}
	return tp, err
}

// target resolves a fault's role against Consul now.
func (r *run) target(f Fault, tp topology.Topology) (topology.Node, bool) {
	switch f.Target {
	case targetPrimary:
		return tp.Primary, true
	case targetReplica:
		if len(tp.Replicas) == 0 {
			return topology.Node{}, false
		}
		return tp.Replicas[f.Pick%len(tp.Replicas)], true
	case targetAnyNode:
		all := sandboxkit.Members(tp)
		return all[f.Pick%len(all)], true
	}
	return topology.Node{}, false
}

// inject runs one fault: a cluster's fault first heals the cluster and waits out its
// anti-flap period when it touches the primary, as a scheduled fault would find it.
func (r *run) inject(f Fault) {
	var tp topology.Topology
	var node topology.Node
	if f.Cluster != "" {
		r.heal(f.Cluster)
		var err error
		if tp, err = r.topo(f.Cluster); err != nil {
			r.faultErr(f, "read Consul: %v", err)
			return
		}
		if f.Target != "" {
			var ok bool
			if node, ok = r.target(f, tp); !ok {
				r.faultErr(f, "no %s to fault", f.Target)
				return
			}
		}
		if f.Target == targetPrimary {
			r.waitAntiFlap(f.Cluster)
			if tp, _ = r.topo(f.Cluster); tp.Primary.Name != "" {
				node = tp.Primary
			}
		}
	}
	what := f.String()
	if node.Name != "" {
		what += " = " + node.Name
	}
	r.event("start %s", what)
	r.mu.Lock()
	r.rep.Injected[f.Kind]++
	r.mu.Unlock()
	switch f.Kind {
	case KillNode:
		r.signal(f, "mariadb-"+node.Name, syscall.SIGKILL)
		time.Sleep(f.Hold)
		r.startNode(node.Name)
	case StopNode:
		pid, err := r.kit.PID("mariadb-" + node.Name)
		if err != nil {
			r.faultErr(f, "%v", err)
			return
		}
		_ = syscall.Kill(pid, syscall.SIGSTOP)
		r.setUndo(f.N, func() { _ = syscall.Kill(pid, syscall.SIGCONT) })
		time.Sleep(f.Hold)
		_ = syscall.Kill(pid, syscall.SIGCONT)
		r.setUndo(f.N, nil)
	case PartitionNode, OneWay, PartitionZone:
		r.partition(f, tp, node)
	case CutDetector, CutWorker:
		src := r.kit.Env["DETECTOR_ADDR"]
		if f.Kind == CutWorker {
			src = r.kit.Env["WORKER_ADDR"]
		}
		r.cut(f, [][]string{{"INPUT", "-s", src, "-p", "tcp", "--dport", "3306", "-j", "DROP"}}, nil)
	case AgentConsul:
		pid, err := r.kit.PID("heartbeat-" + node.Name)
		if err != nil {
			r.faultErr(f, "%v", err)
			return
		}
		_, port, _ := net.SplitHostPort(r.kit.Env["CONSUL_HTTP_ADDR"])
		unblock, err := sandboxkit.CutProcessFromConsul(pid, "baton-nemesis-"+node.Name, port)
		if err != nil {
			r.faultErr(f, "%v", err)
			return
		}
		r.setUndo(f.N, unblock)
		time.Sleep(f.Hold)
		unblock()
		r.setUndo(f.N, nil)
	case KillWorker:
		r.signal(f, "worker", syscall.SIGKILL)
		time.Sleep(f.Hold)
		r.sandbox("start-worker")
	case KillDetector:
		r.signal(f, "detector", syscall.SIGKILL)
		time.Sleep(f.Hold)
		r.sandbox("start-detector")
	case ConsulRestart:
		r.signal(f, "consul-server-"+f.Target, syscall.SIGKILL)
		time.Sleep(f.Hold)
		r.sandbox("start-consul-server", f.Target)
	case Switchover:
		out, code := r.kit.Baton(3*time.Minute, "switchover", "--cluster", f.Cluster)
		r.event("%s: exit %d: %s", f, code, lastOf(out))
	case Approval:
		out, code := r.kit.Baton(time.Minute, "switchover", "--cluster", f.Cluster, "--require-approval", "--wait=false")
		r.event("%s: started, exit %d: %s", f, code, lastOf(out))
		if code == 0 {
			time.Sleep(f.Hold)
			args := []string{"approve", "--cluster", f.Cluster, "--as", "alice"}
			if f.Gate == gateAbort {
				args = []string{"abort", "--cluster", f.Cluster, "--as", "bob", "--reason", "nemesis"}
			}
			out, code = r.kit.Baton(3*time.Minute, args...)
			r.event("%s: %s: exit %d: %s", f, f.Gate, code, lastOf(out))
		}
	case Downtime:
		out, code := r.kit.Baton(time.Minute, "downtime", "--cluster", f.Cluster, "--host", node.Name, "--for", "2m", "--reason", "nemesis", "--as", "nemesis")
		if code != 0 {
			r.faultErr(f, "exit %d: %s", code, lastOf(out))
			return
		}
		r.setUndo(f.N, func() { r.kit.Baton(time.Minute, "downtime", "end", "--cluster", f.Cluster, "--host", node.Name) })
		time.Sleep(f.Hold)
		if out, code := r.kit.Baton(time.Minute, "downtime", "end", "--cluster", f.Cluster, "--host", node.Name); code != 0 {
			r.healErr("downtime end %s: exit %d: %s", node.Name, code, lastOf(out))
		}
		r.setUndo(f.N, nil)
	case Maintenance:
		set := func(on bool) error {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			return r.kit.Topo.SetMaintenance(ctx, f.Cluster, on)
		}
		if err := set(true); err != nil {
			r.faultErr(f, "%v", err)
			return
		}
		r.setUndo(f.N, func() { _ = set(false) })
		time.Sleep(f.Hold)
		if err := set(false); err != nil {
			r.healErr("maintenance off on %s: %v", f.Cluster, err)
		}
		r.setUndo(f.N, nil)
	}
	r.event("end %s", what)
	if f.Cluster != "" {
		r.heal(f.Cluster)
	}
}

func lastOf(out string) string {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	return lines[len(lines)-1]
}

func (r *run) signal(f Fault, name string, sig syscall.Signal) {
	pid, err := r.kit.PID(name)
	if err == nil {
		err = syscall.Kill(pid, sig)
	}
	if err != nil {
		r.faultErr(f, "signal %s: %v", name, err)
	}
}

func (r *run) sandbox(args ...string) {
	if _, err := r.kit.Sandbox(args...); err != nil {
		r.healErr("%v", err)
	}
}

// cut holds iptables rules for the fault's hold, with a side client if one is given.
func (r *run) cut(f Fault, rules [][]string, side *Command) {
	unblock, err := sandboxkit.Cut(rules)
	if err != nil {
		r.faultErr(f, "%v", err)
		return
	}
	undo := func() {
		if err := unblock(); err != nil {
			r.healErr("remove the cut of %s: %v", f, err)
		}
	}
	r.setUndo(f.N, undo)
	if side != nil {
		r.tell(*side)
	}
	time.Sleep(f.Hold)
	undo()
	r.setUndo(f.N, nil)
	if side != nil {
		time.Sleep(2 * time.Second) // its last writes, once the cut-off node answers again
		r.tell(Command{Op: "side-stop", ID: side.ID})
	}
}

// partition cuts a node (or its zone) off; when it is the primary, a client on the cut-off
// side writes to it directly the whole time, as an application host whose HAProxy has not
// moved would.
func (r *run) partition(f Fault, tp topology.Topology, n topology.Node) {
	p := n.IPv4
	port := fmt.Sprint(n.Port)
	var rules [][]string
	source := p
	switch f.Kind {
	case PartitionNode: // the host itself still reaches its own server (its agent)
		rules = [][]string{{"INPUT", "-d", p, "-j", "DROP"}, {"INPUT", "-s", p, "-j", "DROP"}, {"INPUT", "-s", p, "-d", p, "-j", "ACCEPT"}}
	case OneWay: // what the node sends is dropped; what it is sent arrives
		rules = [][]string{{"INPUT", "-s", p, "-j", "DROP"}, {"INPUT", "-s", p, "-d", p, "-j", "ACCEPT"}}
	case PartitionZone: // as tests/partition_test.go's cutZoneOff, for whichever zone the primary is in
		side := []string{p, r.host("REMOTE_" + strings.ToUpper(n.Zone) + "_WRITER_ADDR")}
		other := []string{r.host("LOCAL_WRITER_ADDR"), r.kit.Env["DETECTOR_ADDR"], r.kit.Env["WORKER_ADDR"]}
		for _, m := range tp.Replicas {
			if m.Zone == n.Zone {
				side = append(side, m.IPv4)
				source = m.IPv4
			} else {
				other = append(other, m.IPv4)
			}
		}
		for _, z := range []string{"a", "b"} {
			if z != n.Zone {
				other = append(other, r.host("REMOTE_"+strings.ToUpper(z)+"_WRITER_ADDR"))
			}
		}
		for _, a := range side {
			for _, b := range other {
				rules = append(rules, []string{"INPUT", "-s", a, "-d", b, "-j", "DROP"}, []string{"INPUT", "-s", b, "-d", a, "-j", "DROP"})
			}
		}
		rules = append(rules,
			[]string{"INPUT", "-s", "127.0.0.1", "-d", p, "-p", "tcp", "--dport", port, "-j", "DROP"},
			[]string{"INPUT", "-s", p, "-d", "127.0.0.1", "-p", "tcp", "--sport", port, "-j", "DROP"})
	}
	var side *Command
	if n.Name == tp.Primary.Name {
		side = &Command{Op: "side-start", ID: fmt.Sprintf("#%d %s side: %s->%s", f.N, f.Kind, source, n.Name), Cluster: f.Cluster, Node: n.Name, Addr: n.Addr(), Source: source}
	}
	r.cut(f, rules, side)
}

func (r *run) host(envKey string) string {
	h, _, _ := net.SplitHostPort(r.kit.Env[envKey])
	return h
}

// waitAntiFlap waits until the cluster's last failover is older than its anti-flap period:
// a fault on the primary before then would rightly not be failed over.
func (r *run) waitAntiFlap(cluster string) {
	cc, err := r.kit.Config.Cluster(cluster)
	if err != nil {
		return
	}
	tp, err := r.topo(cluster)
	if err != nil || tp.LastFailover == nil {
		return
	}
	if d := time.Until(tp.LastFailover.At.Add(cc.AntiFlap + time.Second)); d > 0 {
		r.event("%s: waiting %s for its anti-flap period", cluster, d.Round(100*time.Millisecond))
		time.Sleep(d)
	}
}

// startNode restarts name's mysqld. One that aborts in crash recovery (a MariaDB 10.11
// assertion) is rebuilt from the primary by start-node (exit 3): counted, not a finding, for
// the checker still reads every acked write on every member.
func (r *run) startNode(name string) {
	rebuilt, _, err := sandboxkit.StartNode(r.kit.Root, name)
	if err != nil {
		r.healErr("start-node %s: %v", name, err)
	}
	if rebuilt {
		r.event("heal: %s's mysqld aborted in crash recovery; start-node rebuilt it from the primary", name)
		r.mu.Lock()
		r.rep.Rebuilds++
		r.mu.Unlock()
	}
}

// heal is the operator's round: Baton's processes up, every node's mysqld running, the
// cluster's operation finished, every evicted node rejoined with `baton rejoin`. A refused
// rejoin is a finding; the node is then rebuilt (counted) so the run can go on.
func (r *run) heal(cluster string) {
	r.healMu[cluster].Lock()
	defer r.healMu[cluster].Unlock()
	for _, p := range []struct{ pid, cmd string }{{"worker", "start-worker"}, {"detector", "start-detector"}} {
		if !r.alive(p.pid) && !r.busyWith(p.pid) {
			r.event("heal: %s is not running: sandbox.sh %s", p.pid, p.cmd)
			r.sandbox(p.cmd)
		}
	}
	for i := range r.kit.Nodes(cluster) {
		name := nodeName(cluster, i)
		if !r.alive("mariadb-" + name) {
			r.event("heal: %s's mysqld is not running: start-node", name)
			r.startNode(name)
		}
	}
	r.waitIdle(cluster)
	tp, err := r.topo(cluster)
	if err != nil {
		r.healErr("read %s: %v", cluster, err)
		return
	}
	for _, e := range tp.Evicted {
		name := e.Node.Name
		out, code := r.kit.Baton(3*time.Minute, "rejoin", "--cluster", cluster, "--host", name)
		r.mu.Lock()
		r.rep.Rejoins++
		r.mu.Unlock()
		if code != 0 && (strings.Contains(out, "MissingOwnGTIDs") || strings.Contains(out, "ErrantGTIDs")) {
			msg := fmt.Sprintf("rejoin of %s (%s) refused at t+%s: %s", name, cluster, time.Since(r.start).Round(100*time.Millisecond), lastOf(out))
			r.event("FINDING: %s; rebuilding it to go on", msg)
			r.mu.Lock()
			r.rep.Refused = append(r.rep.Refused, msg)
			r.rep.Rebuilds++
			r.mu.Unlock()
			r.sandbox("rebuild-node", name)
			out, code = r.kit.Baton(3*time.Minute, "rejoin", "--cluster", cluster, "--host", name)
		}
		if code != 0 && strings.Contains(out, "[Unreachable]") {
			// Its mysqld died after the look above (its agent stops a deposed node whose
			// commits are held): what the refusal says, start it and rejoin again.
			r.event("heal: rejoin of %s refused, its mysqld does not answer: start-node and rejoin again", name)
			r.startNode(name)
			out, code = r.kit.Baton(3*time.Minute, "rejoin", "--cluster", cluster, "--host", name)
		}
		if code != 0 {
			r.healErr("rejoin %s: exit %d: %s", name, code, lastOf(out))
			continue
		}
		r.event("heal: %s rejoined %s", name, cluster)
	}
}

func (r *run) busyWith(process string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.busy[globalPrefix+process]
}

func (r *run) alive(name string) bool {
	pid, err := r.kit.PID(name)
	return err == nil && syscall.Kill(pid, 0) == nil
}

// waitIdle waits (up to 2 minutes) until no switchover or failover of the cluster is open.
func (r *run) waitIdle(cluster string) {
	tc, err := r.kit.TemporalClient()
	if err != nil {
		r.healErr("temporal: %v", err)
		return
	}
	defer tc.Close()
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		d, err := tc.DescribeWorkflowExecution(ctx, workflows.WorkflowID(cluster), "")
		cancel()
		if err == nil && d.GetWorkflowExecutionInfo().GetStatus() != enums.WORKFLOW_EXECUTION_STATUS_RUNNING {
			return
		}
		if err != nil && strings.Contains(err.Error(), "not found") {
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
	r.healErr("%s: its workflow is still open after 2 minutes", workflows.WorkflowID(cluster))
}
