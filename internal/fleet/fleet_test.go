package fleet

import (
	"fmt"
	"testing"
)

// The preferred watchers split the clusters evenly, and when a member leaves only its
// clusters move: each survivor keeps its own and gets a part of the dead one's.
func TestPreferredSplitsEvenlyAndMovesOnlyTheDeadOnes(t *testing.T) {
	clusters := make([]string, 10000)
	for i := range clusters {
		clusters[i] = fmt.Sprintf("c%05d", i)
	}
	members := []string{"bench-1", "bench-2", "bench-3"}
	before, count := map[string]string{}, map[string]int{}
	for _, c := range clusters {
		before[c] = preferred(c, members)
		count[before[c]]++
	}
	for _, m := range members {
		if n := count[m]; n < 3000 || n > 3667 {
			t.Errorf("%s is preferred for %d of 10000 clusters; want about 3333", m, n)
		}
	}
	got := map[string]int{}
	for _, c := range clusters {
		after := preferred(c, members[1:])
		if before[c] != "bench-1" && after != before[c] {
			t.Fatalf("%s moved from %s to %s though %s is alive", c, before[c], after, before[c])
		}
		if before[c] == "bench-1" {
			got[after]++
		}
	}
	if got["bench-2"] < count["bench-1"]*2/5 || got["bench-3"] < count["bench-1"]*2/5 {
		t.Errorf("the dead member's clusters split %v; want about half each", got)
	}
}

// free offers this detector's preferred clusters first, and others only once they were
// free at the previous listing too.
func TestFreeOffersPreferredFirst(t *testing.T) {
	f := &Fleet{ID: "a", Clusters: []string{"c1", "c2", "c3", "c4", "c5", "c6", "c7", "c8"}}
	members := []string{"a", "b"}
	locks := map[string]string{"c1": "s"}
	first := f.free(locks, members, map[string]bool{})
	for _, c := range first {
		if preferred(c, members) != "a" || c == "c1" {
			t.Fatalf("first listing offers %v: %s is not a's preferred free cluster", first, c)
		}
	}
	again := f.free(locks, members, map[string]bool{"c2": true, "c3": true, "c4": true, "c5": true, "c6": true, "c7": true, "c8": true})
	if len(again) != 7 {
		t.Fatalf("second listing offers %v; want every free cluster", again)
	}
}
