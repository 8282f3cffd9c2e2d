package mysqladmin

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/baton-db/baton/internal/flavor"
)

func TestProcessClassification(t *testing.T) {
	excluded := map[string]bool{"baton_admin": true, "baton_repl": true}
	cases := []struct {
		p              Process
		ddl, long, cli bool
	}{
		{Process{User: "app", Command: "Query", Info: "ALTER TABLE t ADD c INT", Time: time.Second}, true, false, true},
		{Process{User: "app", Command: "Query", Info: "/* gh-ost */ CREATE INDEX i ON t (c)"}, true, false, true},
		{Process{User: "app", Command: "Query", Info: "UPDATE t SET c = 1", Time: 12 * time.Second}, false, true, true},
		{Process{User: "app", Command: "Query", Info: "UPDATE t SET c = 1", Time: time.Second}, false, false, true},
		{Process{User: "app", Command: "Sleep", TrxAge: 15 * time.Second, TrxRowsModified: 3}, false, true, true},
		{Process{User: "app", Command: "Sleep", TrxAge: 15 * time.Second}, false, false, true},
		{Process{User: "app", Command: "Query", Info: "SELECT * FROM altered_things", Time: 30 * time.Second}, false, false, true},
		{Process{User: "baton_repl", Command: "Binlog Dump GTID"}, false, false, false},
		{Process{User: "baton_admin", Command: "Query", Info: "SELECT 1"}, false, false, false},
		{Process{User: "system user", Command: "Slave_SQL"}, false, false, false},
		{Process{User: "event_scheduler", Command: "Daemon"}, false, false, false},
	}
	for _, c := range cases {
		if got := c.p.IsDDL(); got != c.ddl {
			t.Errorf("%+v: IsDDL %v", c.p, got)
		}
		if got := c.p.LongDML(10 * time.Second); got != c.long {
			t.Errorf("%+v: LongDML %v", c.p, got)
		}
		if got := c.p.IsClient(excluded); got != c.cli {
			t.Errorf("%+v: IsClient %v", c.p, got)
		}
	}
}

func TestRedactHidesPasswords(t *testing.T) {
	for _, s := range []string{
		"CHANGE MASTER TO MASTER_HOST='h', MASTER_PASSWORD='hunter2', MASTER_USE_GTID=slave_pos",
		"CHANGE REPLICATION SOURCE TO SOURCE_PASSWORD='hunter2', SOURCE_AUTO_POSITION=1",
		"CREATE USER x IDENTIFIED BY 'hunter2'",
	} {
		if got := redact(s); strings.Contains(got, "hunter2") {
			t.Errorf("password left in %q", got)
		}
	}
}

// Passwords with quotes, commas and backslashes, as the flavours quote them, are hidden
// whole, and a server error that echoes one is scrubbed without keeping the raw error.
func TestRedactHoldsForAnyPassword(t *testing.T) {
	for _, pw := range []string{`abc,def,ghi`, `it's,secret`, `back\slash,tail`, `"dq",xyz`, `' OR 1=1 --`, `trail\`, `,,,zz`} {
		stmt := flavor.MariaDB{}.ChangeSource(flavor.Source{Host: "127.0.1.1", Port: 3306, User: "repl", Password: pw})
		got := redact(stmt)
		for _, leak := range append(strings.Split(pw, ","), pw) {
			if len(leak) >= 3 && strings.Contains(got, leak) {
				t.Errorf("password %q: %q leaks in %q", pw, leak, got)
			}
		}
		if !strings.Contains(got, "MASTER_USE_GTID=slave_pos") {
			t.Errorf("password %q: the rest of the statement was cut: %q", pw, got)
		}
		err := redactErr(stmt, "127.0.1.1:3306", errors.New("Error 1064: syntax error near '"+pw+"', MASTER_USE_GTID"))
		if strings.Contains(err.Error(), pw) || errors.Unwrap(err) != nil {
			t.Errorf("password %q: the error keeps it: %v", pw, err)
		}
	}
}

func TestCommittingSessionsAreNotEnded(t *testing.T) {
	for state, want := range map[string]bool{
		"Waiting for semi-sync ACK from slave":    true,
		"Commit":                                  true,
		"Waiting for prior transaction to commit": true,
		"Sending data":                            false,
		"":                                        false,
		"updating":                                false,
	} {
		if got := (Process{State: state}).Committing(); got != want {
			t.Errorf("Committing(%q) = %v, want %v", state, got, want)
		}
	}
}

func TestHeldCommitsOnlyThoseWaitingPastTheirAge(t *testing.T) {
	waiting := func(user string, age time.Duration) Process {
		return Process{ID: 9, User: user, Command: "Query", State: "Waiting for semi-sync ACK from slave", StateAge: age}
	}
	for _, c := range []struct {
		name  string
		procs []Process
		want  bool
	}{
		{"a commit 2 ms into its wait", []Process{waiting("app", 2*time.Millisecond)}, false},
		{"a commit waiting 600 ms", []Process{waiting("app", 600*time.Millisecond)}, true},
		{"queued behind it in the group commit", []Process{{User: "app", Command: "Query", State: "Waiting for prior transaction to commit", StateAge: time.Second}}, true},
		{"an excluded user's commit", []Process{waiting("guard", time.Second)}, false},
		{"a long statement, not a commit", []Process{{User: "app", Command: "Query", State: "Sending data", StateAge: 5 * time.Second}}, false},
		{"replication", []Process{{User: "repl", Command: "Binlog Dump", State: "Master has sent all binlog to slave; waiting for more updates", StateAge: time.Minute}}, false},
	} {
		if got := heldCommits(c.procs, map[string]bool{"guard": true}); got != c.want {
			t.Errorf("%s: held %v, want %v", c.name, got, c.want)
		}
	}
}
