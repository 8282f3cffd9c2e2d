package main

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/baton-db/baton/internal/loadgen"
)

// A trial's clients: the load generator Baton's tests use, and a client set up as an
// application would be (database/sql and go-sql-driver, 4 pooled connections kept open,
// a 0.5 s dial timeout, 2 s read and write timeouts), both writing 200 inserts/s through
// the local writer port side by side.
type clients struct {
	loadgen, app     *loadgen.Load
	loadgenDB, appDB *sql.DB
}

func startClients() *clients {
	s := secrets()
	c := &clients{}
	c.loadgenDB = openDB(env["LOCAL_WRITER_ADDR"], s["MYSQL_APP_USER"], s["MYSQL_APP_PASSWORD"])
	c.loadgenDB.SetMaxOpenConns(16)
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.Net, cfg.Addr = s["MYSQL_APP_USER"], s["MYSQL_APP_PASSWORD"], "tcp", env["LOCAL_WRITER_ADDR"]
	cfg.Timeout, cfg.ReadTimeout, cfg.WriteTimeout = 500*time.Millisecond, 2*time.Second, 2*time.Second
	conn, _ := mysql.NewConnector(cfg)
	c.appDB = sql.OpenDB(conn)
	c.appDB.SetMaxOpenConns(4)
	c.appDB.SetMaxIdleConns(4)
	c.loadgen, c.app = loadgen.Start(c.loadgenDB, 200), loadgen.Start(c.appDB, 200)
	return c
}

func (c *clients) stop() {
	c.loadgen.Stop()
	c.app.Stop()
	c.loadgenDB.Close()
	c.appDB.Close()
}

// lost counts both clients' acked writes missing on primary.
func (c *clients) lost(primary string) (n, acked int) {
	return lost(c.loadgen, primary) + lost(c.app, primary), len(c.loadgen.Acked()) + len(c.app.Acked())
}

// haproxyWatch polls one HAProxy's runtime API every 10 ms and records when each writer
// server address (IP) was first seen UP in the running worker.
type haproxyWatch struct {
	sock    string
	mu      sync.Mutex
	firstUp map[string]time.Time
	cancel  context.CancelFunc
	done    chan struct{}
}

func watchHAProxy(name string) *haproxyWatch {
	ctx, cancel := context.WithCancel(context.Background())
	w := &haproxyWatch{sock: filepath.Join(env["SANDBOX_STATE"], "haproxy-"+name, "admin.sock"), firstUp: map[string]time.Time{},
		cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for ctx.Err() == nil {
			now := time.Now()
			for _, addr := range w.up() {
				w.mu.Lock()
				if _, ok := w.firstUp[addr]; !ok {
					w.firstUp[addr] = now
				}
				w.mu.Unlock()
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	return w
}

// up returns the addresses of the writer servers the running worker has UP.
func (w *haproxyWatch) up() []string {
	c, err := net.DialTimeout("unix", w.sock, time.Second)
	if err != nil {
		return nil
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("show servers state writer_demo\n")); err != nil { // demo's writer backend
		return nil
	}
	var out []string
	sc := bufio.NewScanner(c)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		// be_id be_name srv_id srv_name srv_addr srv_op_state ...; op state 2 is running.
		if len(f) > 5 && f[1] == "writer_demo" && f[5] == "2" {
			out = append(out, f[4])
		}
	}
	return out
}

func (w *haproxyWatch) stop() { w.cancel(); <-w.done }

func (w *haproxyWatch) upAt(addr string) time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.firstUp[addr]
}

// serverProbe opens a fresh connection through the local writer port every 20 ms and records
// when each server_id first answered: the local HAProxy's view, as a new connection sees it.
type serverProbe struct {
	mu     sync.Mutex
	first  map[uint32]time.Time
	cancel context.CancelFunc
	done   chan struct{}
}

func probeLocalWriter() *serverProbe {
	s := secrets()
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.Net, cfg.Addr = s["MYSQL_APP_USER"], s["MYSQL_APP_PASSWORD"], "tcp", env["LOCAL_WRITER_ADDR"]
	cfg.Timeout, cfg.ReadTimeout = 500*time.Millisecond, time.Second
	ctx, cancel := context.WithCancel(context.Background())
	p := &serverProbe{first: map[uint32]time.Time{}, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		conn, _ := mysql.NewConnector(cfg)
		db := sql.OpenDB(conn)
		db.SetMaxIdleConns(0) // every probe dials anew
		defer db.Close()
		for ctx.Err() == nil {
			var id uint32
			if err := db.QueryRowContext(ctx, "SELECT @@server_id").Scan(&id); err == nil {
				p.mu.Lock()
				if _, ok := p.first[id]; !ok {
					p.first[id] = time.Now()
				}
				p.mu.Unlock()
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	return p
}

func (p *serverProbe) stop() { p.cancel(); <-p.done }

func (p *serverProbe) at(id uint32) time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.first[id]
}

// timeline holds each stage's offset from the trial's origin (the crash, the cut, or the
// switchover's demotion), one entry per trial.
type timeline struct {
	names  []string
	stages map[string]stats
}

func newTimeline(names ...string) *timeline {
	return &timeline{names: names, stages: map[string]stats{}}
}

// add records stage at t relative to origin; a zero t (never seen) is left out and counted.
func (tl *timeline) add(stage string, origin, t time.Time) {
	if t.IsZero() {
		return
	}
	tl.stages[stage] = append(tl.stages[stage], t.Sub(origin))
}

func (tl *timeline) print(title string) {
	fmt.Printf("| %s | p50 | p95 | max | trials |\n|---|---|---|---|---|\n", title)
	for _, n := range tl.names {
		fmt.Println(tl.stages[n].row(n))
	}
	fmt.Println()
}
