package config

import (
	"fmt"
	"net/url"
	"slices"
	"time"
)

// HookPoint is when a hook runs.
type HookPoint string

// The hook points. A pre hook may veto, on purpose only (a command's exit status 42, a
// webhook's 409: activities.HookVetoExitCode, HookVetoHTTPStatus); a post hook only reports.
const (
	PreFailover              HookPoint = "pre-failover"
	PostFailover             HookPoint = "post-failover"
	PostUnsuccessfulFailover HookPoint = "post-unsuccessful-failover"
	PreSwitchover            HookPoint = "pre-switchover"
	PostSwitchover           HookPoint = "post-switchover"
	// DurabilityDegraded and DurabilityRestored run when the detector records that the
	// primary acknowledges writes without the copy the durability policy promises, and when
	// that ends (docs/runbook.md §5, "durability never degrades in silence").
	DurabilityDegraded      HookPoint = "durability-degraded"
	DurabilityRestored      HookPoint = "durability-restored"
	defaultHookTimeout                = 10 * time.Second
	defaultPostHookAttempts           = 3
)

// HookPoints lists every hook point.
var HookPoints = []HookPoint{PreFailover, PostFailover, PostUnsuccessfulFailover, PreSwitchover, PostSwitchover, DurabilityDegraded, DurabilityRestored}

// Pre reports whether hooks at p may veto the operation.
func (p HookPoint) Pre() bool { return p == PreFailover || p == PreSwitchover }

// Hook is a command or an HTTP webhook run at some hook points, with the event as JSON
// (on stdin, or as the POST body). Its command and URL stay in the worker's config: only
// its name, point and timing reach a workflow.
type Hook struct {
	Name    string      `mapstructure:"name"`
	On      []HookPoint `mapstructure:"on"`
	Command []string    `mapstructure:"command"`
	URL     string      `mapstructure:"url"`
	// Timeout bounds each attempt of the hook (default 10s).
	Timeout time.Duration `mapstructure:"timeout"`
	// Attempts is how many times a failing hook is tried (default 1 for a pre hook, whose
	// veto or failure is not retried, and 3 for a post hook).
	Attempts int `mapstructure:"attempts"`
}

// AttemptsAt is the hook's attempts at point p, its default applied.
func (h Hook) AttemptsAt(p HookPoint) int {
	switch {
	case h.Attempts > 0:
		return h.Attempts
	case p.Pre():
		return 1
	}
	return defaultPostHookAttempts
}

// TimeoutOrDefault is the hook's timeout, its default applied.
func (h Hook) TimeoutOrDefault() time.Duration {
	if h.Timeout > 0 {
		return h.Timeout
	}
	return defaultHookTimeout
}

// Hooks returns the hooks of cluster that run at p: the global ones first, then the
// cluster's own, in the order configured.
func (c *Config) Hooks(cluster string, p HookPoint) []Hook {
	var out []Hook
	for _, h := range append(slices.Clone(c.GlobalHooks), c.Clusters[cluster].Hooks...) {
		if slices.Contains(h.On, p) {
			out = append(out, h)
		}
	}
	return out
}

// Hook finds a hook of cluster by name.
func (c *Config) Hook(cluster, name string) (Hook, bool) {
	for _, h := range append(slices.Clone(c.GlobalHooks), c.Clusters[cluster].Hooks...) {
		if h.Name == name {
			return h, true
		}
	}
	return Hook{}, false
}

// validateHooks checks a hook list under key and returns every problem. seen holds the
// names already taken (the global hooks, for a cluster's).
func validateHooks(key string, hooks []Hook, seen map[string]bool) []error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	for i, h := range hooks {
		k := fmt.Sprintf("%s[%d]", key, i)
		if !ValidName(h.Name) {
			add("%s.name: %q must match %s", k, h.Name, nameRE)
		} else if seen[h.Name] {
			add("%s.name: %q is used by another hook; give each hook its own name", k, h.Name)
		}
		seen[h.Name] = true
		if len(h.On) == 0 {
			add("%s.on: list when it runs, from %v", k, HookPoints)
		}
		for _, p := range h.On {
			if err := oneOf(k+".on", p, HookPoints...); err != nil {
				errs = append(errs, err)
			}
		}
		switch {
		case len(h.Command) > 0 && h.URL != "":
			add("%s: set command or url, not both", k)
		case len(h.Command) == 0 && h.URL == "":
			add("%s: set command (a list: program and arguments) or url (an http(s) webhook)", k)
		case len(h.Command) > 0 && h.Command[0] == "":
			add("%s.command: the program is empty", k)
		case h.URL != "":
			if u, err := url.Parse(h.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				add("%s.url: not an http:// or https:// URL", k) // the URL may hold a token: not echoed
			}
		}
		if h.Timeout < 0 {
			add("%s.timeout: must not be negative, got %s", k, h.Timeout)
		}
		if h.Attempts < 0 {
			add("%s.attempts: must not be negative, got %d", k, h.Attempts)
		}
	}
	return errs
}
