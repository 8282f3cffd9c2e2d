package main

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/baton-db/baton/internal/fleet"
	"github.com/baton-db/baton/internal/loadgen"
	"github.com/baton-db/baton/internal/mysqladmin"
	"github.com/baton-db/baton/tests/sandboxkit"
	"github.com/baton-db/baton/workflows"
)

// Command is what the nemesis tells its checker on stdin, one JSON object a line.
type Command struct {
	Op      string // side-start, side-stop, finish
	ID      string // the side client's name
	Cluster string
	Node    string // the node the side client writes to directly
	Addr    string
	Source  string // the address it connects from (on the cut-off side)
}

// writer is one write load of the checker.
type writer struct {
	name, cluster, node string
	db                  *sql.DB
	load                *loadgen.Load
	app                 bool // the application's client through the local HAProxy (not a side client)
	started             time.Time
}

type checker struct {
	kit      *sandboxkit.Kit
	clusters []string
	start    time.Time
	mu       sync.Mutex
	clients  []*writer
	rep      CheckerReport
	primary  map[string]string // cluster -> the primary Consul names, as last sampled
}

// runChecker is the checker's process (-checker-only): its own connections, sampling every
// node every 100 ms and writing through each cluster's local HAProxy until the nemesis
// says finish (or closes stdin); then the final checks, and the report as JSON on stdout.
func runChecker(kit *sandboxkit.Kit, clusters []string, pretendLost int) error {
	c := &checker{kit: kit, clusters: clusters, start: time.Now(), primary: map[string]string{},
		rep: CheckerReport{Workflows: map[string]int{}}}
	for _, cl := range clusters {
		db := kit.AppDB(kit.LocalWriter(cl))
		db.SetMaxOpenConns(4)
		db.SetMaxIdleConns(4)
		// A fresh sandbox has no table yet: without it every write fails and the run would
		// prove nothing about lost writes (the verdict fails an app client with no ack).
		if err := createSchema(db); err != nil {
			c.rep.Errors = append(c.rep.Errors, fmt.Sprintf("create %s on %s: %v", loadgen.Table, cl, err))
		}
		c.clients = append(c.clients, &writer{name: "app via local HAProxy " + cl, cluster: cl, app: true, db: db, load: loadgen.Start(db, 50), started: time.Now()})
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); c.sample(stop) }()
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		var cmd Command
		if json.Unmarshal(in.Bytes(), &cmd) != nil {
			continue
		}
		if cmd.Op == "finish" {
			break
		}
		c.command(cmd)
	}
	close(stop)
	wg.Wait()
	c.finish(pretendLost)
	return json.NewEncoder(os.Stdout).Encode(c.rep)
}

func logf(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "%s checker: %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, a...))
}

func (c *checker) command(cmd Command) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch cmd.Op {
	case "side-start":
		db, err := mysqladmin.Options{User: c.kit.AppUser, Password: c.kit.AppPassword, SourceAddr: cmd.Source,
			ConnectTimeout: time.Second, ReadTimeout: 30 * time.Second}.OpenDB(cmd.Addr)
		if err != nil {
			c.rep.Errors = append(c.rep.Errors, fmt.Sprintf("side client %s: %v", cmd.ID, err))
			return
		}
		db.SetMaxOpenConns(4)
		c.clients = append(c.clients, &writer{name: cmd.ID, cluster: cmd.Cluster, node: cmd.Node, db: db, load: loadgen.Start(db, 50), started: time.Now()})
		logf("side client %s: from %s directly to %s (%s)", cmd.ID, cmd.Source, cmd.Node, cmd.Addr)
	case "side-stop":
		for _, cl := range c.clients {
			if cl.name == cmd.ID {
				cl.load.Stop()
			}
		}
	}
}

// sample reads every node's read_only and replica status every 100 ms, from the node's own
// address (a path every partition leaves open, so a cut-off primary is still seen), and
// the primary Consul names.
func (c *checker) sample(stop <-chan struct{}) {
	type node struct{ cluster, name, addr string }
	dbs := map[string]*sql.DB{}
	var nodes []node
	for _, cl := range c.clusters {
		for i, addr := range c.kit.Nodes(cl) {
			host, _, _ := net.SplitHostPort(addr)
			db, err := mysqladmin.Options{User: c.kit.Secrets.AdminUser, Password: c.kit.Secrets.AdminPassword, TLS: c.kit.AdminTLS,
				SourceAddr: host, ConnectTimeout: 300 * time.Millisecond, ReadTimeout: 500 * time.Millisecond}.OpenDB(addr)
			if err != nil {
				c.rep.Errors = append(c.rep.Errors, fmt.Sprintf("sampler %s: %v", addr, err))
				continue
			}
			db.SetMaxOpenConns(2)
			dbs[addr] = db
			nodes = append(nodes, node{cl, nodeName(cl, i), addr})
		}
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			for _, db := range dbs {
				db.Close()
			}
			return
		case <-tick.C:
		}
		at := time.Now()
		states := make([]NodeState, len(nodes))
		var wg sync.WaitGroup
		for i, n := range nodes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
				defer cancel()
				var ro bool
				if err := dbs[n.addr].QueryRowContext(ctx, "SELECT @@GLOBAL.read_only").Scan(&ro); err != nil {
					return
				}
				st := NodeState{Reachable: true, ReadOnly: ro}
				if m, err := sandboxkit.ReplicaStatus(ctx, dbs[n.addr]); err == nil {
					st.Replicating = m["Slave_IO_Running"] == "Yes" || m["Slave_SQL_Running"] == "Yes"
				}
				states[i] = st
			}()
		}
		wg.Wait()
		per := map[string]map[string]NodeState{}
		for i, n := range nodes {
			if per[n.cluster] == nil {
				per[n.cluster] = map[string]NodeState{}
			}
			per[n.cluster][n.name] = states[i]
		}
		c.consul(at)
		c.mu.Lock()
		c.rep.Samples++
		for _, cl := range c.clusters {
			if w := SplitBrain(per[cl]); w != nil {
				c.rep.SplitBrain++
				if len(c.rep.SplitSamples) < 20 {
					c.rep.SplitSamples = append(c.rep.SplitSamples, SplitSample{At: at, Cluster: cl, Writable: w, Consul: c.primary[cl]})
				}
				logf("SPLIT BRAIN sample: %s writable %v, Consul names %s", cl, w, c.primary[cl])
			}
		}
		c.mu.Unlock()
	}
}

// nodeName is the sandbox's name of a cluster's i-th node (demo: node1-3, demo2: node4-5).
func nodeName(cluster string, i int) string {
	if cluster == "demo2" {
		return fmt.Sprintf("node%d", 4+i)
	}
	return fmt.Sprintf("node%d", 1+i)
}

// consul records a change of primary (a takeover) when it sees one.
func (c *checker) consul(at time.Time) {
	for _, cl := range c.clusters {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		tp, err := c.kit.Topo.Read(ctx, cl)
		cancel()
		if err != nil || tp.Primary.Name == "" {
			continue
		}
		c.mu.Lock()
		if old := c.primary[cl]; old != tp.Primary.Name {
			if old != "" {
				c.rep.Takeovers = append(c.rep.Takeovers, Takeover{At: at, Cluster: cl, From: old, To: tp.Primary.Name, Epoch: tp.Epoch})
				logf("Consul names %s primary of %s (was %s), epoch %d", tp.Primary.Name, cl, old, tp.Epoch)
			}
			c.primary[cl] = tp.Primary.Name
		}
		c.mu.Unlock()
	}
}

// losingSide is when a side client's writes stopped counting as the winning side's: the
// first takeover in its cluster, after it started, that named another node.
func (c *checker) losingSide(cl *writer) time.Time {
	for _, t := range c.rep.Takeovers {
		if t.Cluster == cl.cluster && t.At.After(cl.started) && t.To != cl.node {
			return t.At
		}
	}
	return time.Time{}
}

func (c *checker) finish(pretendLost int) {
	for _, cl := range c.clients {
		cl.load.Stop()
	}
	ctx := context.Background()
	tc, err := c.kit.TemporalClient()
	if err != nil {
		c.rep.Errors = append(c.rep.Errors, "temporal: "+err.Error())
	}
	// No workflow of the clusters may stay open (a rejoin or failover the nemesis's heal
	// waited for is over; give a late one a minute).
	for _, cl := range c.clusters {
		if tc == nil {
			break
		}
		deadline := time.Now().Add(60 * time.Second)
		for {
			d, err := tc.DescribeWorkflowExecution(ctx, workflows.WorkflowID(cl), "")
			if err != nil || d.GetWorkflowExecutionInfo().GetStatus() != enums.WORKFLOW_EXECUTION_STATUS_RUNNING {
				break
			}
			if time.Now().After(deadline) {
				c.rep.Stuck = append(c.rep.Stuck, fmt.Sprintf("%s (%s, started %s)", workflows.WorkflowID(cl),
					d.GetWorkflowExecutionInfo().GetType().GetName(), d.GetWorkflowExecutionInfo().GetStartTime().AsTime().Format(time.TimeOnly)))
				break
			}
			time.Sleep(500 * time.Millisecond)
		}
		c.listWorkflows(ctx, tc, cl)
	}
	// Every acknowledged write on every live member; the members agree both ways.
	for _, cl := range c.clusters {
		tp, err := c.kit.Topo.Read(ctx, cl)
		if err != nil {
			c.rep.Errors = append(c.rep.Errors, fmt.Sprintf("read %s: %v", cl, err))
			continue
		}
		for _, e := range tp.Evicted {
			c.rep.MemberProblems = append(c.rep.MemberProblems, fmt.Sprintf("%s: %s still evicted at the end (%s)", cl, e.Node.Name, e.Reason))
		}
		for _, wc := range c.clients {
			if wc.cluster != cl {
				continue
			}
			ids := wc.load.Acked()
			per, lost := c.kit.LostOnMembers(tp, ids, 30*time.Second)
			r := ClientReport{Name: wc.name, Cluster: cl, App: wc.app, Acked: len(ids), Failed: wc.load.Failures(), Lost: len(lost), LastError: wc.load.LastError()}
			if len(lost) > 0 {
				r.Note = fmt.Sprint(per)
			}
			if wc.node != "" {
				if at := c.losingSide(wc); !at.IsZero() {
					r.LosingSide = wc.load.AckedAfter(at)
				}
			}
			c.rep.Clients = append(c.rep.Clients, r)
			c.rep.Acked += r.Acked
			c.rep.Lost += r.Lost
			c.rep.LosingSide += r.LosingSide
		}
		cc, err := c.kit.Config.Cluster(cl)
		if err != nil {
			c.rep.Errors = append(c.rep.Errors, err.Error())
			continue
		}
		for _, p := range c.kit.MemberProblems(tp, cc.Acks, 20*time.Second) {
			c.rep.MemberProblems = append(c.rep.MemberProblems, cl+": "+p)
		}
	}
	// The detector fleet watches every cluster (a detector restarted late takes its locks
	// again within seconds).
	deadline := time.Now().Add(20 * time.Second)
	for {
		w, err := fleet.Watchers(ctx, c.kit.Consul, "baton/detectors", c.clusters)
		var missing []string
		for _, cl := range c.clusters {
			if err != nil || w[cl] == "" {
				missing = append(missing, cl)
			}
		}
		if len(missing) == 0 || time.Now().After(deadline) {
			c.rep.Unwatched = missing
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if pretendLost > 0 { // the deliberately broken check: proves the verdict fails
		c.rep.Pretended = true
		c.rep.Lost += pretendLost
		c.rep.Clients = append(c.rep.Clients, ClientReport{Name: "pretended (-pretend-lost)", Lost: pretendLost, Note: "not real"})
	}
	if tc != nil {
		tc.Close()
	}
}

// listWorkflows counts the cluster's workflows started during the run by type and outcome,
// and collects what failovers reported they may have left behind.
func (c *checker) listWorkflows(ctx context.Context, tc client.Client, cl string) {
	q := fmt.Sprintf("BatonCluster = '%s' AND StartTime > '%s'", cl, c.start.UTC().Format(time.RFC3339))
	var token []byte
	for {
		resp, err := tc.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Namespace: c.kit.Env["TEMPORAL_NAMESPACE"], Query: q, NextPageToken: token})
		if err != nil {
			c.rep.Errors = append(c.rep.Errors, fmt.Sprintf("list workflows of %s: %v", cl, err))
			return
		}
		for _, e := range resp.Executions {
			typ := e.GetType().GetName()
			outcome := e.GetStatus().String()
			run := tc.GetWorkflow(ctx, e.GetExecution().GetWorkflowId(), e.GetExecution().GetRunId())
			switch {
			case e.GetStatus() == enums.WORKFLOW_EXECUTION_STATUS_COMPLETED && typ != "RejoinNode":
				var res workflows.Result
				gctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				if run.Get(gctx, &res) == nil {
					outcome = res.Outcome
					for _, l := range res.LeftOut {
						c.rep.LeftOut = append(c.rep.LeftOut, fmt.Sprintf("%s %s %s->%s: %s", cl, typ, res.From, res.To, l))
					}
					for _, u := range res.RoutingUnverified {
						c.rep.Unverified = append(c.rep.Unverified, fmt.Sprintf("%s %s %s->%s: %s", cl, typ, res.From, res.To, u))
					}
				}
				cancel()
			case e.GetStatus() == enums.WORKFLOW_EXECUTION_STATUS_FAILED:
				gctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				err := run.Get(gctx, nil)
				cancel()
				c.rep.Failed = append(c.rep.Failed, fmt.Sprintf("%s %s %s run %s: %v", e.GetStartTime().AsTime().Format("15:04:05.000"), cl, typ, e.GetExecution().GetRunId(), rootMessage(err)))
			}
			c.rep.Workflows[typ+" "+outcome]++
		}
		if token = resp.NextPageToken; len(token) == 0 {
			return
		}
	}
}

// createSchema creates the load's table through the cluster's writer, retrying for 10 s
// (a failover may be settling from an earlier run).
func createSchema(db *sql.DB) error {
	var err error
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err = db.ExecContext(ctx, loadgen.Schema)
		cancel()
		if err == nil || time.Now().After(deadline) {
			return err
		}
	}
}

// rootMessage is the innermost message of a workflow's failure: the step that failed and why.
func rootMessage(err error) string {
	if err == nil {
		return "(no error reported)"
	}
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err.Error()
		}
		err = next
	}
}
