package tests

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"
)

// clusterState is everything a refused command must leave unchanged. GTIDs are left out:
// the heartbeat agents write several transactions a second.
type clusterState struct {
	Primary  string
	Replicas string
	Epoch    uint64
	Nodes    []string // per node: read_only, source, threads
	Routes   []string // per writer endpoint: server_id reached
}

func snapshot(t *testing.T) clusterState {
	t.Helper()
	tp := readTopo(t)
	s := clusterState{Primary: tp.Primary.Name, Epoch: tp.Epoch}
	var reps []string
	for _, r := range tp.Replicas {
		reps = append(reps, r.Name)
	}
	s.Replicas = strings.Join(reps, ",")
	for _, addr := range nodes() {
		db := adminDB(addr)
		var ro bool
		if err := db.QueryRow("SELECT @@read_only").Scan(&ro); err != nil {
			db.Close()
			s.Nodes = append(s.Nodes, addr+" down")
			continue
		}
		src := "none"
		rows, err := db.QueryContext(context.Background(), "SHOW SLAVE STATUS")
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		if rows.Next() {
			vals := make([]any, len(cols))
			raw := make([]*string, len(cols))
			for i := range vals {
				var s string
				raw[i] = &s
				vals[i] = new(any)
			}
			if err := rows.Scan(vals...); err != nil {
				t.Fatal(err)
			}
			m := map[string]string{}
			for i, c := range cols {
				m[c] = fmt.Sprint(deref(vals[i]))
			}
			src = fmt.Sprintf("%s:%s io=%s sql=%s delay=%s", m["Master_Host"], m["Master_Port"], m["Slave_IO_Running"], m["Slave_SQL_Running"], m["SQL_Delay"])
		}
		rows.Close()
		db.Close()
		s.Nodes = append(s.Nodes, fmt.Sprintf("%s ro=%v src=%s", addr, ro, src))
	}
	for name, addr := range writers() {
		id, err := serverIDVia(addr)
		s.Routes = append(s.Routes, fmt.Sprintf("%s->%d (%v)", name, id, err))
	}
	sort.Strings(s.Routes)
	return s
}

func deref(v any) any {
	if p, ok := v.(*any); ok {
		if b, ok := (*p).([]byte); ok {
			return string(b)
		}
		return *p
	}
	return v
}

func (s clusterState) String() string {
	return fmt.Sprintf("primary=%s replicas=%s epoch=%d\n  %s\n  %s", s.Primary, s.Replicas, s.Epoch,
		strings.Join(s.Nodes, "\n  "), strings.Join(s.Routes, "\n  "))
}

// assertUnchanged fails when the cluster differs from before.
func assertUnchanged(t *testing.T, before clusterState) {
	t.Helper()
	// IO threads may be reconnecting for a moment; give the comparison a short grace.
	deadline := time.Now().Add(3 * time.Second)
	for {
		after := snapshot(t)
		if after.String() == before.String() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("cluster changed:\nbefore %s\nafter  %s", before, after)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
