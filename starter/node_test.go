package main

import "testing"

// node add and node replace judge their own input before they reach Temporal: a malformed
// name, zone, address or bound is usage (exit 2), no --as a refusal (exit 3).
func TestNodeAddInputRefusals(t *testing.T) {
	add := func(extra ...string) []string {
		return append([]string{"node", "add", "--cluster", "demo", "--host", "node6", "--addr", "127.0.1.6:3306", "--zone", "a"}, extra...)
	}
	for _, c := range []struct {
		args []string
		want int
	}{
		{[]string{"node", "add", "--cluster", "demo", "--host", "Node 6", "--addr", "127.0.1.6:3306", "--zone", "a"}, exitUsage},
		{[]string{"node", "add", "--cluster", "demo", "--host", "node6", "--addr", "127.0.1.6", "--zone", "a"}, exitUsage},
		{[]string{"node", "add", "--cluster", "demo", "--host", "node6", "--addr", "127.0.1.6:3306", "--zone", "Zone A"}, exitUsage},
		{[]string{"node", "add", "--cluster", "demo", "--host", "node6", "--addr", "127.0.1.6:3306"}, exitUsage}, // --zone is required
		{add("--max-catchup", "0s"), exitUsage},
		{add("--as", " "), exitRefused},
		{[]string{"node", "replace", "--cluster", "demo", "--host", "node6", "--addr", "127.0.1.7:3306", "--zone", "b"}, exitUsage}, // --with is required
		{[]string{"node", "replace", "--cluster", "demo", "--host", "node6", "--with", "node7", "--addr", "127.0.1.7:3306", "--zone", "b", "--as", ""}, exitRefused},
	} {
		if code, out := run(t, c.args...); code != c.want {
			t.Errorf("baton %v: exit %d, want %d\n%s", c.args, code, c.want, out)
		}
	}
}
