package flavor

import (
	"strings"
	"testing"
)

func TestMySQLStatements(t *testing.T) {
	f := MySQL{}
	src := Source{Host: "10.0.0.2", Port: 3306, User: "repl", Password: "p'w", HeartbeatPeriod: 1}
	cases := map[string]string{
		f.ReplicaStatus(): "SHOW REPLICA STATUS",
		f.ChangeSource(src): "CHANGE REPLICATION SOURCE TO SOURCE_HOST='10.0.0.2', SOURCE_PORT=3306, SOURCE_USER='repl', " +
			"SOURCE_PASSWORD='p\\'w', SOURCE_AUTO_POSITION=1, SOURCE_CONNECT_RETRY=1, SOURCE_HEARTBEAT_PERIOD=1, GET_SOURCE_PUBLIC_KEY=1",
		f.StartReplica():    "START REPLICA",
		f.StopReplica():     "STOP REPLICA",
		f.StopReceiving():   "STOP REPLICA IO_THREAD",
		f.ReceiverThreads(): "SELECT PROCESSLIST_ID FROM performance_schema.threads WHERE NAME IN ('thread/sql/replica_io', 'thread/sql/slave_io') AND PROCESSLIST_ID IS NOT NULL",
		f.ResetReplica():    "RESET REPLICA ALL",
		f.Executed():        "SELECT @@GLOBAL.gtid_executed",
		f.WaitExecuted("3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5", 2.5): "SELECT WAIT_FOR_EXECUTED_GTID_SET('3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5', 2.5)",
		strings.Join(f.SetReadOnly(true), ";"):                          "SET GLOBAL super_read_only = ON",
		strings.Join(f.SetReadOnly(false), ";"):                         "SET GLOBAL super_read_only = OFF;SET GLOBAL read_only = OFF",
		f.ReadOnly():                                                    "SELECT @@GLOBAL.read_only, @@GLOBAL.super_read_only",
		strings.Join(f.SetSemiSyncPrimary(true), ";"):                   "SET GLOBAL rpl_semi_sync_source_enabled = ON",
		strings.Join(f.SetSemiSyncTimeout(NoFallback), ";"):             "SET GLOBAL rpl_semi_sync_source_timeout = 4294967295",
		strings.Join(f.FenceReadOnly(), ";"):                            "SET SESSION lock_wait_timeout = 1;SET GLOBAL super_read_only = ON;SET SESSION lock_wait_timeout = DEFAULT",
		f.ProcesslistStateMillis():                                      "p.TIME * 1000",
		f.PrimaryAcks(): "SELECT @@GLOBAL.rpl_semi_sync_source_enabled, @@GLOBAL.rpl_semi_sync_source_timeout, " +
			"(SELECT VARIABLE_VALUE FROM performance_schema.global_status WHERE VARIABLE_NAME='Rpl_semi_sync_source_status'), " +
			"(SELECT VARIABLE_VALUE FROM performance_schema.global_status WHERE VARIABLE_NAME='Rpl_semi_sync_source_wait_sessions')",
	}
	for got, want := range cases {
		if got != want {
			t.Errorf("got  %s\nwant %s", got, want)
		}
	}
	if f.PrepareReplica() != nil {
		t.Error("MySQL needs no preparation before CHANGE REPLICATION SOURCE")
	}
	if c := f.Columns(); c.IORunning != "Replica_IO_Running" || c.SourceHost != "Source_Host" || c.Received != "Retrieved_Gtid_Set" {
		t.Errorf("columns %+v", c)
	}
}

func TestMariaDBStatements(t *testing.T) {
	f := MariaDB{}
	got := f.ChangeSource(Source{Host: "127.0.1.1", Port: 3306, User: "repl", Password: "x"})
	want := "CHANGE MASTER TO MASTER_HOST='127.0.1.1', MASTER_PORT=3306, MASTER_USER='repl', MASTER_PASSWORD='x', MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1, MASTER_HEARTBEAT_PERIOD=1"
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	tlsSrc := Source{Host: "127.0.1.1", Port: 3306, User: "repl", Password: "x", SSL: true, SSLCA: "/etc/my ca.pem", SSLVerifyServerCert: true}
	if got, want := f.ChangeSource(tlsSrc), want+", MASTER_SSL=1, MASTER_SSL_CA='/etc/my ca.pem', MASTER_SSL_VERIFY_SERVER_CERT=1"; got != want {
		t.Errorf("with TLS:\ngot  %s\nwant %s", got, want)
	}
	if got := (MySQL{}).ChangeSource(tlsSrc); !strings.HasSuffix(got, "GET_SOURCE_PUBLIC_KEY=1, SOURCE_SSL=1, SOURCE_SSL_CA='/etc/my ca.pem', SOURCE_SSL_VERIFY_SERVER_CERT=1") {
		t.Errorf("MySQL with TLS: %s", got)
	}
	if got := f.StopReceiving(); got != "STOP SLAVE IO_THREAD" {
		t.Errorf("stop receiving: %s", got)
	}
	if got := strings.Join(f.FenceReadOnly(), ";"); got != "SET STATEMENT lock_wait_timeout = 1 FOR SET GLOBAL read_only = ON" {
		t.Errorf("fence read-only: %s", got)
	}
	if got := f.ProcesslistStateMillis(); got != "p.TIME_MS" {
		t.Errorf("state age: %s", got)
	}
	if got := f.ReceiverThreads(); got != "SELECT ID FROM information_schema.PROCESSLIST WHERE COMMAND = 'Slave_IO'" {
		t.Errorf("receiver threads: %s", got)
	}
	// MASTER_GTID_WAIT takes a position: the highest GTID of each domain in the state.
	if got := f.WaitExecuted("0-101-40,0-102-55,1-101-3", 1); got != "SELECT MASTER_GTID_WAIT('0-102-55,1-101-3', 1)" {
		t.Errorf("wait: %s", got)
	}
	if got := f.PrepareReplica(); len(got) != 1 || got[0] != "SET GLOBAL gtid_slave_pos = @@GLOBAL.gtid_binlog_pos" {
		t.Errorf("prepare: %v", got)
	}
}

func TestQuoteEscapes(t *testing.T) {
	if got := Quote("a'b\\c\n"); got != `'a\'b\\c\n'` {
		t.Errorf("quote: %s", got)
	}
}

func TestMariaDBGTIDArithmetic(t *testing.T) {
	p := func(s string) GTIDSet {
		g, err := MariaDB{}.ParseGTIDs(s)
		if err != nil {
			t.Fatal(err)
		}
		return g
	}
	primary := p("0-101-50,0-102-30")
	cases := []struct {
		replica, missing string
	}{
		{"0-101-45", ""},                         // behind: not errant
		{"0-101-50,0-102-30", ""},                // equal
		{"0-101-50,0-102-31", "0-102-31"},        // errant on an old server id
		{"0-101-50,0-103-51", "0-103-51"},        // errant with its own server id
		{"0-101-50,0-102-30,7-103-1", "7-103-1"}, // errant in another domain
	}
	for _, c := range cases {
		if got := primary.Missing(p(c.replica)); got != c.missing {
			t.Errorf("primary %s vs replica %s: missing %q, want %q", primary, c.replica, got, c.missing)
		}
		if primary.Contains(p(c.replica)) != (c.missing == "") {
			t.Errorf("Contains disagrees with Missing for %s", c.replica)
		}
	}
	if _, err := (MariaDB{}).ParseGTIDs("zzz"); err == nil {
		t.Error("garbage parsed")
	}
}

func TestMySQLGTIDArithmetic(t *testing.T) {
	u1, u2 := "3e11fa47-71ca-11e1-9e33-c80aa9429562", "4e11fa47-71ca-11e1-9e33-c80aa9429563"
	p := func(s string) GTIDSet {
		g, err := MySQL{}.ParseGTIDs(s)
		if err != nil {
			t.Fatal(err)
		}
		return g
	}
	primary := p(u1 + ":1-100")
	if m := primary.Missing(p(u1 + ":1-90")); m != "" {
		t.Errorf("lagging replica reported errant: %s", m)
	}
	if m := primary.Missing(p(u1 + ":1-100," + u2 + ":1-3")); !strings.Contains(m, u2) {
		t.Errorf("errant uuid not reported: %q", m)
	}
	if m := primary.Missing(p(u1 + ":1-101")); m == "" {
		t.Error("a transaction beyond the primary was not reported")
	}
}

func TestMissingOwn(t *testing.T) {
	f := MariaDB{}
	node, _ := f.ParseGTIDs("0-101-40,0-103-3715")
	primary, _ := f.ParseGTIDs("0-101-40,0-103-3716,0-102-90")
	if got := MissingOwn(node, primary, 103); got != "0-103-3716" {
		t.Fatalf("MissingOwn = %q", got)
	}
	if got := MissingOwn(node, primary, 101); got != "" {
		t.Fatalf("another node's transactions are replicated: %q", got)
	}
	my, _ := MySQL{}.ParseGTIDs("3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5")
	if got := MissingOwn(my, my, 1); got != "" {
		t.Fatalf("MySQL: %q", got)
	}
}
