package detect

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/baton-db/baton/internal/mysqladmin"
)

// A handshake waits for a slot of the gate, and the wait is not counted against the probe
// timeout; a TCP connect needs no slot, so a refused or silent host is known at once.
func TestGateBoundsHandshakesNotConnects(t *testing.T) {
	ctx := context.Background()
	gate := NewGate(1)
	if err := gate.enter(ctx); err != nil { // the one slot, held by another watcher
		t.Fatal(err)
	}
	const limit = 200 * time.Millisecond

	// A server that accepts and never greets: a stalled handshake.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	opts := mysqladmin.Options{User: "u", Password: "p"}
	stalled, err := newProbe(ln.Addr().String(), opts, time.Second, limit, gate)
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		timedOut bool
		err      error
		at       time.Time
	}
	done := make(chan result, 1)
	go func() {
		to, err := stalled.open(ctx)
		done <- result{to, err, time.Now()}
	}()

	// Meanwhile a closed port is refused at once, though the gate is full.
	closed, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := closed.Addr().String()
	closed.Close()
	refused, err := newProbe(addr, opts, time.Second, limit, gate)
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithTimeout(ctx, 2*limit)
	defer cancel()
	to, err := refused.open(rctx)
	if err == nil || to || rctx.Err() != nil {
		t.Fatalf("a refused connect with the gate full: timedOut=%v err=%v; want refused at once", to, err)
	}

	select {
	case r := <-done:
		t.Fatalf("the handshake ran without a slot: returned %v, %v", r.timedOut, r.err)
	case <-time.After(3 * limit):
	}
	released := time.Now()
	gate.leave()
	r := <-done
	if r.err == nil || !r.timedOut {
		t.Fatalf("stalled handshake: timedOut=%v err=%v; want a timeout", r.timedOut, r.err)
	}
	if took := r.at.Sub(released); took < limit*9/10 {
		t.Fatalf("the handshake timed out %s after it got its slot; its timeout (%s) must start there", took, limit)
	}
	if len(gate) != 0 {
		t.Fatalf("%d slots still held after the probes returned", len(gate))
	}
}
