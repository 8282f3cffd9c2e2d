package topology

import (
	"errors"
	"fmt"
	"net"
	"regexp"
	"strings"
	"unicode/utf8"
)

var (
	tokenRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)
	labelRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
)

// Validate checks every field of a node read from or written to Consul. The HAProxy
// templates print these fields, and Baton connects to ipv4 with the replication password:
// nothing that is not a plain token, an address or a port may pass.
func (n Node) Validate() error {
	var errs []error
	bad := func(field, v, want string) { errs = append(errs, fmt.Errorf("%s %q is not %s", field, v, want)) }
	if !tokenRE.MatchString(n.Name) {
		bad("name", n.Name, "a name matching "+tokenRE.String())
	}
	if ip := net.ParseIP(n.IPv4); ip == nil || ip.To4() == nil || strings.Contains(n.IPv4, ":") {
		bad("ipv4", n.IPv4, "an IPv4 address")
	}
	if n.IPv6 != "" {
		if ip := net.ParseIP(n.IPv6); ip == nil || ip.To4() != nil {
			bad("ipv6", n.IPv6, "an IPv6 address")
		}
	}
	if n.FQDN != "" && !validDNSName(n.FQDN) {
		bad("fqdn", n.FQDN, "a DNS name")
	}
	if n.Port < 1 || n.Port > 65535 {
		bad("port", fmt.Sprint(n.Port), "a port (1-65535)")
	}
	if n.Zone != "" && !tokenRE.MatchString(n.Zone) {
		bad("zone", n.Zone, "a zone name matching "+tokenRE.String())
	}
	if n.ServerID == 0 {
		bad("server_id", "0", "a server_id above 0")
	}
	return errors.Join(errs...)
}

func validDNSName(s string) bool {
	if len(s) > 253 || !utf8.ValidString(s) {
		return false
	}
	for _, l := range strings.Split(strings.TrimSuffix(s, "."), ".") {
		if !labelRE.MatchString(l) {
			return false
		}
	}
	return true
}
