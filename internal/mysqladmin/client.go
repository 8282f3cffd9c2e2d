// Package mysqladmin runs administrative statements against one MySQL or MariaDB server,
// in the dialect of its flavour.
package mysqladmin

import (
	"context"
	"crypto/tls"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/baton-db/baton/internal/flavor"
)

// Client talks to one server.
type Client struct {
	Addr   string
	Flavor flavor.Flavor
	db     *sql.DB
	opts   Options
}

// Options are the connection settings shared by every client in a Pool.
type Options struct {
	User, Password string
	ConnectTimeout time.Duration
	ReadTimeout    time.Duration
	// TLS, if set, encrypts every connection (see internal/tlsconf).
	TLS *tls.Config
	// SourceAddr, if set, is the local address connections come from.
	SourceAddr string
}

// Driver returns the driver configuration for a connection to addr.
func (o Options) Driver(addr string) *mysql.Config {
	c := mysql.NewConfig()
	c.User, c.Passwd, c.Net, c.Addr = o.User, o.Password, Net(o.SourceAddr), addr
	c.Timeout, c.ReadTimeout, c.WriteTimeout = o.ConnectTimeout, o.ReadTimeout, o.ReadTimeout
	if o.TLS != nil {
		c.TLS = o.TLS.Clone()
		if c.TLS.ServerName == "" { // verify_identity: the certificate names the host dialled
			c.TLS.ServerName, _, _ = net.SplitHostPort(addr)
		}
	}
	return c
}

// OpenDB returns a database handle for addr. No connection is made until first use.
func (o Options) OpenDB(addr string) (*sql.DB, error) {
	c := o.Driver(addr)
	c.InterpolateParams = true
	conn, err := mysql.NewConnector(c)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", addr, err)
	}
	return sql.OpenDB(conn), nil
}

// Open returns a client for addr. No connection is made until first use.
func Open(addr string, f flavor.Flavor, o Options) (*Client, error) {
	db, err := o.OpenDB(addr)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(4)
	db.SetMaxIdleConns(2)
	db.SetConnMaxIdleTime(30 * time.Second)
	return &Client{Addr: addr, Flavor: f, db: db, opts: o}, nil
}

// Dialect is the client's flavour.
func (c *Client) Dialect() flavor.Flavor { return c.Flavor }

// Close releases the client's connections.
func (c *Client) Close() error { return c.db.Close() }

// DB exposes the pool for callers that need plain queries.
func (c *Client) DB() *sql.DB { return c.db }

func (c *Client) exec(ctx context.Context, stmts ...string) error {
	for _, s := range stmts {
		if _, err := c.db.ExecContext(ctx, s); err != nil {
			return redactErr(s, c.Addr, err)
		}
	}
	return nil
}

// redact hides passwords in a statement before it reaches an error or a log line. A
// password literal is read to its real end (quotes, doubled quotes, backslash escapes,
// commas), not to the next comma.
func redact(stmt string) string {
	out, _ := redactValues(stmt)
	return out
}

var passwordKeys = []string{"MASTER_PASSWORD", "SOURCE_PASSWORD", "IDENTIFIED BY"}

// redactValues returns stmt with every password literal replaced, and the passwords (as
// written and unescaped), so an error that echoes one can be scrubbed too.
func redactValues(stmt string) (string, []string) {
	var secrets []string
	upper := strings.ToUpper(stmt)
	for _, k := range passwordKeys {
		from := 0
		for {
			i := strings.Index(upper[from:], k)
			if i < 0 {
				break
			}
			start := from + i + len(k)
			for start < len(stmt) && (stmt[start] == ' ' || stmt[start] == '=') {
				start++
			}
			end, raw, val := literalEnd(stmt, start)
			secrets = append(secrets, raw, val)
			stmt = stmt[:start] + "'***'" + stmt[end:]
			upper = strings.ToUpper(stmt)
			from = start + len("'***'")
		}
	}
	return stmt, secrets
}

// literalEnd reads the SQL literal at stmt[i:] and returns where it ends, its text inside
// the quotes and its unescaped value. An unquoted value ends at a comma or a space.
func literalEnd(stmt string, i int) (end int, raw, val string) {
	if i >= len(stmt) || (stmt[i] != '\'' && stmt[i] != '"') {
		j := strings.IndexAny(stmt[i:], ", ")
		if j < 0 {
			j = len(stmt) - i
		}
		return i + j, stmt[i : i+j], stmt[i : i+j]
	}
	q := stmt[i]
	var b strings.Builder
	for j := i + 1; j < len(stmt); j++ {
		switch {
		case stmt[j] == '\\' && j+1 < len(stmt):
			j++
			b.WriteByte(stmt[j])
		case stmt[j] == q && j+1 < len(stmt) && stmt[j+1] == q:
			j++
			b.WriteByte(q)
		case stmt[j] == q:
			return j + 1, stmt[i+1 : j], b.String()
		default:
			b.WriteByte(stmt[j])
		}
	}
	return len(stmt), stmt[i+1:], b.String() // unterminated: hide the rest
}

// redactErr reports a failed statement without its passwords. A server error that echoes
// a password (a syntax error quotes the statement) is rewritten, not wrapped, so the raw
// text cannot reach a workflow history through the error chain.
func redactErr(stmt, addr string, err error) error {
	safe, secrets := redactValues(stmt)
	msg := err.Error()
	leaked := false
	for _, s := range secrets {
		if len(s) >= 3 && strings.Contains(msg, s) {
			msg, leaked = strings.ReplaceAll(msg, s, "***"), true
		}
	}
	if leaked {
		return fmt.Errorf("%s on %s: %s", safe, addr, msg)
	}
	return fmt.Errorf("%s on %s: %w", safe, addr, err)
}

// Ping checks that the server answers.
func (c *Client) Ping(ctx context.Context) error { return c.db.PingContext(ctx) }

// ServerID returns the global @@server_id (a session keeps the one it connected with).
func (c *Client) ServerID(ctx context.Context) (uint32, error) {
	var id uint32
	err := c.db.QueryRowContext(ctx, "SELECT @@GLOBAL.server_id").Scan(&id)
	return id, err
}

// SetServerID sets the global @@server_id until the next restart (the config file keeps the
// real one). Sessions that are open keep theirs.
func (c *Client) SetServerID(ctx context.Context, id uint32) error {
	return c.exec(ctx, fmt.Sprintf("SET GLOBAL server_id = %d", id))
}

// ReplicaStatus is the part of SHOW REPLICA STATUS that Baton uses.
type ReplicaStatus struct {
	SourceHost        string
	SourcePort        int
	IORunning         string // Yes, No, Connecting
	SQLRunning        bool
	IOError, SQLError string
	SecondsBehind     *int64
	Received          string
	Raw               map[string]string
}

// IOConnected reports whether the IO thread is connected to its source.
func (r *ReplicaStatus) IOConnected() bool { return r.IORunning == "Yes" }

// ReplicaStatus returns nil, nil when the server is not a replica.
func (c *Client) ReplicaStatus(ctx context.Context) (*ReplicaStatus, error) {
	rows, err := c.db.QueryContext(ctx, c.Flavor.ReplicaStatus())
	if err != nil {
		return nil, fmt.Errorf("replica status of %s: %w", c.Addr, err)
	}
	defer rows.Close()
	all, err := scanAll(rows)
	if err != nil || len(all) == 0 {
		return nil, err
	}
	raw := all[0]
	return parseStatus(c.Flavor.Columns(), raw), nil
}

// scanAll reads every row of a result whose columns vary by flavour and version, as
// column name to value.
func scanAll(rows *sql.Rows) ([]map[string]string, error) {
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	var out []map[string]string
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		row := make(map[string]string, len(cols))
		for i, col := range cols {
			row[col] = vals[i].String
		}
		out = append(out, row)
	}
	return out, rows.Err()
}

func parseStatus(k flavor.StatusColumns, raw map[string]string) *ReplicaStatus {
	st := &ReplicaStatus{
		SourceHost: raw[k.SourceHost], IORunning: raw[k.IORunning], SQLRunning: raw[k.SQLRunning] == "Yes",
		IOError: raw[k.IOError], SQLError: raw[k.SQLError], Received: raw[k.Received], Raw: raw,
	}
	st.SourcePort, _ = strconv.Atoi(raw[k.SourcePort])
	if v, err := strconv.ParseInt(raw[k.Lag], 10, 64); err == nil {
		st.SecondsBehind = &v
	}
	return st
}

// Executed returns the executed GTIDs as the flavour reports them.
func (c *Client) Executed(ctx context.Context) (string, error) {
	var s string
	if err := c.db.QueryRowContext(ctx, c.Flavor.Executed()).Scan(&s); err != nil {
		return "", fmt.Errorf("executed GTIDs of %s: %w", c.Addr, err)
	}
	return s, nil
}

// ErrWaitTimeout means the server did not reach the GTIDs in time.
var ErrWaitTimeout = errors.New("timed out waiting for GTIDs")

// WaitExecuted waits until the server has applied gtids, for at most timeout. A wait longer
// than the pool's read timeout runs on a connection of its own whose read deadline is the
// wait's, so timeout alone bounds it.
func (c *Client) WaitExecuted(ctx context.Context, gtids string, timeout time.Duration) error {
	db := c.db
	if c.opts.ReadTimeout > 0 && timeout+time.Second > c.opts.ReadTimeout {
		o := c.opts
		o.ReadTimeout = timeout + 5*time.Second
		own, err := o.OpenDB(c.Addr)
		if err != nil {
			return err
		}
		defer own.Close()
		db = own
	}
	var r sql.NullInt64
	q := c.Flavor.WaitExecuted(gtids, timeout.Seconds())
	if err := db.QueryRowContext(ctx, q).Scan(&r); err != nil {
		return fmt.Errorf("wait for %s on %s: %w", gtids, c.Addr, err)
	}
	if !r.Valid || r.Int64 != 0 {
		return fmt.Errorf("%s did not apply %s within %s: %w", c.Addr, gtids, timeout, ErrWaitTimeout)
	}
	return nil
}

// ReadOnly reports whether writes from unprivileged users are refused.
func (c *Client) ReadOnly(ctx context.Context) (readOnly, superReadOnly bool, err error) {
	err = c.db.QueryRowContext(ctx, c.Flavor.ReadOnly()).Scan(&readOnly, &superReadOnly)
	return
}

// SetReadOnly switches read_only (and super_read_only where the flavour has it).
func (c *Client) SetReadOnly(ctx context.Context, on bool) error {
	return c.exec(ctx, c.Flavor.SetReadOnly(on)...)
}

// SemiSync is the server's semi-sync state.
type SemiSync struct {
	PrimaryEnabled, ReplicaEnabled bool
	Clients                        int
}

func (c *Client) SemiSync(ctx context.Context) (SemiSync, error) {
	var s SemiSync
	var clients sql.NullInt64
	err := c.db.QueryRowContext(ctx, c.Flavor.SemiSync()).Scan(&s.PrimaryEnabled, &s.ReplicaEnabled, &clients)
	s.Clients = int(clients.Int64)
	return s, err
}

// PrimaryAcks is what a primary does with acknowledgements.
type PrimaryAcks struct {
	Enabled   bool   // it waits for acknowledgements
	TimeoutMS uint64 // how long before it falls back to asynchronous
	Active    bool   // it has not fallen back
	Waiting   int    // sessions waiting for an acknowledgement now
}

func (c *Client) PrimaryAcks(ctx context.Context) (PrimaryAcks, error) {
	var p PrimaryAcks
	var status sql.NullString
	var waiting sql.NullInt64
	err := c.db.QueryRowContext(ctx, c.Flavor.PrimaryAcks()).Scan(&p.Enabled, &p.TimeoutMS, &status, &waiting)
	p.Active, p.Waiting = status.String == "ON", int(waiting.Int64)
	return p, err
}

// SetSemiSyncTimeout sets how long the primary waits for an acknowledgement.
func (c *Client) SetSemiSyncTimeout(ctx context.Context, ms uint64) error {
	return c.exec(ctx, c.Flavor.SetSemiSyncTimeout(ms)...)
}

// SetSemiSyncPrimary switches the primary side of semi-sync.
func (c *Client) SetSemiSyncPrimary(ctx context.Context, on bool) error {
	return c.exec(ctx, c.Flavor.SetSemiSyncPrimary(on)...)
}

// PointAt makes the server replicate from src with GTID auto-position; acks says whether
// it acknowledges src's commits (semi-sync).
func (c *Client) PointAt(ctx context.Context, src flavor.Source, wasPrimary, acks bool) error {
	if err := c.exec(ctx, c.Flavor.StopReplica()); err != nil {
		return err
	}
	if err := c.exec(ctx, c.Flavor.SetSemiSyncReplica(acks)...); err != nil {
		return err
	}
	if wasPrimary {
		if err := c.exec(ctx, c.Flavor.PrepareReplica()...); err != nil {
			return err
		}
	}
	return c.exec(ctx, c.Flavor.ChangeSource(src), c.Flavor.StartReplica())
}

// SetAcks makes a running replica acknowledge its source's commits (semi-sync) or not; the
// IO thread is restarted only when that changes.
func (c *Client) SetAcks(ctx context.Context, acks bool) error {
	s, err := c.SemiSync(ctx)
	if err != nil || s.ReplicaEnabled == acks {
		return err
	}
	return c.exec(ctx, append(c.Flavor.SetSemiSyncReplica(acks), c.Flavor.StopReceiving(), c.Flavor.StartReplica())...)
}

// StartReplica starts both replication threads (nothing happens when they run).
func (c *Client) StartReplica(ctx context.Context) error {
	return c.exec(ctx, c.Flavor.StartReplica())
}

// StopReceiving stops the IO thread, waiting for it to end; the SQL thread goes on
// applying what arrived.
func (c *Client) StopReceiving(ctx context.Context) error {
	return c.exec(ctx, c.Flavor.StopReceiving())
}

// RestartReplica starts replication again after CutReceiving: the STOP waits for a killed
// IO thread that has not ended yet, which a START alone would take for running.
func (c *Client) RestartReplica(ctx context.Context) error {
	return c.exec(ctx, c.Flavor.StopReceiving(), c.Flavor.StartReplica())
}

// StopReplica stops both replication threads: what the server has executed stays put.
func (c *Client) StopReplica(ctx context.Context) error {
	return c.exec(ctx, c.Flavor.StopReplica())
}

// CutReceiving kills the IO thread: its connection to the source is shut at once, so it
// receives, and acknowledges, nothing more, and the SQL thread goes on applying what
// arrived. The thread itself may take a while longer to end (a semi-sync replica first
// kills its dump thread on the source over a new connection, which waits out
// rpl_semi_sync_slave_kill_conn_timeout when the source is silent); a later STOP waits for
// that. Every acknowledgement it sent left after its event was in the relay log, and none
// can leave once the KILL has returned, so the relay log read after this call holds every
// write it acknowledged.
func (c *Client) CutReceiving(ctx context.Context) error {
	rows, err := c.db.QueryContext(ctx, c.Flavor.ReceiverThreads())
	if err != nil {
		return err
	}
	var ids []uint64
	for rows.Next() {
		var id uint64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return err
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, id := range ids {
		if err := c.Kill(ctx, id); err != nil {
			return err
		}
	}
	return nil
}

// StopAndResetReplication turns a replica into a stand-alone server.
func (c *Client) StopAndResetReplication(ctx context.Context) error {
	return c.exec(ctx, c.Flavor.StopReplica(), c.Flavor.ResetReplica())
}

// Kill ends a client connection; a connection that is already gone is not an error.
func (c *Client) Kill(ctx context.Context, id uint64) error {
	_, err := c.db.ExecContext(ctx, fmt.Sprintf("KILL CONNECTION %d", id))
	var me *mysql.MySQLError
	if errors.As(err, &me) && me.Number == 1094 { // unknown thread id
		return nil
	}
	return err
}

var (
	netMu   sync.Mutex
	netDone = map[string]bool{}
)

// Net returns the driver network name that dials from source ("tcp" when source is empty),
// registering it on first use. Tests cut single links with iptables by source address.
func Net(source string) string {
	if source == "" {
		return "tcp"
	}
	name := "tcp-from-" + source
	netMu.Lock()
	defer netMu.Unlock()
	if !netDone[name] {
		d := Dialer(source)
		mysql.RegisterDialContext(name, func(ctx context.Context, addr string) (net.Conn, error) {
			return d.DialContext(ctx, "tcp", addr)
		})
		netDone[name] = true
	}
	return name
}

// Dialer dials from source (any local address when empty).
func Dialer(source string) *net.Dialer {
	if source == "" {
		return &net.Dialer{}
	}
	return &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(source)}}
}
