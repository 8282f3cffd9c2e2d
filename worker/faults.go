package main

import (
	"context"
	"os"
	"strings"
	"syscall"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/interceptor"
)

// crashHook is a fault-injection hook for the fault suite: when the file named by
// BATON_FAULT_CRASH_FILE names an activity type, the worker runs that activity and then
// SIGKILLs itself before reporting the result (once: the file is removed). The step's
// effect is applied but its completion is lost, so the retry must be idempotent.
// "before:" and a type kills the worker as that activity starts, before it does anything.
type crashHook struct {
	interceptor.WorkerInterceptorBase
	file string
}

func (h *crashHook) InterceptActivity(ctx context.Context, next interceptor.ActivityInboundInterceptor) interceptor.ActivityInboundInterceptor {
	i := &crashActivity{file: h.file}
	i.Next = next
	return i
}

type crashActivity struct {
	interceptor.ActivityInboundInterceptorBase
	file string
}

func (c *crashActivity) ExecuteActivity(ctx context.Context, in *interceptor.ExecuteActivityInput) (any, error) {
	name := activity.GetInfo(ctx).ActivityType.Name
	c.crashIf("before:" + name)
	res, err := c.Next.ExecuteActivity(ctx, in)
	c.crashIf(name)
	return res, err
}

func (c *crashActivity) crashIf(want string) {
	if b, err := os.ReadFile(c.file); err == nil && strings.TrimSpace(string(b)) == want {
		_ = os.Remove(c.file)
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	}
}
