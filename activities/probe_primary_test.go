package activities

import (
	"context"
	"strings"
	"testing"
)

// The workflow's own probe takes a primary that answers as alive only if it still is one: a
// node restarted in place answers read-only, and may lack what a replica holds.
func TestProbePrimaryTellsARestartedPrimaryFromALiveOne(t *testing.T) {
	plan := Plan{Cluster: "demo", OldPrimary: tPrimary, Candidate: tCand,
		Replicas: []ReplicaReport{{Node: tCand, GTIDs: "0-101-20"}}}
	cases := []struct {
		name    string
		primary *fakeServer
		answers bool
		why     string
	}{
		{"stalled and back: writable, holds everything", &fakeServer{writable: true, executed: "0-101-20"}, true, "answers again"},
		{"restarted: read-only", &fakeServer{executed: "0-101-20"}, false, "read-only"},
		{"restarted and made writable by hand, its binlog truncated", &fakeServer{writable: true, executed: "0-101-17"}, false, "lacks 0-101-20 that node2 holds"},
		{"dead", &fakeServer{down: true}, false, "does not answer"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := fakeActivities(map[string]*fakeServer{tPrimary.Addr(): c.primary})
			res, err := a.ProbePrimary(context.Background(), plan)
			if err != nil {
				t.Fatal(err)
			}
			if res.Answers != c.answers || !strings.Contains(res.Why, c.why) {
				t.Fatalf("answers=%v %q; want answers=%v and %q", res.Answers, res.Why, c.answers, c.why)
			}
		})
	}
}
