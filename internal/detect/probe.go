package detect

import (
	"context"
	"database/sql/driver"
	"errors"
	"net"
	"strconv"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/baton-db/baton/internal/mysqladmin"
)

// probe is a watcher's one connection to its primary (docs/runbook.md §4). Each probe is
// DO SLEEP(interval): mysqld itself waits out the interval and answers, so one round trip
// per interval proves that it runs queries, and since a read is always waiting, a crash
// (the connection closing) is seen at once. Nothing else is held open on the primary, and
// the detector needs no timer of its own per cluster.
type probe struct {
	connector       driver.Connector
	addr            string
	dialer          *net.Dialer
	gate            Gate
	interval, limit time.Duration // limit: how long a probe may take beyond the interval
	stmt            string
	conn            driver.Conn
	dialed, raw     net.Conn // raw is closed to cut a waiting read short when ctx ends
	unhook          func() bool
}

// Gate bounds the connections a detector sets up at once (detector.concurrent_handshakes).
// A TLS handshake costs CPU on both ends; thousands of watchers starting, or reconnecting
// after a stall, would otherwise make the handshakes time out on a saturated machine and be
// retried at once, which feeds the stall. The TCP connect is made before a slot is taken,
// so a silent host (a zone outage) never holds one. Nil: no bound.
type Gate chan struct{}

// NewGate returns a Gate of n slots (nil when n < 1).
func NewGate(n int) Gate {
	if n < 1 {
		return nil
	}
	return make(Gate, n)
}

func (g Gate) enter(ctx context.Context) error {
	if g == nil {
		return nil
	}
	select {
	case g <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (g Gate) leave() {
	if g != nil {
		<-g
	}
}

func newProbe(addr string, o mysqladmin.Options, interval, timeout time.Duration, gate Gate) (*probe, error) {
	p := &probe{addr: addr, dialer: mysqladmin.Dialer(o.SourceAddr), gate: gate, interval: interval, limit: timeout,
		stmt: "DO SLEEP(" + strconv.FormatFloat(interval.Seconds(), 'f', -1, 64) + ")"}
	cfg := o.Driver(addr)
	cfg.ReadTimeout, cfg.WriteTimeout = interval+timeout, timeout
	cfg.DialFunc = func(context.Context, string, string) (net.Conn, error) {
		if p.dialed == nil {
			return nil, errors.New("probe: no TCP connection to hand over")
		}
		return p.dialed, nil
	}
	c, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, err
	}
	p.connector = c
	return p, nil
}

// open connects: the TCP connect, then (holding a slot of the gate) the MySQL and TLS
// handshake, each within the probe timeout. timedOut: a step waited out its timeout.
func (p *probe) open(ctx context.Context) (timedOut bool, err error) {
	p.close()
	timed := func(err error, start time.Time) bool {
		return isTimeout(err) || time.Since(start) >= p.limit*9/10
	}
	start := time.Now()
	dctx, cancel := context.WithTimeout(ctx, p.limit)
	p.dialed, err = p.dialer.DialContext(dctx, "tcp", p.addr)
	cancel()
	if err != nil {
		return timed(err, start), err
	}
	if err := p.gate.enter(ctx); err != nil {
		_ = p.dialed.Close()
		return false, err
	}
	defer p.gate.leave()
	start = time.Now()
	hctx, cancel := context.WithTimeout(ctx, p.limit)
	defer cancel()
	c, err := p.connector.Connect(hctx)
	if err != nil {
		_ = p.dialed.Close()
		return timed(err, start), err
	}
	p.conn, p.raw = c, p.dialed
	raw := p.raw
	p.unhook = context.AfterFunc(ctx, func() { _ = raw.Close() })
	return false, nil
}

// run makes one probe, connecting first if there is no connection. dropped: a session
// that was up broke; timedOut: the probe waited out its limit (a silent host).
func (p *probe) run(ctx context.Context) (dropped, timedOut bool, err error) {
	if p.conn == nil {
		if timedOut, err = p.open(ctx); err != nil {
			return false, timedOut, err
		}
	}
	start := time.Now()
	_, err = p.conn.(driver.ExecerContext).ExecContext(context.Background(), p.stmt, nil)
	took := time.Since(start)
	if err != nil {
		p.close()
		// The driver reports a read cut short by its deadline as "invalid connection": the
		// time the probe took says what happened.
		timedOut = isTimeout(err) || took >= (p.interval+p.limit)*9/10
		return !timedOut, timedOut, err
	}
	if took < p.interval/2 {
		sleep(ctx, p.interval-took) // the sleep was cut short (KILL QUERY): do not spin
	}
	return false, false, nil
}

func (p *probe) close() {
	if p.unhook != nil {
		p.unhook()
		p.unhook = nil
	}
	if p.conn != nil {
		_ = p.conn.Close()
		p.conn, p.raw = nil, nil
	}
}

// isTimeout tells a probe that waited out its timeout (a silent host) from one refused at once.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}
