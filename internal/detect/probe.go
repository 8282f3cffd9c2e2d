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
	interval, limit time.Duration // limit: how long a probe may take beyond the interval
	stmt            string
	conn            driver.Conn
	dialed, raw     net.Conn // raw is closed to cut a waiting read short when ctx ends
	unhook          func() bool
}

func newProbe(addr string, o mysqladmin.Options, interval, timeout time.Duration) (*probe, error) {
	p := &probe{interval: interval, limit: timeout,
		stmt: "DO SLEEP(" + strconv.FormatFloat(interval.Seconds(), 'f', -1, 64) + ")"}
	cfg := o.Driver(addr)
	cfg.ReadTimeout, cfg.WriteTimeout = interval+timeout, timeout
	d := mysqladmin.Dialer(o.SourceAddr)
	cfg.DialFunc = func(ctx context.Context, _, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, "tcp", addr)
		p.dialed = c
		return c, err
	}
	c, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, err
	}
	p.connector = c
	return p, nil
}

// open connects, within the probe timeout.
func (p *probe) open(ctx context.Context) error {
	p.close()
	cctx, cancel := context.WithTimeout(ctx, p.limit)
	defer cancel()
	c, err := p.connector.Connect(cctx)
	if err != nil {
		return err
	}
	p.conn, p.raw = c, p.dialed
	raw := p.raw
	p.unhook = context.AfterFunc(ctx, func() { _ = raw.Close() })
	return nil
}

// run makes one probe, connecting first if there is no connection. dropped: a session
// that was up broke; timedOut: the probe waited out its limit (a silent host).
func (p *probe) run(ctx context.Context) (dropped, timedOut bool, err error) {
	start := time.Now()
	if p.conn == nil {
		if err = p.open(ctx); err != nil {
			return false, isTimeout(err) || time.Since(start) >= p.limit*9/10, err
		}
		start = time.Now()
	}
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
