// Package loadgen is the write load that tests and the demo run through the application's
// local HAProxy: a pooled client (database/sql) inserting rows with unique ids, recording
// every acknowledged id and when it was acknowledged.
package loadgen

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Table is where the load writes; Schema creates it.
const (
	Table  = "app.writes"
	Schema = "CREATE TABLE IF NOT EXISTS app.writes (id BIGINT NOT NULL PRIMARY KEY, note VARCHAR(64), at TIMESTAMP(6) DEFAULT CURRENT_TIMESTAMP(6))"
)

// Load is a running write load.
type Load struct {
	db      *sql.DB
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	mu      sync.Mutex
	acked   []int64
	ackTime []time.Time
	fails   atomic.Int64
	lastErr atomic.Value
	Start   time.Time
	End     time.Time
}

var nextID atomic.Int64

func init() { nextID.Store(time.Now().UnixNano() / 1000 * 1000) }

// Start writes rate inserts per second through db until Stop. db should be a pool
// (SetMaxOpenConns > 1), as an application's would be.
func Start(db *sql.DB, rate int) *Load {
	ctx, cancel := context.WithCancel(context.Background())
	l := &Load{db: db, cancel: cancel, Start: time.Now()}
	const writers = 8
	interval := time.Duration(writers) * time.Second / time.Duration(rate)
	for w := 0; w < writers; w++ {
		l.wg.Add(1)
		go l.write(ctx, interval)
	}
	return l
}

func (l *Load) write(ctx context.Context, interval time.Duration) {
	defer l.wg.Done()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		id := nextID.Add(1)
		qctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := l.db.ExecContext(qctx, "INSERT INTO "+Table+" (id, note) VALUES (?, 'load')", id)
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				l.fails.Add(1)
				l.lastErr.Store(err.Error())
			}
			continue
		}
		l.mu.Lock()
		l.acked = append(l.acked, id)
		l.ackTime = append(l.ackTime, time.Now())
		l.mu.Unlock()
	}
}

// Stop ends the load and waits for in-flight writes. It is safe to call twice.
func (l *Load) Stop() {
	if l.cancel == nil {
		return
	}
	l.cancel()
	l.wg.Wait()
	l.End = time.Now()
	l.cancel = nil
}

// LongestGap is the longest window with no acknowledged write from start to end: failures
// that last until the end of the run count too.
func (l *Load) LongestGap() (gap time.Duration, from time.Time) {
	l.mu.Lock()
	times := append([]time.Time{l.Start}, l.ackTime...)
	l.mu.Unlock()
	end := l.End
	if end.IsZero() {
		end = time.Now()
	}
	times = append(times, end)
	sort.Slice(times, func(i, j int) bool { return times[i].Before(times[j]) })
	for i := 1; i < len(times); i++ {
		if d := times[i].Sub(times[i-1]); d > gap {
			gap, from = d, times[i-1]
		}
	}
	return gap, from
}

// Around returns the last acknowledgement before t and the first after it.
func (l *Load) Around(t time.Time) (last, first time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, at := range l.ackTime {
		if at.Before(t) && at.After(last) {
			last = at
		}
		if at.After(t) && (first.IsZero() || at.Before(first)) {
			first = at
		}
	}
	return last, first
}

// AckedAfter is how many writes were acknowledged after t.
func (l *Load) AckedAfter(t time.Time) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, at := range l.ackTime {
		if at.After(t) {
			n++
		}
	}
	return n
}

// Acked returns a copy of every acknowledged id.
func (l *Load) Acked() []int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]int64(nil), l.acked...)
}

// Failures is the number of writes that failed.
func (l *Load) Failures() int64 { return l.fails.Load() }

// LastError is the last failed write's error, or "".
func (l *Load) LastError() string {
	last, _ := l.lastErr.Load().(string)
	return last
}

func (l *Load) String() string {
	gap, _ := l.LongestGap()
	last := l.LastError()
	return fmt.Sprintf("%d acked, %d failed, longest window without a successful write %s, last error %q",
		len(l.Acked()), l.fails.Load(), gap.Round(time.Millisecond), last)
}

// Missing returns the ids that db does not have, after waiting up to limit for
// replication to deliver them.
func Missing(ctx context.Context, db *sql.DB, ids []int64, limit time.Duration) ([]int64, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	lo := ids[0]
	for _, id := range ids {
		lo = min(lo, id)
	}
	deadline := time.Now().Add(limit)
	for {
		have := map[int64]bool{}
		rows, err := db.QueryContext(ctx, "SELECT id FROM "+Table+" WHERE id >= ?", lo)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var id int64
			if err = rows.Scan(&id); err != nil {
				break
			}
			have[id] = true
		}
		if err == nil {
			err = rows.Err() // a result cut short must not read as missing rows
		}
		rows.Close()
		if err != nil {
			return nil, err
		}
		var miss []int64
		for _, id := range ids {
			if !have[id] {
				miss = append(miss, id)
			}
		}
		if len(miss) == 0 || time.Now().After(deadline) {
			return miss, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
}
