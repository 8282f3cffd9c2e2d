package fleet

import (
	"fmt"
	"testing"
)

func shardNames(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("s%04d", i)
	}
	return out
}

// The plan splits the shards evenly, at most a share each; when a member dies only its
// shards move, split between the survivors.
func TestPlanSplitsEvenlyAndMovesOnlyTheDeadOnes(t *testing.T) {
	order, members := shardNames(Shards), []string{"bench-1", "bench-2", "bench-3"}
	share := (len(order) + 2) / 3
	first := plan(order, members, map[string]string{}, share)
	count := map[string]int{}
	for _, sh := range order {
		count[first[sh]]++
	}
	for _, m := range members {
		if count[m] < share-len(members) || count[m] > share {
			t.Fatalf("plan gives %v; want about %d each, at most %d", count, len(order)/3, share)
		}
	}
	if count[""] != 0 {
		t.Fatalf("plan leaves %d shards to nobody", count[""])
	}
	holder := map[string]string{} // as taken, with bench-1 dead
	for sh, m := range first {
		if m != "bench-1" {
			holder[sh] = m
		}
	}
	share2 := (len(order) + 1) / 2
	after := plan(order, members[1:], holder, share2)
	got := map[string]int{}
	for _, sh := range order {
		if first[sh] != "bench-1" && after[sh] != first[sh] {
			t.Fatalf("%s moved from %s to %s though %s is alive", sh, first[sh], after[sh], first[sh])
		}
		if first[sh] == "bench-1" {
			got[after[sh]]++
		}
	}
	if got["bench-2"]+got["bench-3"] != count["bench-1"] || got["bench-2"] < count["bench-1"]/3 || got["bench-3"] < count["bench-1"]/3 {
		t.Fatalf("the dead member's %d shards went %v; want them split between the survivors", count["bench-1"], got)
	}
}

// A detector over its share gives back; a held shard is never planned for anybody else
// while its holder has room.
func TestPlanRespectsHoldersAndShares(t *testing.T) {
	order := shardNames(10)
	holder := map[string]string{}
	for _, sh := range order {
		holder[sh] = "a" // a held everything while alone
	}
	p := plan(order, []string{"a", "b"}, holder, 5)
	n := 0
	for _, sh := range order {
		if p[sh] == "a" {
			n++
		}
	}
	if n != 5 {
		t.Fatalf("a keeps %d of 10 shards with b joined; want 5", n)
	}
}

// Ten thousand clusters fill the shards evenly enough for fair shares of shards to be fair
// shares of clusters.
func TestShardsAreEven(t *testing.T) {
	count := map[string]int{}
	for i := 0; i < 10000; i++ {
		count[Shard(fmt.Sprintf("c%05d", i))]++
	}
	most := 0
	for _, n := range count {
		most = max(most, n)
	}
	if len(count) < Shards*99/100 || most > 30 {
		t.Fatalf("10000 clusters in %d shards, at most %d in one", len(count), most)
	}
	if Shard("demo") == Shard("demo2") {
		t.Fatal("the sandbox's two clusters share a shard: the fleet test needs them apart")
	}
}
