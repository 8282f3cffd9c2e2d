// Package activities holds Baton's runbook steps, the Temporal activities the workflows
// run, and what they need. It holds three kinds of thing:
//
//   - The registered steps: the exported methods of *Activities, one small file each (or
//     one file for a family of small ones: operator.go, add_cluster.go). The worker
//     registers *Activities, so every exported method of it is an activity, and its name is
//     the activity type recorded in workflow histories: renaming one breaks the replay of
//     recorded histories. Every step reads the state first and succeeds without acting when
//     its effect is already there, so a retry or a worker crash never applies a step twice.
//   - The steps' inputs and results (types.go, and the types beside each step) and the
//     error kinds (errors.go): the contract between the workflows and the steps, which the
//     CLI (starter/) imports too, to start the workflows and read what they return.
//   - Unexported helpers: the pure decisions (rankCandidates in candidate.go, the checks
//     in checks.go, the verdicts beside their steps) and what several steps share, as
//     unexported methods of *Activities (the MySQL pool in activities.go, observe,
//     inspect). Beside them, the seams unit tests fake (Topology, Catalog, server.go's
//     Server and Dialer) and the fault suite's hook (fault_point.go).
//
// Local is the same *Activities called in this process rather than by a workflow, and holds
// what is not a step (AddClusterSteps, Close); the worker never registers it. The CLI's
// --local bootstrap (starter/cluster.go: `baton cluster add --local`, `cluster list
// --local`) runs before any worker does, so no worker can run the AddCluster workflow yet.
// It calls the same steps, with this process's full config, rather than a second
// implementation of them: a cluster added by hand passes the same checks and gets the same
// seed and catalog entry as one added by the workflow.
package activities
