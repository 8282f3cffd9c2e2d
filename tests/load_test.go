package tests

import (
	"context"
	"testing"
	"time"

	"github.com/baton-db/baton/internal/loadgen"
)

// startLoad writes rate inserts per second through addr, as a pooled application client,
// until the test ends or Stop is called.
func startLoad(t *testing.T, addr string, rate int) *loadgen.Load {
	t.Helper()
	db := appDB(addr)
	db.SetMaxOpenConns(16)
	db.SetMaxIdleConns(16)
	l := loadgen.Start(db, rate)
	t.Cleanup(func() { l.Stop(); db.Close() })
	return l
}

// missing returns the acked ids that addr lacks after waiting up to limit.
func missing(t *testing.T, addr string, ids []int64, limit time.Duration) []int64 {
	t.Helper()
	db := adminDB(addr)
	defer db.Close()
	miss, err := loadgen.Missing(context.Background(), db, ids, limit)
	if err != nil {
		t.Fatalf("read acked ids on %s: %v", addr, err)
	}
	return miss
}
