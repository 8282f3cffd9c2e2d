package detect

import "testing"

func TestClassify(t *testing.T) {
	yes, no := true, false
	up := ReplicaView{Name: "r1", Reachable: true, IOConnected: true, IOState: "Yes"}
	lost := ReplicaView{Name: "r2", Reachable: true, IOState: "Connecting", IOError: "error reconnecting"}
	agentDown := ReplicaView{Name: "r3", Reachable: true, IOConnected: true, IOState: "Yes", AgentOK: &no}
	agentDownIOLost := ReplicaView{Name: "r3", Reachable: true, IOState: "Connecting", AgentOK: &no}
	agentUp := ReplicaView{Name: "r4", Reachable: true, IOConnected: true, IOState: "Yes", AgentOK: &yes}
	gone := ReplicaView{Name: "r5"}
	cases := []struct {
		name string
		e    Evidence
		want Verdict
	}{
		{"detector reaches it", Evidence{Reaches: true, ProbeFailures: 5, Threshold: 3}, Healthy},
		{"one probe failed (slow primary)", Evidence{ProbeFailures: 1, Threshold: 3, Replicas: []ReplicaView{lost}}, Suspect},
		{"crash: connection dropped, IO threads lost", Evidence{ConnDropped: true, Threshold: 3, Replicas: []ReplicaView{lost, lost}}, DeadPrimary},
		{"silent host: probes time out, agents cannot reach it, IO threads noticed", Evidence{ProbeFailures: 3, Threshold: 3, Replicas: []ReplicaView{agentDownIOLost, agentDownIOLost}}, DeadPrimary},
		{"the agents' failed connects outvote IO threads still shown running", Evidence{ProbeFailures: 3, Threshold: 3, Replicas: []ReplicaView{agentDown, agentDown}}, DeadPrimary},
		{"a stall: agents still connect, IO threads connected", Evidence{ProbeFailures: 3, Threshold: 3, Replicas: []ReplicaView{agentUp, agentUp}}, UnreachablePrimary},
		{"only the detector is cut off", Evidence{ProbeFailures: 3, Threshold: 3, Replicas: []ReplicaView{up, agentUp}}, UnreachablePrimary},
		{"one replica still connected", Evidence{ConnDropped: true, Threshold: 3, Replicas: []ReplicaView{lost, up}}, UnreachablePrimary},
		{"no replica reachable to vouch", Evidence{ConnDropped: true, Threshold: 3, Replicas: []ReplicaView{gone}}, UnreachablePrimary},
		{"no replicas at all", Evidence{ConnDropped: true, Threshold: 3}, UnreachablePrimary},
		{"zone outage: the primary's zone mate is gone too", Evidence{ProbeFailures: 3, Threshold: 3, PrimaryZone: "a",
			Replicas: []ReplicaView{{Name: "r6", Zone: "a"}, {Name: "r7", Zone: "b", Reachable: true, IOState: "Connecting"}}}, DeadPrimary},
		{"zone outage seen by nobody: only the primary's zone mate, unreachable", Evidence{ProbeFailures: 3, Threshold: 3, PrimaryZone: "a",
			Replicas: []ReplicaView{{Name: "r6", Zone: "a"}}}, UnreachablePrimary},
		{"a replica in another zone unreachable: it cannot vouch", Evidence{ProbeFailures: 3, Threshold: 3, PrimaryZone: "a",
			Replicas: []ReplicaView{{Name: "r6", Zone: "b"}, {Name: "r7", Zone: "b", Reachable: true, IOState: "Connecting"}}}, UnreachablePrimary},
		{"zone outage while the survivor's IO thread still says Yes", Evidence{ProbeFailures: 3, Threshold: 3, PrimaryZone: "a",
			Replicas: []ReplicaView{{Name: "r6", Zone: "a"}, {Name: "r7", Zone: "b", Reachable: true, IOConnected: true, IOState: "Yes"}}}, UnreachablePrimary},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, why := Classify(c.e)
			if got != c.want {
				t.Fatalf("got %s (%s), want %s", got, why, c.want)
			}
			if why == "" {
				t.Fatal("no reason given")
			}
		})
	}
}
