package detect

import (
	"strings"
	"testing"

	"github.com/baton-db/baton/internal/config"
	"github.com/baton-db/baton/internal/flavor"
	"github.com/baton-db/baton/internal/mysqladmin"
)

func TestDurabilityOf(t *testing.T) {
	waiting := mysqladmin.PrimaryAcks{Enabled: true, TimeoutMS: flavor.NoFallback, Active: true}
	short := mysqladmin.PrimaryAcks{Enabled: true, TimeoutMS: 10000, Active: true}
	fellBack := mysqladmin.PrimaryAcks{Enabled: true, TimeoutMS: 10000, Active: false}
	off := mysqladmin.PrimaryAcks{}
	cases := []struct {
		name     string
		fallback config.AckFallback
		p        mysqladmin.PrimaryAcks
		set      bool
		degraded string
	}{
		{"none, already waiting for ever", config.AckFallbackNone, waiting, false, ""},
		{"none, a timeout would fall back", config.AckFallbackNone, short, true, ""},
		{"none, fell back before the repair", config.AckFallbackNone, fellBack, true, "asynchronously"},
		{"async keeps its timeout", config.AckFallbackAsync, short, false, ""},
		{"async, fell back", config.AckFallbackAsync, fellBack, false, "asynchronously"},
		{"semi-sync off (no acker left)", config.AckFallbackNone, off, false, "semi-sync off"},
		{"semi-sync off, async", config.AckFallbackAsync, off, false, "semi-sync off"},
	}
	for _, c := range cases {
		set, why := durabilityOf(c.fallback, c.p)
		if set != c.set || (c.degraded == "") != (why == "") || !strings.Contains(why, c.degraded) {
			t.Errorf("%s: durabilityOf = %v %q; want %v %q", c.name, set, why, c.set, c.degraded)
		}
	}
}
