package loadgen

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// A fake database/sql driver: one table of ids per DSN, the two statements loadgen sends,
// and hooks to hold, fail or change them. Nothing else is accepted.

const (
	insertSQL = "INSERT INTO " + Table + " (id, note) VALUES (?, 'load')"
	selectSQL = "SELECT id FROM " + Table + " WHERE id >= ?"
)

var errInjected = errors.New("injected insert failure")

// gate holds the inserts that reach it until ch is closed or their context ends.
type gate struct {
	ch      chan struct{}
	waiting int
}

type fakeDB struct {
	mu           sync.Mutex
	table        map[int64]bool
	failed       map[int64]bool         // inserts that returned errInjected
	fail         func(id int64) bool    // which inserts fail
	gate         *gate                  // nil: inserts do not wait
	selects      int                    // SELECTs served
	onSelect     func(f *fakeDB, n int) // called (locked) before the n-th SELECT is served
	queryErr     error                  // every SELECT fails with it
	rowsErr      error                  // the result of a SELECT fails with it...
	rowsErrAfter int                    // ...after this many rows
}

func newFakeDB(ids ...int64) *fakeDB {
	f := &fakeDB{table: map[int64]bool{}, failed: map[int64]bool{}}
	for _, id := range ids {
		f.table[id] = true
	}
	return f
}

var (
	fakesMu sync.Mutex
	fakes   = map[string]*fakeDB{}
)

func init() { sql.Register("loadgenfake", fakeDriver{}) }

// open returns a pool on f, as an application's would be.
func (f *fakeDB) open(t *testing.T) *sql.DB {
	t.Helper()
	fakesMu.Lock()
	fakes[t.Name()] = f
	fakesMu.Unlock()
	db, err := sql.Open("loadgenfake", t.Name())
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(16)
	t.Cleanup(func() {
		db.Close()
		fakesMu.Lock()
		delete(fakes, t.Name())
		fakesMu.Unlock()
	})
	return db
}

func (f *fakeDB) insert(ctx context.Context, id int64) error {
	f.mu.Lock()
	g := f.gate
	if g != nil {
		g.waiting++
	}
	f.mu.Unlock()
	if g != nil {
		var err error
		select {
		case <-g.ch:
		case <-ctx.Done():
			err = ctx.Err() // not written
		}
		f.mu.Lock()
		g.waiting--
		f.mu.Unlock()
		if err != nil {
			return err
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil && f.fail(id) {
		f.failed[id] = true
		return errInjected
	}
	f.table[id] = true
	return nil
}

func (f *fakeDB) waiting(g *gate) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return g.waiting
}

func (f *fakeDB) setGate(g *gate) {
	f.mu.Lock()
	f.gate = g
	f.mu.Unlock()
}

func (f *fakeDB) snapshot() (table, failed []int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for id := range f.table {
		table = append(table, id)
	}
	for id := range f.failed {
		failed = append(failed, id)
	}
	slices.Sort(table)
	slices.Sort(failed)
	return table, failed
}

type fakeDriver struct{}

func (fakeDriver) Open(dsn string) (driver.Conn, error) {
	fakesMu.Lock()
	defer fakesMu.Unlock()
	f, ok := fakes[dsn]
	if !ok {
		return nil, fmt.Errorf("fake: no database %q", dsn)
	}
	return fakeConn{f}, nil
}

type fakeConn struct{ f *fakeDB }

func (fakeConn) Prepare(q string) (driver.Stmt, error) { return nil, fmt.Errorf("fake: prepare %q", q) }
func (fakeConn) Close() error                          { return nil }
func (fakeConn) Begin() (driver.Tx, error)             { return nil, errors.New("fake: no transactions") }

func (c fakeConn) ExecContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Result, error) {
	if q != insertSQL || len(args) != 1 {
		return nil, fmt.Errorf("fake: unexpected statement %q %v", q, args)
	}
	if err := c.f.insert(ctx, args[0].Value.(int64)); err != nil {
		return nil, err
	}
	return driver.RowsAffected(1), nil
}

func (c fakeConn) QueryContext(_ context.Context, q string, args []driver.NamedValue) (driver.Rows, error) {
	if q != selectSQL || len(args) != 1 {
		return nil, fmt.Errorf("fake: unexpected query %q %v", q, args)
	}
	lo := args[0].Value.(int64)
	f := c.f
	f.mu.Lock()
	defer f.mu.Unlock()
	f.selects++
	if f.onSelect != nil {
		f.onSelect(f, f.selects)
	}
	if f.queryErr != nil {
		return nil, f.queryErr
	}
	r := &fakeRows{err: f.rowsErr, errAfter: f.rowsErrAfter}
	for id := range f.table {
		if id >= lo {
			r.ids = append(r.ids, id)
		}
	}
	slices.Sort(r.ids)
	return r, nil
}

type fakeRows struct {
	ids      []int64
	next     int
	err      error
	errAfter int
}

func (*fakeRows) Columns() []string { return []string{"id"} }
func (*fakeRows) Close() error      { return nil }
func (r *fakeRows) Next(dest []driver.Value) error {
	if r.err != nil && r.next == r.errAfter {
		return r.err
	}
	if r.next == len(r.ids) {
		return io.EOF
	}
	dest[0] = r.ids[r.next]
	r.next++
	return nil
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
	}
}

// An id is acknowledged only once its INSERT returned success: never while it is in flight,
// never when it failed, and an insert that Stop interrupts is neither acknowledged nor a
// failure. Acked is then exactly what the table holds.
func TestAckedOnlyWhatTheInsertConfirmed(t *testing.T) {
	const writers = 8 // as Start runs
	f := newFakeDB()
	f.fail = func(id int64) bool { return id%3 == 0 }
	hold := &gate{ch: make(chan struct{})}
	f.setGate(hold)
	l := Start(f.open(t), 800)
	defer l.Stop()

	// Every writer has an INSERT in flight: nothing is acknowledged, nothing failed yet.
	waitFor(t, "every writer waits on its insert", func() bool { return f.waiting(hold) == writers })
	if got := l.Acked(); len(got) != 0 {
		t.Fatalf("acknowledged %v before any INSERT returned", got)
	}
	if n := l.Failures(); n != 0 {
		t.Fatalf("%d failures before any INSERT returned", n)
	}

	// Let them through; a third of the ids fail.
	f.setGate(nil)
	close(hold.ch)
	waitFor(t, "some writes succeeded and some failed", func() bool { return len(l.Acked()) >= 30 && l.Failures() >= 10 })

	// Hold every writer again: then every result so far has been booked.
	end := &gate{ch: make(chan struct{})}
	f.setGate(end)
	waitFor(t, "every writer waits on its next insert", func() bool { return f.waiting(end) == writers })
	check := func(when string) {
		t.Helper()
		table, failed := f.snapshot()
		acked := l.Acked()
		slices.Sort(acked)
		if !slices.Equal(acked, table) {
			t.Fatalf("%s: acknowledged %d ids %v, the table holds %d %v", when, len(acked), acked, len(table), table)
		}
		if n := l.Failures(); n != int64(len(failed)) {
			t.Fatalf("%s: %d failures counted, %d inserts failed", when, n, len(failed))
		}
		for _, id := range failed {
			if _, ok := slices.BinarySearch(acked, id); ok {
				t.Fatalf("%s: failed insert %d acknowledged", when, id)
			}
		}
		l.mu.Lock()
		defer l.mu.Unlock()
		if len(l.ackTime) != len(l.acked) {
			t.Fatalf("%s: %d acknowledgement times for %d ids", when, len(l.ackTime), len(l.acked))
		}
	}
	check("running")
	if s := l.String(); !strings.Contains(s, errInjected.Error()) {
		t.Fatalf("String() does not give the last error: %s", s)
	}

	// Stop interrupts the held inserts: they are not written, acknowledged or failures.
	l.Stop()
	check("stopped")
}

// Missing reports exactly the ids the table lacks, in the order given, whatever else the
// table holds (rows below the smallest id, rows nobody asked about).
func TestMissing(t *testing.T) {
	many := make([]int64, 10_000)
	for i := range many {
		many[i] = 1_000_000 + int64(i)*7
	}
	without := func(ids []int64, drop ...int64) []int64 {
		return slices.DeleteFunc(slices.Clone(ids), func(id int64) bool { return slices.Contains(drop, id) })
	}
	for _, c := range []struct {
		name  string
		table []int64
		ids   []int64
		want  []int64
	}{
		{"no ids", []int64{1, 2}, nil, nil},
		{"none missing", []int64{5, 100, 101, 102, 103}, []int64{101, 103, 102}, nil},
		{"some missing, in the order given", []int64{5, 101, 102, 105, 900}, []int64{105, 104, 101, 103, 102}, []int64{104, 103}},
		{"the smallest id is not the first", []int64{100, 200}, []int64{200, 100}, nil},
		{"the smallest id missing", []int64{101, 102}, []int64{102, 100, 101}, []int64{100}},
		{"all missing", []int64{1, 2, 3}, []int64{10, 11}, []int64{10, 11}},
		{"empty table", nil, []int64{10, 11}, []int64{10, 11}},
		{"10000 ids, none missing", many, many, nil},
		{"10000 ids, first, last and one between missing", without(many, many[0], many[5000], many[9999]), many,
			[]int64{many[0], many[5000], many[9999]}},
	} {
		t.Run(c.name, func(t *testing.T) {
			db := newFakeDB(c.table...).open(t)
			got, err := Missing(context.Background(), db, c.ids, 0)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, c.want) {
				t.Fatalf("missing %v, want %v", got, c.want)
			}
		})
	}
}

// Missing waits up to its limit for rows that replication has yet to deliver, and no longer.
func TestMissingWaitsForReplication(t *testing.T) {
	t.Run("rows arrive on the third read", func(t *testing.T) {
		f := newFakeDB(10, 11)
		f.onSelect = func(f *fakeDB, n int) {
			if n == 3 {
				f.table[12], f.table[13] = true, true
			}
		}
		got, err := Missing(context.Background(), f.open(t), []int64{10, 11, 12, 13}, 10*time.Second)
		if err != nil || got != nil || f.selects != 3 {
			t.Fatalf("got %v %v after %d reads, want nothing missing after 3", got, err, f.selects)
		}
	})
	t.Run("a row never arrives", func(t *testing.T) {
		f := newFakeDB(10, 11)
		start := time.Now()
		got, err := Missing(context.Background(), f.open(t), []int64{10, 11, 12}, 300*time.Millisecond)
		if took := time.Since(start); err != nil || !slices.Equal(got, []int64{12}) || took < 300*time.Millisecond || took > 5*time.Second {
			t.Fatalf("got %v %v after %s and %d reads, want [12] after the 300ms limit", got, err, took, f.selects)
		}
	})
}

// A read that fails is an error, never a list of ids that seem to be missing: those would be
// counted as lost writes.
func TestMissingReportsReadErrors(t *testing.T) {
	broken := errors.New("connection reset")
	for _, c := range []struct {
		name string
		set  func(f *fakeDB)
	}{
		{"the query fails", func(f *fakeDB) { f.queryErr = broken }},
		{"the result fails after 2 rows", func(f *fakeDB) { f.rowsErr, f.rowsErrAfter = broken, 2 }},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFakeDB(10, 11, 12, 13)
			c.set(f)
			got, err := Missing(context.Background(), f.open(t), []int64{10, 11, 12, 13}, 0)
			if !errors.Is(err, broken) {
				t.Fatalf("got %v, %v; want the error %q", got, err, broken)
			}
		})
	}
}

// LongestGap is the longest window without an acknowledgement between Start and End,
// including one at either end; Around finds the acknowledgements on either side of a moment.
func TestOutage(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	at := func(s ...float64) []time.Time {
		var out []time.Time
		for _, x := range s {
			out = append(out, t0.Add(time.Duration(x*float64(time.Second))))
		}
		return out
	}
	s := func(x float64) time.Duration { return time.Duration(x * float64(time.Second)) }
	for _, c := range []struct {
		name     string
		acks     []time.Time
		end      float64
		gap      time.Duration
		from     time.Time
		aroundAt float64
		last     time.Time // zero: none
		first    time.Time
	}{
		{"no write ever acknowledged", nil, 9, s(9), t0, 4, time.Time{}, time.Time{}},
		{"outage in the middle", at(1, 2, 7, 8), 9, s(5), at(2)[0], 3, at(2)[0], at(7)[0]},
		{"failing until the end", at(1, 2, 2.5), 10, s(7.5), at(2.5)[0], 2.2, at(2)[0], at(2.5)[0]},
		{"failing from the start", at(6, 7), 8, s(6), t0, 0.5, time.Time{}, at(6)[0]},
		{"acknowledgements out of order", at(7, 1, 8, 2), 9, s(5), at(2)[0], 7.5, at(7)[0], at(8)[0]},
		{"around an acknowledgement", at(1, 2, 5), 6, s(3), at(2)[0], 2, at(1)[0], at(5)[0]},
		{"after the last acknowledgement", at(1, 2), 3, s(1), t0, 2.5, at(2)[0], time.Time{}},
	} {
		t.Run(c.name, func(t *testing.T) {
			l := &Load{Start: t0, End: t0.Add(s(c.end)), ackTime: c.acks}
			if gap, from := l.LongestGap(); gap != c.gap || !from.Equal(c.from) {
				t.Fatalf("longest gap %s from %s, want %s from %s", gap, from.Sub(t0), c.gap, c.from.Sub(t0))
			}
			if last, first := l.Around(t0.Add(s(c.aroundAt))); !last.Equal(c.last) || !first.Equal(c.first) {
				t.Fatalf("around %gs: last %v first %v, want %v %v", c.aroundAt, last, first, c.last, c.first)
			}
		})
	}
	t.Run("still running: the gap runs to now", func(t *testing.T) {
		now := time.Now()
		l := &Load{Start: now.Add(-5 * time.Second), ackTime: []time.Time{now.Add(-4 * time.Second)}}
		if gap, from := l.LongestGap(); gap < 4*time.Second || !from.Equal(l.ackTime[0]) {
			t.Fatalf("longest gap %s from %s, want at least 4s from the last acknowledgement", gap, from)
		}
	})
}
