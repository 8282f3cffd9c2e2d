package tests

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// writeLoad inserts rows with unique ids through one pooled client (database/sql), at a
// fixed rate, and records every acknowledged id and when it was acknowledged.
type writeLoad struct {
	db      *sql.DB
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	mu      sync.Mutex
	acked   []int64
	ackTime []time.Time
	fails   atomic.Int64
	start   time.Time
	end     time.Time
	lastErr atomic.Value
}

var nextID atomic.Int64

func init() { nextID.Store(time.Now().UnixNano() / 1000 * 1000) }

// startLoad writes `rate` inserts per second through addr until stop is called.
func startLoad(t *testing.T, addr string, rate int) *writeLoad {
	t.Helper()
	db := appDB(addr)
	db.SetMaxOpenConns(16)
	db.SetMaxIdleConns(16)
	ctx, cancel := context.WithCancel(context.Background())
	l := &writeLoad{db: db, cancel: cancel, start: time.Now()}
	const writers = 8
	interval := time.Duration(writers) * time.Second / time.Duration(rate)
	for w := 0; w < writers; w++ {
		l.wg.Add(1)
		go func() {
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
				qctx, qcancel := context.WithTimeout(ctx, 2*time.Second)
				_, err := db.ExecContext(qctx, "INSERT INTO app.writes (id, note) VALUES (?, 'load')", id)
				qcancel()
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
		}()
	}
	t.Cleanup(func() { l.stop() })
	return l
}

func (l *writeLoad) stop() {
	if l.cancel == nil {
		return
	}
	l.cancel()
	l.wg.Wait()
	l.end = time.Now()
	l.cancel = nil
	_ = l.db.Close()
}

// longestGap is the longest window with no acknowledged write, from the load's start to
// its end: failures that last until the end of the run count too.
func (l *writeLoad) longestGap() (gap time.Duration, from time.Time) {
	l.mu.Lock()
	times := append([]time.Time{l.start}, l.ackTime...)
	l.mu.Unlock()
	times = append(times, l.end)
	sort.Slice(times, func(i, j int) bool { return times[i].Before(times[j]) })
	for i := 1; i < len(times); i++ {
		if d := times[i].Sub(times[i-1]); d > gap {
			gap, from = d, times[i-1]
		}
	}
	return gap, from
}

// ackedIDs returns a copy of every acknowledged id.
func (l *writeLoad) ackedIDs() []int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]int64(nil), l.acked...)
}

// missing returns the acked ids that addr does not have, after waiting up to limit for
// replication to deliver them.
func missing(t *testing.T, addr string, ids []int64, limit time.Duration) []int64 {
	t.Helper()
	db := adminDB(addr)
	defer db.Close()
	deadline := time.Now().Add(limit)
	for {
		have := map[int64]bool{}
		rows, err := db.Query("SELECT id FROM app.writes WHERE id >= ?", minID(ids))
		if err != nil {
			t.Fatalf("read acked ids on %s: %v", addr, err)
		}
		for rows.Next() {
			var id int64
			_ = rows.Scan(&id)
			have[id] = true
		}
		rows.Close()
		var miss []int64
		for _, id := range ids {
			if !have[id] {
				miss = append(miss, id)
			}
		}
		if len(miss) == 0 || time.Now().After(deadline) {
			return miss
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func minID(ids []int64) int64 {
	m := int64(1) << 62
	for _, id := range ids {
		if id < m {
			m = id
		}
	}
	return m
}

func (l *writeLoad) String() string {
	gap, _ := l.longestGap()
	last, _ := l.lastErr.Load().(string)
	return fmt.Sprintf("%d acked, %d failed, longest window without a successful write %s, last error %q", len(l.ackedIDs()), l.fails.Load(), gap.Round(time.Millisecond), last)
}

// around returns the last acknowledgement before t and the first after it.
func (l *writeLoad) around(t time.Time) (last, first time.Time) {
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
