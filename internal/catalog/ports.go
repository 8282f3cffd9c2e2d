package catalog

import (
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/baton-db/baton/internal/config"
	"github.com/baton-db/baton/internal/topology"
)

// FirstPort is where the HAProxy frontends' ports start; each cluster takes a writer port
// and the reader port after it, in steps of PortStep.
const (
	FirstPort = 3306
	PortStep  = 10
)

// FreePort is the first writer port, from FirstPort in steps of PortStep, such that
// neither it nor the port after it is in used.
func FreePort(used []int) int {
	p := FirstPort
	for slices.Contains(used, p) || slices.Contains(used, p+1) {
		p += PortStep
	}
	return p
}

// UsedPorts are the ports of every HAProxy frontend the catalog's clusters use.
func UsedPorts(c topology.Catalog) []int {
	var out []int
	for name, e := range c.Entries {
		cc, err := config.DecodeSettings(name, e.Settings)
		if err != nil {
			continue
		}
		for _, h := range cc.HAProxies {
			for _, a := range []string{h.Writer, h.Reader} {
				if _, p, err := net.SplitHostPort(a); err == nil {
					n, _ := strconv.Atoi(p)
					out = append(out, n)
				}
			}
		}
	}
	return out
}

// HAProxies are a new cluster's frontends on every remote HAProxy host registered in Consul
// (service "haproxy": ID haproxy-<name>, meta zone and writer, whose host is the host's
// address), all on port (writer) and port+1 (reader).
func HAProxies(hosts []topology.HAProxyHost, port int) []config.HAProxy {
	var out []config.HAProxy
	for _, h := range hosts {
		host, _, err := net.SplitHostPort(h.Writer)
		if err != nil {
			continue
		}
		out = append(out, config.HAProxy{Name: strings.TrimPrefix(h.ID, "haproxy-"), Zone: h.Zone,
			Writer: net.JoinHostPort(host, strconv.Itoa(port)), Reader: net.JoinHostPort(host, strconv.Itoa(port+1))})
	}
	slices.SortFunc(out, func(a, b config.HAProxy) int { return strings.Compare(a.Name, b.Name) })
	return out
}
