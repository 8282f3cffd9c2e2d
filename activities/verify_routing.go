package activities

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/baton-db/baton/internal/tlsconf"
	"github.com/baton-db/baton/internal/topology"
)

// VerifyInput asks every writer endpoint of Cluster to reach ServerID.
type VerifyInput struct {
	Cluster  string
	Primary  string
	ServerID uint32
	Timeout  time.Duration
	// Fence lists former primaries on which client sessions are ended once routing has
	// converged: a pooled connection opened there before the HAProxy reload would
	// otherwise stay pinned to a read-only server.
	Fence []topology.Node
}

// VerifyResult is how long each endpoint took to converge, from the step's start, and the
// endpoints the worker could not open a connection to for the whole wait.
type VerifyResult struct {
	Converged map[string]time.Duration
	// Unreachable are endpoints whose every connection failed before reaching the HAProxy
	// (a dial error: a host cut off from the worker, or no HAProxy listening): not proof that
	// they route anywhere, so not a failed check; the workflow reports them.
	// Each is "name (address): last error", sorted.
	Unreachable []string `json:",omitempty"`
}

// VerifyRouting polls a fresh connection through every remote HAProxy writer port, and the
// local one, until each lands on the new primary's @@server_id. A config file that changed
// is not proof; a connection that arrives is. An endpoint that reached another server, or
// whose HAProxy took the connection and dropped it (its backend still the old primary),
// fails the step after the timeout; one the worker never reached at all (the HAProxy's
// zone cut off from the worker's) is reported in Unreachable instead: it says nothing
// about where that HAProxy routes, and the failover's safety never rested on it (the old
// primary is fenced or takes no writes before the promotion, docs/runbook.md §3).
func (a *Activities) VerifyRouting(ctx context.Context, in VerifyInput) (VerifyResult, error) {
	cc, _, err := a.cluster(in.Cluster)
	if err != nil {
		return VerifyResult{}, err
	}
	endpoints := map[string]string{}
	for _, h := range cc.HAProxies {
		endpoints["haproxy-"+h.Name] = h.Writer
	}
	if cc.LocalWriter != "" {
		endpoints["local"] = cc.LocalWriter
	}
	timeout := in.Timeout
	if timeout <= 0 {
		timeout = cc.RoutingTimeout
	}
	start := time.Now()
	res := VerifyResult{Converged: map[string]time.Duration{}}
	last := map[string]string{}
	reached := map[string]bool{} // a connection got past the dial at least once
	var mu sync.Mutex
	err = poll(ctx, 50*time.Millisecond, timeout, func() (bool, error) {
		var wg sync.WaitGroup
		for name, addr := range endpoints {
			mu.Lock()
			_, done := res.Converged[name]
			mu.Unlock()
			if done {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				id, err := a.serverIDVia(ctx, addr)
				mu.Lock()
				defer mu.Unlock()
				if err == nil || !isDialError(err) {
					reached[name] = true
				}
				switch {
				case err != nil:
					last[name] = err.Error()
				case id != in.ServerID:
					last[name] = fmt.Sprintf("reached server_id %d", id)
				default:
					res.Converged[name] = time.Since(start)
				}
			}()
		}
		wg.Wait()
		return len(res.Converged) == len(endpoints), nil
	})
	if err != nil && ctx.Err() != nil {
		return res, err
	}
	if err != nil {
		var bad []string
		res.Unreachable, bad = unconverged(endpoints, res.Converged, reached, last)
		if a.Metrics != nil && len(res.Unreachable) > 0 {
			a.Metrics.RoutingUnverified.Add(ctx, int64(len(res.Unreachable)), metric.WithAttributes(attribute.String("cluster", in.Cluster)))
		}
		if len(bad) > 0 {
			return res, nonRetryable(ErrRoutingNotConverged,
				"after %s these writer endpoints do not route to %s (server_id %d): %s; Consul already names %s, so check consul-template and HAProxy on those hosts",
				timeout, in.Primary, in.ServerID, strings.Join(bad, "; "), in.Primary)
		}
	}
	for _, n := range in.Fence {
		c, err := a.mysql(in.Cluster, n)
		if err != nil {
			return res, err
		}
		if _, err := a.endClientSessions(ctx, c); err != nil {
			return res, err
		}
	}
	return res, nil
}

// unconverged sorts the endpoints that never reached the new primary: those never reached
// at all (every connection failed to dial) are unreachable, the others are routing problems.
func unconverged(endpoints map[string]string, converged map[string]time.Duration, reached map[string]bool, last map[string]string) (unreachable, bad []string) {
	for name, addr := range endpoints {
		if _, ok := converged[name]; ok {
			continue
		}
		line := fmt.Sprintf("%s (%s): %s", name, addr, last[name])
		if reached[name] {
			bad = append(bad, line)
		} else {
			unreachable = append(unreachable, line)
		}
	}
	sort.Strings(bad)
	sort.Strings(unreachable)
	return unreachable, bad
}

// isDialError says a connection failed before it reached the other end's listener.
func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// serverIDVia opens a new connection (never pooled) through addr and asks for @@server_id.
// Through a proxy the certificate cannot name the proxy's address: with TLS only its chain
// is checked here, and @@server_id says which server answered.
func (a *Activities) serverIDVia(ctx context.Context, addr string) (uint32, error) {
	if a.adminErr != nil {
		return 0, a.adminErr
	}
	o := a.admin
	o.ConnectTimeout, o.ReadTimeout, o.TLS = 300*time.Millisecond, 500*time.Millisecond, tlsconf.ChainOnly(o.TLS)
	db, err := o.OpenDB(addr)
	if err != nil {
		return 0, err
	}
	defer db.Close()
	var id uint32
	qctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	err = db.QueryRowContext(qctx, "SELECT @@server_id").Scan(&id)
	return id, err
}
