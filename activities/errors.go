package activities

// The error types of Baton's steps (temporal.ApplicationError.Type). None is retried: each
// names something a retry cannot fix, and its message says what to do instead.
const (
	ErrUnknownCluster      = "UnknownCluster"      // the cluster is not in the config or in Consul
	ErrBadConfig           = "BadConfig"           // the cluster's config cannot be used
	ErrBadGTIDs            = "BadGTIDs"            // a GTID set that does not parse
	ErrUnknownNode         = "UnknownNode"         // a node that is not a member of the cluster
	ErrUnknownCandidate    = "UnknownCandidate"    // a requested candidate that is not a replica
	ErrCandidateIsPrimary  = "CandidateIsPrimary"  // the requested candidate is the primary already
	ErrCandidateBehind     = "CandidateBehind"     // the candidate did not catch up in time
	ErrCandidateLost       = "CandidateLost"       // the candidate stopped answering during the failover
	ErrErrantGTIDs         = "ErrantGTIDs"         // a node holds transactions the primary lacks
	ErrMissingOwnGTIDs     = "MissingOwnGTIDs"     // a node lacks its own transactions that the primary has
	ErrPreconditionFailed  = "PreconditionFailed"  // pre-failover checks failed (details: every failed check)
	ErrNoReplicas          = "NoReplicas"          // nothing to fail over to
	ErrNoCandidate         = "NoCandidate"         // no replica qualifies
	ErrNotEvicted          = "NotEvicted"          // rejoin of a node that is not evicted
	ErrEpochChanged        = "EpochChanged"        // someone else changed the topology meanwhile
	ErrRelayLogNotApplied  = "RelayLogNotApplied"  // the candidate did not apply its relay log in time
	ErrReplicationBroken   = "ReplicationBroken"   // a replica's SQL or IO thread stopped on an error
	ErrWouldDiscard        = "WouldDiscard"        // re-pointing a replica would discard transactions the new primary lacks
	ErrRoutingNotConverged = "RoutingNotConverged" // HAProxy did not reach the new primary in time
	ErrHeartbeatsStale     = "HeartbeatsStale"     // heartbeat agents did not write to the new primary
	ErrUndoUnsafe          = "UndoUnsafe"          // the undo would reopen a primary Consul no longer names
	ErrUnreachable         = "Unreachable"         // a node that must answer does not
	ErrHookVetoed          = "HookVetoed"          // a pre hook refused on purpose (HookVetoExitCode, HookVetoHTTPStatus)
	ErrHookFailed          = "HookFailed"          // a pre hook could not run or answer: not a veto
	ErrHookTimedOut        = "HookTimedOut"        // a hook did not answer within its timeout
	ErrNodeIsPrimary       = "NodeIsPrimary"       // an operation on replicas named the primary
	ErrLastAcker           = "LastAcker"           // removing the node would leave no replica that may acknowledge
	// The operator's verbs (activities/operator.go).
	ErrAmbiguousNode = "AmbiguousNode" // a node name that is not valid, or is in several clusters: name the cluster
	ErrNoDowntime    = "NoDowntime"    // `baton downtime end` of a node that has none
	ErrNothingToAck  = "NothingToAck"  // `baton ack` of a cluster with no unplanned failover
	// The cluster verbs (activities/add_cluster.go).
	ErrBadSettings   = "BadSettings"   // `baton cluster add`'s settings or addresses do not validate: nothing was changed (exit 2)
	ErrClusterExists = "ClusterExists" // `baton cluster add` of a cluster Consul already has: never overwritten
	ErrCannotOnboard = "CannotOnboard" // `baton cluster add`'s discovery found problems with the servers: nothing was written
	// `baton node add` and `node replace` (activities/add_node.go).
	ErrNodeRefused       = "NodeRefused"       // a new server that may not join: it does not answer, lacks a setting or an account, its name, address or server_id is taken, it replicates from elsewhere
	ErrNotCaughtUp       = "NotCaughtUp"       // a new node did not catch up with the primary in time (it is undone)
	ErrReplaceIncomplete = "ReplaceIncomplete" // node replace added the new node but did not remove the old one
)
