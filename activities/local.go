package activities

// Local is the same *Activities, called in this process rather than by a workflow: by the
// CLI's --local bootstrap, the bench, and the worker when it stops. The worker registers
// *Activities, and every exported method of *Activities becomes an activity; it never
// registers Local, so what is not a step is a method of Local: AddClusterSteps (the AddCluster
// workflow's steps in one process) and Close.
type Local struct{ *Activities }

// Close releases every pooled MySQL connection.
func (a Local) Close() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for k, c := range a.clients {
		_ = c.Close()
		delete(a.clients, k)
	}
}
