package topology

import (
	"fmt"
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

// ipv4 must be a plain IPv4 address: net.ParseIP also reads the IPv4-mapped IPv6 form
// "::ffff:a.b.c.d" as IPv4 (To4 is not nil), and Validate refuses it. ipv6 is optional and,
// when set, must be an IPv6 address that is not IPv4 in disguise.
func TestNodeValidationAddresses(t *testing.T) {
	good := Node{Name: "node1", FQDN: "node1.a.baton.test", IPv4: "127.0.1.1", Port: 3306, Zone: "a", ServerID: 101}
	for _, c := range []struct {
		field, value string
		ok           bool
	}{
		{"ipv4", "127.0.0.1", true},
		{"ipv4", "10.1.2.3", true},
		{"ipv4", "::ffff:127.0.0.1", false},
		{"ipv4", "::FFFF:10.1.2.3", false},
		{"ipv4", "0:0:0:0:0:ffff:7f00:1", false},
		{"ipv4", "::1", false},
		{"ipv4", "1.2.3", false},
		{"ipv4", "1.2.3.4.5", false},
		{"ipv4", "127.0.0.1 ", false},
		{"ipv4", "", false},
		{"ipv6", "", true},
		{"ipv6", "::1", true},
		{"ipv6", "2001:db8::1", true},
		{"ipv6", "::ffff:127.0.0.1", false},
		{"ipv6", "127.0.0.1", false},
		{"ipv6", "1.2.3", false},
		{"ipv6", "fe80::1%eth0", false},
	} {
		t.Run(c.field+"="+c.value, func(t *testing.T) {
			n := good
			if c.field == "ipv4" {
				n.IPv4 = c.value
			} else {
				n.IPv6 = c.value
			}
			err := n.Validate()
			if c.ok && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if !c.ok && (err == nil || !strings.Contains(err.Error(), fmt.Sprintf("%s %q is not an IP", c.field, c.value))) {
				t.Fatalf("got %v, want %s %q refused", err, c.field, c.value)
			}
		})
	}
}
