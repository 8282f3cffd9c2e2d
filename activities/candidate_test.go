package activities

import (
	"context"
	"strings"
	"testing"

	"github.com/baton-db/baton/internal/flavor"
	"github.com/baton-db/baton/internal/topology"
)

func gtids(t *testing.T, s string) flavor.GTIDSet {
	g, err := flavor.MariaDB{}.ParseGTIDs(s)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func TestChooseCandidate(t *testing.T) {
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
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			best, reports := ChooseCandidate(tc.obs, tc.policy)
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
