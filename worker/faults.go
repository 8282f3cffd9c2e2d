package main

import (
	"context"
	"os"
	"strings"
	"syscall"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/interceptor"

	"github.com/baton-db/baton/activities"
)

// crashHook is a fault-injection hook for the fault suite: when the file named by
// BATON_FAULT_CRASH_FILE names an activity type, the worker runs that activity and then
// SIGKILLs itself before reporting the result (once: the file is removed). The step's
// effect is applied but its completion is lost, so the retry must be idempotent.
// "before:" and a type kills the worker as that activity starts, before it does anything;
// "at:" a type, ":" and a fault point's name kills it there, inside the activity;
// "pause:" and the same holds the activity there: the hook writes "paused:" and the point
// into the file and waits until the file no longer says so (at most two minutes).
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
	ctx = activities.WithFaultPoint(ctx, func(point string) {
		c.crashIf("at:" + name + ":" + point)
		c.pauseIf(name + ":" + point)
	})
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

func (c *crashActivity) pauseIf(point string) {
	if b, err := os.ReadFile(c.file); err != nil || strings.TrimSpace(string(b)) != "pause:"+point {
		return
	}
	paused := "paused:" + point
	if os.WriteFile(c.file, []byte(paused), 0o644) != nil {
		return
	}
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if b, err := os.ReadFile(c.file); err != nil || strings.TrimSpace(string(b)) != paused {
			return
		}
	}
}
