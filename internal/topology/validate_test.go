package topology

import (
	"strings"
	"testing"
)

func TestNodeValidation(t *testing.T) {
	good := Node{Name: "node1", FQDN: "node1.a.baton.test", IPv4: "127.0.1.1", Port: 3306, Zone: "a", ServerID: 101}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, mut := range map[string]func(*Node){
		"newline in name":     func(n *Node) { n.Name = "node1\n    server evil 10.0.0.1:3306" },
		"shell in name":       func(n *Node) { n.Name = "$(touch /tmp/x)" },
		"hostile ipv4":        func(n *Node) { n.IPv4 = "evil.example.com" },
		"ipv4 with newline":   func(n *Node) { n.IPv4 = "127.0.1.1\nbackend x" },
		"ipv6 in ipv4":        func(n *Node) { n.IPv4 = "::1" },
		"port out of range":   func(n *Node) { n.Port = 70000 },
		"no port":             func(n *Node) { n.Port = 0 },
		"SQL in fqdn":         func(n *Node) { n.FQDN = "x' OR '1'='1" },
		"non-UTF-8 zone":      func(n *Node) { n.Zone = "\xff\xfe" },
		"oversized name":      func(n *Node) { n.Name = strings.Repeat("a", 200) },
		"server_id missing":   func(n *Node) { n.ServerID = 0 },
		"ipv4 in ipv6":        func(n *Node) { n.IPv6 = "127.0.0.1" },
		"fqdn label too long": func(n *Node) { n.FQDN = strings.Repeat("a", 64) + ".test" },
	} {
		n := good
		mut(&n)
		if err := n.Validate(); err == nil {
			t.Errorf("%s: accepted %+v", name, n)
		}
	}
}
