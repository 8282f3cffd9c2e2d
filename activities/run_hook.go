package activities

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/baton-db/baton/internal/config"
)

// HookRef names one configured hook at one point, with its timing: what a workflow needs
// to run it. The command or URL stays in the worker's config.
type HookRef struct {
	Name     string
	Point    config.HookPoint
	Timeout  time.Duration
	Attempts int
}

// Event is what a hook receives, as JSON on stdin or as the webhook's body.
type Event struct {
	Cluster     string           `json:"cluster"`
	Point       config.HookPoint `json:"point"`
	Kind        string           `json:"kind"` // planned or unplanned
	OldPrimary  string           `json:"old_primary"`
	NewPrimary  string           `json:"new_primary"`
	Epoch       uint64           `json:"epoch"`
	Reason      string           `json:"reason"`
	Error       string           `json:"error,omitempty"` // what went wrong (post-unsuccessful-failover)
	RequestedBy string           `json:"requested_by"`
	WorkflowID  string           `json:"workflow_id"`
	RunID       string           `json:"run_id"`
	At          time.Time        `json:"at"`

	// HookProblems (post-failover, post-unsuccessful-failover) are the pre-failover hooks
	// the failover went on without, one per line: each did not answer within its timeout,
	// or failed without vetoing. A string, so that an Event stays comparable.
	HookProblems string `json:"hook_problems,omitempty"`
	// LeftOut (post-failover) is what the failover could not bring along, one per line: a
	// replica not reparented, transactions only a lost or unreachable node may hold
	// (acknowledged writes may be among them).
	LeftOut string `json:"left_out,omitempty"`
}

// HookInput runs one hook.
type HookInput struct {
	Hook  string
	Event Event
}

// hooks returns the hooks of cluster at every point, for a workflow to run.
// ClusterHooks returns the cluster's configured hooks (names and timing only), for a
// workflow that runs hooks and nothing else (DurabilityChanged).
func (a *Activities) ClusterHooks(_ context.Context, cluster string) ([]HookRef, error) {
	return a.hooks(cluster), nil
}

func (a *Activities) hooks(cluster string) []HookRef {
	var out []HookRef
	for _, p := range config.HookPoints {
		for _, h := range a.Config.Hooks(cluster, p) {
			out = append(out, HookRef{Name: h.Name, Point: p, Timeout: h.TimeoutOrDefault(), Attempts: h.AttemptsAt(p)})
		}
	}
	return out
}

// hookOutputLimit bounds what a hook's output adds to an error message.
const hookOutputLimit = 512

// A pre hook vetoes only on purpose, with a reserved answer: a command by exiting with
// HookVetoExitCode, a webhook by answering HookVetoHTTPStatus (409 Conflict). 42 is not
// among the statuses a broken hook script usually ends with (1, 2, curl's 3, 6, 7, 22 or
// 28, a shell's 126 and 127, 128+n for a signal), so a script that breaks does not veto.
const (
	HookVetoExitCode   = 42
	HookVetoHTTPStatus = http.StatusConflict
)

// hookVeto is a hook's explicit veto: the reserved exit status or HTTP answer.
type hookVeto struct{ error }

func (v hookVeto) Unwrap() error { return v.error }

// RunHook runs one hook with the event. A pre hook that answers with the reserved veto
// (HookVetoExitCode, HookVetoHTTPStatus) vetoes the operation: the error is ErrHookVetoed.
// A pre hook that fails otherwise (another exit status, a program that cannot start, a
// webhook that cannot be reached or answers another non-2xx status) could not run: the
// error is ErrHookFailed, which the workflow does not take for a veto. Neither is retried,
// and both name the hook and quote its output. A post hook's failure, whatever it is, is
// retried by its attempts and then reported; it never undoes anything.
func (a *Activities) RunHook(ctx context.Context, in HookInput) error {
	h, ok := a.Config.Hook(in.Event.Cluster, in.Hook)
	if !ok {
		return nonRetryable(ErrBadConfig, "hook %q is not configured for cluster %s (it was when the run began): check hooks: in the worker's config", in.Hook, in.Event.Cluster)
	}
	body, err := json.Marshal(in.Event)
	if err != nil {
		return nonRetryable(ErrBadConfig, "hook %s: %v", in.Hook, err)
	}
	body = append(body, '\n')
	// The hook's own timeout, kept here: Temporal's timeout for the attempt is longer, so an
	// attempt whose answer Temporal lost (a restart) is told apart from a hook that hung.
	hctx, cancel := context.WithTimeout(ctx, h.TimeoutOrDefault())
	defer cancel()
	if len(h.Command) > 0 {
		err = runCommand(hctx, h.Command, body, in.Event)
	} else {
		err = postWebhook(hctx, h.URL, body)
	}
	if err == nil {
		logger(ctx).Info("hook ran", "hook", in.Hook, "point", in.Event.Point, "cluster", in.Event.Cluster)
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	var veto hookVeto
	if in.Event.Point.Pre() && errors.As(err, &veto) {
		return nonRetryable(ErrHookVetoed, "%s hook %q vetoed the %s of %s: %v", in.Event.Point, in.Hook, operation(in.Event.Kind), in.Event.Cluster, err)
	}
	if hctx.Err() != nil { // a pre hook that hangs: the workflow decides; a post hook's is retried
		msg := fmt.Sprintf("%s hook %q did not answer within %s", in.Event.Point, in.Hook, h.TimeoutOrDefault())
		if in.Event.Point.Pre() {
			return temporal.NewNonRetryableApplicationError(msg, ErrHookTimedOut, nil)
		}
		return temporal.NewApplicationError(msg, ErrHookTimedOut)
	}
	if in.Event.Point.Pre() {
		return nonRetryable(ErrHookFailed, "%s hook %q failed, which is not a veto (only exit status %d or HTTP %d vetoes): %v",
			in.Event.Point, in.Hook, HookVetoExitCode, HookVetoHTTPStatus, err)
	}
	return fmt.Errorf("%s hook %q failed: %w", in.Event.Point, in.Hook, err)
}

func operation(kind string) string {
	if kind == "planned" {
		return "switchover"
	}
	return "failover"
}

// runCommand runs argv with the event on stdin and in BATON_* variables. The whole
// process group is killed when ctx ends, so a shell's children cannot outlive the hook.
func runCommand(ctx context.Context, argv []string, body []byte, ev Event) error {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stdin = bytes.NewReader(body)
	cmd.Env = append(os.Environ(),
		"BATON_CLUSTER="+ev.Cluster, "BATON_HOOK_POINT="+string(ev.Point), "BATON_KIND="+ev.Kind,
		"BATON_OLD_PRIMARY="+ev.OldPrimary, "BATON_NEW_PRIMARY="+ev.NewPrimary, fmt.Sprintf("BATON_EPOCH=%d", ev.Epoch),
		"BATON_WORKFLOW_ID="+ev.WorkflowID, "BATON_RUN_ID="+ev.RunID)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	if err == nil {
		return nil
	}
	if msg := tail(out.String()); msg != "" {
		err = fmt.Errorf("%w: %s", err, msg)
	}
	var exit *exec.ExitError
	if errors.As(err, &exit) && exit.ExitCode() == HookVetoExitCode {
		return hookVeto{err}
	}
	return err
}

// postWebhook POSTs the event. Errors never carry the URL: it may hold a token.
func postWebhook(ctx context.Context, rawURL string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, rawURL, bytes.NewReader(body))
	if err != nil {
		return errors.New("the webhook URL does not parse")
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "baton-hook")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return fmt.Errorf("webhook: %w", err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, hookOutputLimit))
	if resp.StatusCode/100 != 2 {
		err := fmt.Errorf("webhook answered %s: %s", resp.Status, tail(string(msg)))
		if resp.StatusCode == HookVetoHTTPStatus {
			return hookVeto{err}
		}
		return err
	}
	return nil
}

func tail(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > hookOutputLimit {
		s = "..." + s[len(s)-hookOutputLimit:]
	}
	return s
}
