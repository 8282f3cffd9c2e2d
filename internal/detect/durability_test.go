package detect

import (
	"strings"
	"testing"
	"time"

	"github.com/baton-db/baton/internal/config"
	"github.com/baton-db/baton/internal/flavor"
	"github.com/baton-db/baton/internal/mysqladmin"
)

func TestDurabilityOf(t *testing.T) {
	waiting := mysqladmin.PrimaryAcks{Enabled: true, TimeoutMS: flavor.NoFallback, Active: true}
	short := mysqladmin.PrimaryAcks{Enabled: true, TimeoutMS: 10000, Active: true}
	fellBack := mysqladmin.PrimaryAcks{Enabled: true, TimeoutMS: 10000, Active: false}
	off := mysqladmin.PrimaryAcks{}
	operators := mysqladmin.PrimaryAcks{Enabled: true, TimeoutMS: 30000, Active: true}
	cases := []struct {
		name     string
		fallback config.AckFallback
		p        mysqladmin.PrimaryAcks
		set      uint64
		degraded string
	}{
		{"none, already waiting for ever", config.AckFallbackNone, waiting, 0, ""},
		{"none, a timeout would fall back", config.AckFallbackNone, short, flavor.NoFallback, ""},
		{"none, fell back before the repair", config.AckFallbackNone, fellBack, flavor.NoFallback, "asynchronously"},
		{"async keeps its timeout", config.AckFallbackAsync, short, 0, ""},
		{"async keeps the operator's own timeout", config.AckFallbackAsync, operators, 0, ""},
		{"async, left waiting for ever (by none, a fence, a lapse)", config.AckFallbackAsync, waiting, 10000, ""},
		{"async, fell back", config.AckFallbackAsync, fellBack, 0, "asynchronously"},
		{"semi-sync off (no acker left)", config.AckFallbackNone, off, 0, "semi-sync off"},
		{"semi-sync off, async", config.AckFallbackAsync, off, 0, "semi-sync off"},
	}
	for _, c := range cases {
		set, why := durabilityOf(c.fallback, 10*time.Second, c.p)
		if set != c.set || (c.degraded == "") != (why == "") || !strings.Contains(why, c.degraded) {
			t.Errorf("%s: durabilityOf = %d %q; want %d %q", c.name, set, why, c.set, c.degraded)
		}
	}
}

func TestHeldOf(t *testing.T) {
	app := func(state string, secs int) mysqladmin.Process {
		return mysqladmin.Process{User: "app", Command: "Execute", State: state, Time: time.Duration(secs) * time.Second}
	}
	dump := func(state string, secs int) mysqladmin.Process {
		return mysqladmin.Process{User: "repl", Host: "127.0.0.1:33548", Command: "Killed", State: state, Time: time.Duration(secs) * time.Second}
	}
	const ack = "Waiting for semi-sync ACK from slave"
	cases := []struct {
		name  string
		procs []mysqladmin.Process
		want  []string // substrings; nil: not held
	}{
		{"nothing waits", []mysqladmin.Process{app("", 30)}, nil},
		{"a wait shorter than HeldAfter", []mysqladmin.Process{app(ack, 4), app("Commit", 4)}, nil},
		{"a long statement that is not a commit", []mysqladmin.Process{app("Sending data", 60)}, nil},
		{"held at HeldAfter", []mysqladmin.Process{app(ack, 5), app("Commit", 5), app("Commit", 3)}, []string{"holds 3 commits", "oldest for 5s"}},
		{"MySQL's wording", []mysqladmin.Process{app("Waiting for semi-sync ACK from replica", 9)}, []string{"holds 1 commits", "9s"}},
		{"held, and the old dump thread stuck", []mysqladmin.Process{app(ack, 70), dump("Waiting to finalize termination", 58)},
			[]string{"oldest for 1m10s", "127.0.0.1:33548 (58s)", "acknowledgement receiver is stuck", "stopping mysqld"}},
		{"a dump thread ending briefly is not named", []mysqladmin.Process{app(ack, 7), dump("Waiting to finalize termination", 2)}, []string{"holds 1 commits"}},
		{"a stuck dump thread alone holds nothing", []mysqladmin.Process{dump("Waiting to finalize termination", 58)}, nil},
	}
	for _, c := range cases {
		got := heldOf(c.procs)
		if c.want == nil {
			if got != "" {
				t.Errorf("%s: held %q", c.name, got)
			}
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(got, w) {
				t.Errorf("%s: %q lacks %q", c.name, got, w)
			}
		}
		if c.name == "a dump thread ending briefly is not named" && strings.Contains(got, "stuck") {
			t.Errorf("%s: %q", c.name, got)
		}
	}
}
