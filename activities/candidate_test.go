package activities

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/baton-db/baton/internal/config"
	"github.com/baton-db/baton/internal/flavor"
	"github.com/baton-db/baton/internal/mysqladmin"
	"github.com/baton-db/baton/internal/topology"
)

func gtids(t *testing.T, s string) flavor.GTIDSet {
	g, err := flavor.MariaDB{}.ParseGTIDs(s)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func TestRankCandidates(t *testing.T) {
	a := topology.Node{Name: "a", Zone: "z1"}
	b := topology.Node{Name: "b", Zone: "z2"}
	c := topology.Node{Name: "c", Zone: "z1"}
	ok := func(n topology.Node, g string, lag int64) Observed {
		return Observed{Node: n, Reachable: true, SQLRunning: true, IO: "Yes", GTIDs: gtids(t, g), LagMS: lag}
	}
	cases := []struct {
		name    string
		obs     []Observed
		policy  Policy
		want    string // "" when none qualifies
		whyPart map[string]string
	}{
		{"least lag wins", []Observed{ok(a, "0-1-10", 300), ok(b, "0-1-10", 20)}, Policy{}, "b", nil},
		{"same zone beats lag", []Observed{ok(a, "0-1-10", 300), ok(b, "0-1-10", 20)}, Policy{Zone: "z1"}, "a",
			map[string]string{"a": "same zone"}},
		{"prefer beats zone", []Observed{ok(a, "0-1-10", 10), ok(b, "0-1-10", 20)}, Policy{Zone: "z1", Prefer: []string{"b"}}, "b",
			map[string]string{"b": "prefer"}},
		{"must_not excluded", []Observed{ok(a, "0-1-10", 10), ok(b, "0-1-10", 20)}, Policy{MustNot: []string{"a"}}, "b",
			map[string]string{"a": "must_not"}},
		{"broken SQL thread excluded", []Observed{{Node: a, Reachable: true, SQLError: "dup key", GTIDs: gtids(t, "0-1-10")}, ok(b, "0-1-9", 20)}, Policy{}, "b",
			map[string]string{"a": "SQL thread"}},
		{"unreachable excluded", []Observed{{Node: a, Error: "refused"}, ok(c, "0-1-9", 20)}, Policy{}, "c",
			map[string]string{"a": "unreachable"}},
		{"not a superset excluded (unplanned)", []Observed{ok(a, "0-1-9", 0), ok(b, "0-1-10", 900)}, Policy{Zone: "z1", RequireSuperset: true}, "b",
			map[string]string{"a": "lacks 0-1-10"}},
		{"superset not required (planned)", []Observed{ok(a, "0-1-9", 0), ok(b, "0-1-10", 900)}, Policy{Zone: "z1"}, "a", nil},
		{"divergent servers: nobody is a superset", []Observed{ok(a, "0-1-10,0-2-11", 0), ok(b, "0-1-10,0-3-11", 0)}, Policy{RequireSuperset: true}, "",
			map[string]string{"a": "lacks 0-3-11", "b": "lacks 0-2-11"}},
		{"none qualifies", []Observed{{Node: a, Error: "down"}}, Policy{}, "", nil},
		{"prevent_cross_zone_failover: the zone mate wins although it lags", []Observed{ok(a, "0-1-10", 900), ok(b, "0-1-10", 20)}, Policy{Zone: "z1", SameZone: true}, "a",
			map[string]string{"b": "in zone z2, and prevent_cross_zone_failover keeps the primary in zone z1"}},
		{"prevent_cross_zone_failover: no replica in the zone, none promoted", []Observed{{Node: a, Error: "down"}, ok(b, "0-1-10", 20)}, Policy{Zone: "z1", SameZone: true}, "",
			map[string]string{"b": "prevent_cross_zone_failover"}},
		{"max_lag_unplanned: lag measured to the failure", []Observed{ok(a, "0-1-10", 9_500), ok(b, "0-1-10", 3_200)}, Policy{Zone: "z1", MaxLag: 4 * time.Second, SinceFailure: 3 * time.Second}, "b",
			map[string]string{"a": "excluded: 6.5s behind the primary's failure, over max_lag_unplanned 4s"}},
		{"max_lag_unplanned: exactly at the cap qualifies", []Observed{ok(a, "0-1-10", 7_000)}, Policy{MaxLag: 4 * time.Second, SinceFailure: 3 * time.Second}, "a", nil},
		{"max_lag_unplanned: just over the cap", []Observed{ok(a, "0-1-10", 7_001)}, Policy{MaxLag: 4 * time.Second, SinceFailure: 3 * time.Second}, "",
			map[string]string{"a": "4.001s behind"}},
		{"max_lag_unplanned: unknown lag is not under the cap", []Observed{ok(a, "0-1-10", -1)}, Policy{MaxLag: time.Second}, "",
			map[string]string{"a": "lag is unknown"}},
		{"--primary-alive: a replica lacking what the fenced primary executed is excluded", []Observed{ok(a, "0-1-41", 0), ok(c, "0-1-42", 20)}, Policy{Zone: "z1", MustHold: gtids(t, "0-1-42")}, "c",
			map[string]string{"a": "excluded: lacks 0-1-42 that the fenced primary executed"}},
		{"--primary-alive: nobody holds it, none promoted", []Observed{ok(a, "0-1-41", 0)}, Policy{MustHold: gtids(t, "0-1-42")}, "", nil},
		{"no cap: a far-behind replica qualifies", []Observed{ok(a, "0-1-10", 3_600_000)}, Policy{SinceFailure: time.Second}, "a", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			best, reports := rankCandidates(tc.obs, tc.policy)
			got := ""
			if best >= 0 {
				got = tc.obs[best].Node.Name
			}
			if got != tc.want {
				t.Fatalf("chose %q, want %q; reports %+v", got, tc.want, reports)
			}
			for _, r := range reports {
				if r.Why == "" {
					t.Fatalf("no reason for %s", r.Node.Name)
				}
				if part, ok := tc.whyPart[r.Node.Name]; ok && !strings.Contains(r.Why, part) {
					t.Fatalf("reason for %s is %q, want it to mention %q", r.Node.Name, r.Why, part)
				}
			}
		})
	}
}

func TestLeftBehindNamesWhatOnlyALostCandidateHeld(t *testing.T) {
	f := flavor.MariaDB{}
	cand, _ := f.ParseGTIDs("0-101-10,0-102-7")
	c := ConfirmResult{
		Lost:      []topology.Node{{Name: "node3"}, {Name: "node4"}},
		LostGTIDs: map[string]string{"node3": "0-101-12,0-102-7", "node4": "0-101-9"},
	}
	got := leftBehind(context.Background(), f, c, Observed{Node: topology.Node{Name: "node2"}, GTIDs: cand})
	if len(got) != 1 || !strings.Contains(got[0], "node3, the candidate lost earlier, held 0-101-12, which node2 lacks") {
		t.Fatalf("left behind %q", got)
	}
	if got := leftBehind(context.Background(), f, ConfirmResult{Lost: c.Lost}, Observed{GTIDs: cand}); got != nil {
		t.Fatalf("with nothing known of the lost candidates: %q", got)
	}
}

// A downtimed replica is never a candidate, however good it looks otherwise (preferred,
// in the old primary's zone, least lag, most GTIDs), and its report says it is downtimed
// and by whom.
func TestRankCandidatesNeverPicksADowntimedReplica(t *testing.T) {
	a := topology.Node{Name: "a", Zone: "z1"}
	b := topology.Node{Name: "b", Zone: "z2"}
	c := topology.Node{Name: "c", Zone: "z2"}
	ok := func(n topology.Node, g string, lag int64) Observed {
		return Observed{Node: n, Reachable: true, SQLRunning: true, IO: "Yes", GTIDs: gtids(t, g), LagMS: lag}
	}
	down := topology.Downtime{Node: "a", By: "alice", Reason: "disk swap", Until: time.Date(2026, 12, 2, 13, 0, 0, 0, time.UTC)}.String()
	cases := []struct {
		name   string
		obs    []Observed
		policy Policy
		want   string // "" when none qualifies
	}{
		{"best by every rank", []Observed{ok(a, "0-1-10", 0), ok(b, "0-1-10", 900), ok(c, "0-1-10", 500)},
			Policy{Prefer: []string{"a"}, Zone: "z1", Downtimed: map[string]string{"a": down}}, "c"},
		{"best by name only", []Observed{ok(a, "0-1-10", 20), ok(b, "0-1-10", 20)},
			Policy{Downtimed: map[string]string{"a": down}}, "b"},
		{"planned: the only one with every GTID", []Observed{ok(a, "0-1-12", 0), ok(b, "0-1-10", 20)},
			Policy{Downtimed: map[string]string{"a": down}}, "b"},
		{"the only replica", []Observed{ok(a, "0-1-10", 0)},
			Policy{Downtimed: map[string]string{"a": down}}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			best, reports := rankCandidates(tc.obs, tc.policy)
			got := ""
			if best >= 0 {
				got = tc.obs[best].Node.Name
			}
			if got != tc.want {
				t.Fatalf("chose %q, want %q; reports %+v", got, tc.want, reports)
			}
			r := reports[0] // a, the downtimed one
			if r.Node.Name != "a" || r.Eligible || r.Why != "excluded: "+down {
				t.Fatalf("report of the downtimed replica: %+v, want it excluded with %q", r, "excluded: "+down)
			}
		})
	}
}

// A replica whose lag is unknown (LagMS -1) ranks below every replica whose lag is known,
// however large, everything else being equal; the report of a chosen replica of unknown lag
// claims no lag.
func TestRankCandidatesRanksUnknownLagLast(t *testing.T) {
	a := topology.Node{Name: "a", Zone: "z1"} // first by name: wins any tie
	b := topology.Node{Name: "b", Zone: "z1"}
	obs := func(lagA, lagB int64) []Observed {
		o := func(n topology.Node, lag int64) Observed {
			return Observed{Node: n, Reachable: true, SQLRunning: true, IO: "Yes", GTIDs: gtids(t, "0-1-10"), LagMS: lag}
		}
		return []Observed{o(a, lagA), o(b, lagB)}
	}
	cases := []struct {
		name       string
		obs        []Observed
		policy     Policy
		want       string
		wantWhy    string // part of the chosen replica's report
		notWantWhy string // never in it
	}{
		{"unknown loses to a known 0", obs(-1, 0), Policy{}, "b", "lag 0 ms", ""},
		{"unknown loses to a known large lag", obs(-1, 3_600_000), Policy{}, "b", "lag 3600000 ms", ""},
		{"unknown loses in the old primary's zone too", obs(-1, 5), Policy{Zone: "z1"}, "b", "lag 5 ms", ""},
		{"both unknown: by name, no lag claimed", obs(-1, -1), Policy{}, "a", "best of 2 eligible", "lag"},
		{"zone still beats a known lag", []Observed{obs(-1, 0)[0], {Node: topology.Node{Name: "b", Zone: "z2"}, Reachable: true, SQLRunning: true, GTIDs: gtids(t, "0-1-10"), LagMS: 0}},
			Policy{Zone: "z1"}, "a", "same zone", "lag"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			best, reports := rankCandidates(tc.obs, tc.policy)
			got := "none"
			if best >= 0 {
				got = tc.obs[best].Node.Name
			}
			if got != tc.want {
				t.Fatalf("chose %s, want %s; reports %+v", got, tc.want, reports)
			}
			why := reports[best].Why
			if !strings.Contains(why, tc.wantWhy) || (tc.notWantWhy != "" && strings.Contains(why, tc.notWantWhy)) {
				t.Fatalf("report of %s is %q, want it to mention %q and not %q", tc.want, why, tc.wantWhy, tc.notWantWhy)
			}
		})
	}
}

// leftBehind names every lost candidate that held GTIDs the chosen one lacks, not just the
// first; a lost candidate it knows nothing of, or whose GTIDs it cannot read, or that held
// nothing more, is not named.
func TestLeftBehindNamesEveryLostCandidate(t *testing.T) {
	f := flavor.MariaDB{}
	cand := Observed{Node: topology.Node{Name: "node2"}, GTIDs: gtids(t, "0-101-10,0-102-7")}
	lost := func(names ...string) []topology.Node {
		var out []topology.Node
		for _, n := range names {
			out = append(out, topology.Node{Name: n})
		}
		return out
	}
	msg := func(lost, held string) string {
		return lost + ", the candidate lost earlier, held " + held + ", which node2 lacks"
	}
	cases := []struct {
		name string
		c    ConfirmResult
		cand Observed
		want []string // each a prefix of one entry, in order
	}{
		{"two lost, both held more", ConfirmResult{Lost: lost("node3", "node4"),
			LostGTIDs: map[string]string{"node3": "0-101-12,0-102-7", "node4": "0-101-9,0-102-8"}},
			cand, []string{msg("node3", "0-101-12"), msg("node4", "0-102-8")}},
		{"three lost, the first held nothing more", ConfirmResult{Lost: lost("node3", "node4", "node5"),
			LostGTIDs: map[string]string{"node3": "0-101-9", "node4": "0-101-11", "node5": "0-103-1"}},
			cand, []string{msg("node4", "0-101-11"), msg("node5", "0-103-1")}},
		{"one unknown, one unreadable, one held more", ConfirmResult{Lost: lost("node3", "node4", "node5"),
			LostGTIDs: map[string]string{"node4": "not a gtid", "node5": "0-101-13"}},
			cand, []string{msg("node5", "0-101-13")}},
		{"none held more", ConfirmResult{Lost: lost("node3", "node4"),
			LostGTIDs: map[string]string{"node3": "0-101-10", "node4": "0-102-7"}},
			cand, nil},
		{"candidate's GTIDs unknown", ConfirmResult{Lost: lost("node3"), LostGTIDs: map[string]string{"node3": "0-101-12"}},
			Observed{Node: topology.Node{Name: "node2"}}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := leftBehind(context.Background(), f, tc.c, tc.cand)
			ok := len(got) == len(tc.want)
			for i := 0; ok && i < len(got); i++ {
				ok = strings.HasPrefix(got[i], tc.want[i]) && strings.Contains(got[i], "acknowledged writes may be among them")
			}
			if !ok {
				t.Fatalf("left behind %q, want entries starting %q", got, tc.want)
			}
		})
	}
}

// A replica that acknowledged (received) more than another but applies slower (its SQL
// thread held by a backup's lock) holds more: it is the candidate, and the one that only
// applied faster is the one that lacks transactions.
func TestRankCandidatesComparesWhatEachReplicaReceived(t *testing.T) {
	acker := topology.Node{Name: "node2", Zone: "b"}
	mate := topology.Node{Name: "node3", Zone: "a"}
	obs := []Observed{
		{Node: acker, Reachable: true, SQLRunning: true, IO: "Yes", GTIDs: gtids(t, "0-101-100"), Received: gtids(t, "0-101-512"), LagMS: 3000},
		{Node: mate, Reachable: true, SQLRunning: true, IO: "No", GTIDs: gtids(t, "0-101-300"), Received: gtids(t, "0-101-300"), LagMS: 0},
	}
	best, reports := rankCandidates(obs, Policy{Zone: "a", RequireSuperset: true})
	if best != 0 {
		t.Fatalf("chose %d; want node2, which received 0-101-512: %+v", best, reports)
	}
	if !strings.Contains(reports[1].Why, "lacks 0-101-512 that node2 holds") {
		t.Fatalf("node3's report: %q; want it to lack what node2 received", reports[1].Why)
	}
	if reports[0].GTIDs != "0-101-512" {
		t.Fatalf("node2's report holds %q; want what it received", reports[0].GTIDs)
	}
}

// Rules set at run time override the config's node by node; prefer_not ranks a replica
// below every other eligible one, must_not excludes it.
func TestPromotionRulesAtRunTime(t *testing.T) {
	set := map[string]topology.Promotion{"b": {Node: "b", Rule: "neutral"}, "c": {Node: "c", Rule: "must_not"}, "d": {Node: "d", Rule: "prefer_not"}}
	got := promotionRules([]string{"b"}, []string{"a"}, set)
	want := map[string]string{"a": "must_not", "b": "neutral", "c": "must_not", "d": "prefer_not"}
	if len(got) != len(want) {
		t.Fatalf("rules %v, want %v", got, want)
	}
	for n, r := range want {
		if got[n] != r {
			t.Fatalf("rules %v, want %v", got, want)
		}
	}
	a := topology.Node{Name: "a", Zone: "z1"}
	b := topology.Node{Name: "b", Zone: "z1"}
	c := topology.Node{Name: "c", Zone: "z2"}
	ok := func(n topology.Node, lag int64) Observed {
		return Observed{Node: n, Reachable: true, SQLRunning: true, IO: "Yes", GTIDs: gtids(t, "0-1-10"), LagMS: lag}
	}
	p := Policy{Zone: "z1"}.withRules(map[string]string{"a": "prefer_not", "b": "must_not"})
	best, reports := rankCandidates([]Observed{ok(a, 0), ok(b, 0), ok(c, 500)}, p)
	if best != 2 || !strings.Contains(reports[1].Why, "must_not") {
		t.Fatalf("chose %d (%+v); want c: a is prefer_not (ranked last despite zone and lag), b must_not", best, reports)
	}
	best, reports = rankCandidates([]Observed{ok(a, 0), ok(b, 0)}, p)
	if best != 0 || !strings.Contains(reports[0].Why, "prefer_not, but no other replica is eligible") {
		t.Fatalf("chose %d (%+v); a prefer_not replica is still chosen when it is the only eligible one", best, reports)
	}
}

// A candidate that lacks only what a replica that may not be promoted has executed catches
// up from it; there is no way out when no replica has executed everything (a relay log is
// not served), when the candidate lacks nothing, or when nobody would be chosen anyway.
func TestCatchUpSourceOnlyFromAReplicaThatExecutedEverything(t *testing.T) {
	mate := topology.Node{Name: "node1", Zone: "a"}
	acker := topology.Node{Name: "node2", Zone: "b"}
	third := topology.Node{Name: "node4", Zone: "b"}
	ob := func(n topology.Node, executed, received string) Observed {
		o := Observed{Node: n, Reachable: true, SQLRunning: true, IO: "No", GTIDs: gtids(t, executed), LagMS: 5}
		if received != "" {
			o.Received = gtids(t, received)
		}
		return o
	}
	mustNot := Policy{Zone: "a", RequireSuperset: true}.withRules(map[string]string{"node1": "must_not"})
	cases := []struct {
		name        string
		obs         []Observed
		p           Policy
		cand, donor int
		why         string
	}{
		{"the must_not mate executed more", []Observed{ob(mate, "0-103-120", ""), ob(acker, "0-103-100", "")}, mustNot, 1, 0,
			"chosen after it catches up from node1, which holds 0-103-120 it lacks and may not be promoted (excluded: listed in must_not)"},
		{"the mate only received the rest: nothing serves it", []Observed{ob(mate, "0-103-100", "0-103-120"), ob(acker, "0-103-100", "")}, mustNot, -1, -1, ""},
		{"the candidate lacks nothing", []Observed{ob(mate, "0-103-100", ""), ob(acker, "0-103-100", "")}, mustNot, -1, -1, ""},
		{"nobody may be promoted", []Observed{ob(mate, "0-103-120", ""), ob(acker, "0-103-100", "")},
			Policy{RequireSuperset: true}.withRules(map[string]string{"node1": "must_not", "node2": "must_not"}), -1, -1, ""},
		{"a third replica that is behind both is no donor, the mate is", []Observed{ob(third, "0-103-90", ""), ob(mate, "0-103-120", ""), ob(acker, "0-103-100", "")}, mustNot, 2, 1,
			"catches up from node1"},
		{"the donor must hold what every replica holds", []Observed{ob(third, "0-103-90", "0-103-130"), ob(mate, "0-103-120", ""), ob(acker, "0-103-100", "")}, mustNot, -1, -1, ""},
		{"a donor whose SQL thread stopped on an error is none", []Observed{func() Observed {
			o := ob(mate, "0-103-121", "")
			o.SQLRunning, o.SQLError = false, "Error 1950: out-of-order sequence number"
			return o
		}(), ob(acker, "0-103-100", "")}, mustNot, -1, -1, ""},
		{"unreachable replicas count for nothing", []Observed{{Node: third, Error: "i/o timeout", LagMS: -1}, ob(mate, "0-103-120", ""), ob(acker, "0-103-100", "")}, mustNot, 2, 1,
			"catches up from node1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cand, donor, reports := catchUpSource(c.obs, c.p)
			if cand != c.cand || donor != c.donor {
				t.Fatalf("candidate %d, donor %d; want %d, %d: %+v", cand, donor, c.cand, c.donor, reports)
			}
			if c.cand >= 0 && !strings.Contains(reports[cand].Why, c.why) {
				t.Fatalf("the candidate's report %q; want %q", reports[cand].Why, c.why)
			}
		})
	}
	// Strict ranking still refuses the first case: the catch-up is the only way through.
	if best, _ := rankCandidates(cases[0].obs, mustNot); best != -1 {
		t.Fatalf("rankCandidates chose %d; it must refuse a candidate that lacks what another holds", best)
	}
}

// The catch-up runs after the cut: the donor applies its relay log, the candidate points
// at the donor, waits for what the donor executed, and stops; a failover that ends before
// the promotion points the candidate at the old primary again, not at the donor.
func TestCatchUpFromADonorAndBackToThePrimaryOnAbort(t *testing.T) {
	mate := topology.Node{Name: "node3", IPv4: "127.0.1.3", Port: 3306, Zone: "a", ServerID: 103}
	cand := &fakeServer{executed: "0-101-100", status: &mysqladmin.ReplicaStatus{SourceHost: tPrimary.IPv4, SourcePort: 3306}}
	donor := &fakeServer{executed: "0-101-120", status: &mysqladmin.ReplicaStatus{SourceHost: tPrimary.IPv4, SourcePort: 3306}}
	a := fakeActivities(map[string]*fakeServer{tCand.Addr(): cand, mate.Addr(): donor})
	plan := Plan{Cluster: "demo", OldPrimary: tPrimary, Candidate: tCand, Others: []topology.Node{mate}, CatchUpFrom: &mate}
	if _, err := a.WaitRelayLog(context.Background(), plan); err != nil {
		t.Fatal(err)
	}
	did := strings.Join(cand.did, ",")
	if !strings.HasSuffix(did, "point,wait,stop replica") || len(cand.pointedAt) != 1 || cand.pointedAt[0] != mate.IPv4 {
		t.Fatalf("the candidate did %s, pointed at %v; want a point at %s, a wait and a stop last", did, cand.pointedAt, mate.IPv4)
	}
	if cand.pointAcks[0] {
		t.Fatal("the candidate acknowledges the donor's events")
	}
	if d := strings.Join(donor.did, ","); !strings.HasPrefix(d, "cut io") || !strings.Contains(d, "executed") {
		t.Fatalf("the donor did %s; want its IO cut first, then what it executed read", d)
	}
	if _, err := a.RestartReplication(context.Background(), plan); err != nil {
		t.Fatal(err)
	}
	if len(cand.pointedAt) != 2 || cand.pointedAt[1] != tPrimary.IPv4 {
		t.Fatalf("after the abort the candidate points at %v; want the old primary %s last", cand.pointedAt, tPrimary.IPv4)
	}
	if strings.Contains(strings.Join(donor.did, ","), "point") {
		t.Fatal("the donor was re-pointed: it never left the old primary")
	}
}

// A node about to take writes gets ack_timeout under ack_fallback async (a fence may have
// left it waiting for ever), and nothing under none (waitForAcks keeps no fallback there).
func TestFallbackBackOnlyUnderAsync(t *testing.T) {
	for _, c := range []struct {
		fallback config.AckFallback
		want     string
	}{{config.AckFallbackAsync, "semisync timeout 10000"}, {config.AckFallbackNone, ""}} {
		s := &fakeServer{}
		a := fakeActivities(map[string]*fakeServer{tCand.Addr(): s})
		cc := a.Config.Clusters["demo"]
		cc.AckFallback, cc.AckTimeout = c.fallback, 10*time.Second
		a.Config.Clusters["demo"] = cc
		if err := a.fallbackBack(context.Background(), "demo", s); err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(s.did, ","); got != c.want {
			t.Fatalf("under %s the node did %q; want %q", c.fallback, got, c.want)
		}
	}
}
