package main

import (
	"slices"
	"testing"
)

const cfg = `global
    stats socket /x/admin.sock mode 600 level admin
frontend writer
    bind 127.0.2.2:3306
    default_backend writer
backend writer
    retries 0
    server node3_127_0_1_3_3306 127.0.1.3:3306 check inter 500ms fall 2 rise 1
frontend reader
    default_backend reader
backend reader
    server node1_127_0_1_1_3306 127.0.1.1:3306 check
    server node2_127_0_1_2_3306 127.0.1.2:3306 check
listen stats
    mode http
`

const state = `1
# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port
3 writer 1 node1_127_0_1_1_3306 127.0.1.1 0 0 1 1 23 15 3 2 6 0 0 0 - 3306 - 0 0 - - 0
5 reader 1 node1_127_0_1_1_3306 127.0.1.1 2 0 1 1 23 15 3 2 6 0 0 0 - 3306 - 0 0 - - 0
5 reader 2 node2_127_0_1_2_3306 127.0.1.2 2 0 1 1 23 15 3 2 6 0 0 0 - 3306 - 0 0 - - 0
`

func TestParse(t *testing.T) {
	want := parseServers(cfg)
	if len(want) != 3 || want[0] != (server{"writer", "node3_127_0_1_3_3306", "127.0.1.3:3306"}) || want[2].backend != "reader" {
		t.Fatalf("parseServers: %+v", want)
	}
	running := parseState(state)
	if len(running) != 3 || running[0] != (server{"writer", "node1_127_0_1_1_3306", "127.0.1.1:3306"}) {
		t.Fatalf("parseState: %+v", running)
	}
	if sameServers(running, want) {
		t.Fatal("a worker still serving node1 as writer matches a file naming node3")
	}
	if !sameServers(parseState(state), parseServers(cfg[:0]+"backend writer\n server node1_127_0_1_1_3306 127.0.1.1:3306\nbackend reader\n server node1_127_0_1_1_3306 127.0.1.1:3306\n server node2_127_0_1_2_3306 127.0.1.2:3306\n")) {
		t.Fatal("the same servers do not match")
	}
	if sameServers(nil, want) {
		t.Fatal("a worker that reports no server matches a file with servers")
	}
	if !sameServers(nil, nil) {
		t.Fatal("a file with no server (the host's last cluster removed) can never be reloaded")
	}
}

func TestEveryClusterHasItsWriterBackend(t *testing.T) {
	s := parseServers("backend writer\n server a 127.0.1.1:3306\nbackend reader\n server a 127.0.1.1:3306\nbackend writer_demo2\n server d 127.0.1.4:3306\nbackend reader_demo2\n server e 127.0.1.5:3306\n")
	if got := writerBackends(s); !slices.Equal(got, []string{"writer", "writer_demo2"}) {
		t.Fatalf("writer backends %v", got)
	}
}
