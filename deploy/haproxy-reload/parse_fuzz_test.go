package main

import (
	"strings"
	"testing"
)

// Whatever the configuration file or HAProxy's runtime API answers, parsing does not panic
// and every server it returns has a backend, a name and an address without spaces.
func FuzzParse(f *testing.F) {
	f.Add("backend demo_writer\n  server node1_127.0.1.1 127.0.1.1:3306 check\n", "1\n# be_id be_name\n3 demo_writer 1 node1 127.0.1.1 2 0 1 1 5 6 3 4 6 0 0 0 - 3306 - 0 0 - - 0\n")
	f.Add("frontend x\n server a b\nlisten l\n server s 1.2.3.4:5", "")
	f.Add("server orphan 1.2.3.4:5\n", "a b c d e f g h i j k l m n o p q r")
	f.Fuzz(func(t *testing.T, cfg, state string) {
		for _, s := range append(parseServers(cfg), parseState(state)...) {
			if s.backend == "" || s.name == "" || s.addr == "" || strings.ContainsAny(s.backend+s.name+s.addr, " \t\r\n") {
				t.Fatalf("server %+v", s)
			}
		}
		_ = writerBackends(parseServers(cfg))
	})
}
