package activities

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/baton-db/baton/internal/mysqladmin"
)

func TestUnconvergedTellsUnreachableFromMisrouted(t *testing.T) {
	endpoints := map[string]string{"haproxy-a": "127.0.2.1:3306", "haproxy-b": "127.0.2.2:3306", "local": "127.0.3.1:3306", "haproxy-c": "127.0.2.3:3306"}
	converged := map[string]time.Duration{"local": time.Second}
	reached := map[string]bool{"local": true, "haproxy-b": true, "haproxy-c": true}
	last := map[string]string{"haproxy-a": "dial tcp: i/o timeout", "haproxy-b": "reached server_id 101", "haproxy-c": "invalid connection"}
	unreachable, bad := unconverged(endpoints, converged, reached, last)
	if len(unreachable) != 1 || unreachable[0] != "haproxy-a (127.0.2.1:3306): dial tcp: i/o timeout" {
		t.Errorf("unreachable %v, want haproxy-a alone", unreachable)
	}
	want := []string{"haproxy-b (127.0.2.2:3306): reached server_id 101", "haproxy-c (127.0.2.3:3306): invalid connection"}
	if strings.Join(bad, "|") != strings.Join(want, "|") {
		t.Errorf("bad %q, want %q", bad, want)
	}
	if u, b := unconverged(endpoints, map[string]time.Duration{"haproxy-a": 1, "haproxy-b": 1, "haproxy-c": 1, "local": 1}, reached, last); u != nil || b != nil {
		t.Errorf("all converged: %v %v", u, b)
	}
}

// A connection that no listener takes is a dial error; one an HAProxy accepts and drops
// (its backend unreachable) is not: that HAProxy routes somewhere wrong.
func TestIsDialErrorOnlyForConnectionsThatNeverArrived(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()
	_, err = query(t, closed)
	if !isDialError(err) {
		t.Errorf("nothing listening: %v is not a dial error", err)
	}

	l, err = net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	_, err = query(t, l.Addr().String())
	if err == nil || isDialError(err) {
		t.Errorf("accepted and dropped: %v, want an error that is not a dial error", err)
	}
}

// query asks through addr as VerifyRouting does.
func query(t *testing.T, addr string) (uint32, error) {
	t.Helper()
	a := &Activities{admin: mysqladmin.Options{User: "u"}}
	return a.serverIDVia(context.Background(), addr)
}
