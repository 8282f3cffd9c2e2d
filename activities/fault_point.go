package activities

import "context"

// A fault point marks a moment inside a step where the fault suite may crash the worker
// (worker/faults.go, enabled only by BATON_FAULT_CRASH_FILE): a step's effects are then
// half applied, as after a real crash there. Production workers set none.
type faultPointKey struct{}

// WithFaultPoint returns ctx with hit, called with the name of every fault point passed.
func WithFaultPoint(ctx context.Context, hit func(point string)) context.Context {
	return context.WithValue(ctx, faultPointKey{}, hit)
}

func faultPoint(ctx context.Context, point string) {
	if hit, ok := ctx.Value(faultPointKey{}).(func(string)); ok {
		hit(point)
	}
}
