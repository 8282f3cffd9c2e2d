package start

// AddNode is the workflow type of `baton node add` and `baton node replace` (one run for a
// replacement: the new node added, then the old one removed). It is started under the
// cluster's WorkflowID, like RemoveNode, so it never runs beside a switchover, a failover,
// a rejoin or a removal of the cluster. A dead primary's failover must preempt it as it
// preempts those (StartFailover cancels it; the workflow undoes an attach that is not
// registered yet, and stops by itself when the primary stops answering).
const AddNode = "AddNode"
