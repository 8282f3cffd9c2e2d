package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/baton-db/baton/internal/config"
)

func hookActivities(hooks ...config.Hook) *Activities {
	return &Activities{Config: &config.Config{GlobalHooks: hooks, Clusters: map[string]config.ClusterConfig{"demo": {}}}}
}

func TestRunHookCommandGetsTheEvent(t *testing.T) {
	out := filepath.Join(t.TempDir(), "event")
	a := hookActivities(config.Hook{Name: "rec", On: []config.HookPoint{config.PostFailover},
		Command: []string{"sh", "-c", `cat > "$1"; echo "$BATON_CLUSTER $BATON_NEW_PRIMARY $BATON_EPOCH" >> "$1"`, "sh", out}})
	ev := Event{Cluster: "demo", Point: config.PostFailover, Kind: "unplanned", OldPrimary: "node1", NewPrimary: "node2", Epoch: 7}
	if err := a.RunHook(context.Background(), HookInput{Hook: "rec", Event: ev}); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(out)
	lines := strings.SplitN(string(b), "\n", 2)
	var got Event
	if err := json.Unmarshal([]byte(lines[0]), &got); err != nil || got.NewPrimary != "node2" || got.Epoch != 7 {
		t.Fatalf("stdin %q: %v", lines[0], err)
	}
	if strings.TrimSpace(lines[1]) != "demo node2 7" {
		t.Fatalf("environment %q", lines[1])
	}
}

func TestRunHookPreFailureIsAVetoNamingTheHook(t *testing.T) {
	a := hookActivities(config.Hook{Name: "freeze", On: []config.HookPoint{config.PreSwitchover},
		Command: []string{"sh", "-c", fmt.Sprintf("echo change freeze >&2; exit %d", HookVetoExitCode)}})
	err := a.RunHook(context.Background(), HookInput{Hook: "freeze", Event: Event{Cluster: "demo", Point: config.PreSwitchover, Kind: "planned"}})
	var app *temporal.ApplicationError
	if !asApp(err, &app) || app.Type() != ErrHookVetoed || !app.NonRetryable() {
		t.Fatalf("want a non-retryable %s, got %v", ErrHookVetoed, err)
	}
	for _, want := range []string{`pre-switchover hook "freeze" vetoed the switchover of demo`, fmt.Sprintf("exit status %d", HookVetoExitCode), "change freeze"} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("%q lacks %q", err, want)
		}
	}
	// A post hook's failure is retryable, not a veto.
	a = hookActivities(config.Hook{Name: "page", On: []config.HookPoint{config.PostFailover}, Command: []string{"false"}})
	err = a.RunHook(context.Background(), HookInput{Hook: "page", Event: Event{Cluster: "demo", Point: config.PostFailover}})
	if err == nil || asApp(err, &app) {
		t.Fatalf("post hook failure: want a plain retryable error, got %v", err)
	}
}

func TestRunHookKillsAHungCommandAndItsChildren(t *testing.T) {
	a := hookActivities(config.Hook{Name: "hang", On: []config.HookPoint{config.PreFailover}, Command: []string{"sh", "-c", "sleep 30; true"}})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := a.RunHook(ctx, HookInput{Hook: "hang", Event: Event{Cluster: "demo", Point: config.PreFailover}})
	if err == nil || time.Since(start) > 2*time.Second {
		t.Fatalf("hung hook: err %v after %s", err, time.Since(start))
	}
}

func TestRunHookWebhook(t *testing.T) {
	var got Event
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(b, &got)
		if r.Header.Get("Content-Type") != "application/json" || r.Method != http.MethodPost {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		if got.Point == config.PreFailover {
			http.Error(w, "on-call says no", http.StatusConflict)
		}
	}))
	defer srv.Close()
	url := srv.URL + "/hook?token=s3cret"
	a := hookActivities(config.Hook{Name: "chat", On: config.HookPoints, URL: url})
	ev := Event{Cluster: "demo", Point: config.PostSwitchover, Kind: "planned", OldPrimary: "node1", NewPrimary: "node3", Epoch: 4, WorkflowID: "failover/demo"}
	if err := a.RunHook(context.Background(), HookInput{Hook: "chat", Event: ev}); err != nil {
		t.Fatal(err)
	}
	if got != ev {
		t.Fatalf("webhook body %+v, want %+v", got, ev)
	}
	ev.Point = config.PreFailover
	err := a.RunHook(context.Background(), HookInput{Hook: "chat", Event: ev})
	var app *temporal.ApplicationError
	if !asApp(err, &app) || app.Type() != ErrHookVetoed || !strings.Contains(err.Error(), "409") || !strings.Contains(err.Error(), "on-call says no") {
		t.Fatalf("a 409 from a pre hook: want a veto with the answer, got %v", err)
	}
	srv.Close()
	ev.Point = config.PostFailover
	err = a.RunHook(context.Background(), HookInput{Hook: "chat", Event: ev})
	if err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("unreachable webhook: want an error without the URL's token, got %v", err)
	}
}

func asApp(err error, app **temporal.ApplicationError) bool { return errors.As(err, app) }

// A hook that hangs is cut at its own timeout by RunHook, which says so: the workflow can
// tell it from an attempt Temporal lost. A pre hook's hang is not retried; a post hook's is.
func TestRunHookHangIsItsOwnTimeout(t *testing.T) {
	for _, p := range []config.HookPoint{config.PreSwitchover, config.PostSwitchover} {
		a := hookActivities(config.Hook{Name: "slow", On: []config.HookPoint{p}, Timeout: 200 * time.Millisecond, Command: []string{"sleep", "5"}})
		start := time.Now()
		err := a.RunHook(context.Background(), HookInput{Hook: "slow", Event: Event{Cluster: "demo", Point: p, Kind: "planned"}})
		var app *temporal.ApplicationError
		if !asApp(err, &app) || app.Type() != ErrHookTimedOut || app.NonRetryable() != p.Pre() || time.Since(start) > 2*time.Second {
			t.Fatalf("%s: want a %s (non-retryable: %v) after 200ms, got %v after %s", p, ErrHookTimedOut, p.Pre(), err, time.Since(start))
		}
	}
}

// A pre hook vetoes only on purpose: a command by exiting with HookVetoExitCode, a webhook
// by answering HookVetoHTTPStatus. Anything else (another exit status, a program that
// cannot start, an error answer, a webhook that cannot be reached) is a hook that could
// not run: ErrHookFailed, not retried, never taken for a veto.
func TestRunHookVetoesOnlyOnPurpose(t *testing.T) {
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedURL := "http://" + closed.Addr().String() + "/hook?token=s3cret"
	_ = closed.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/veto":
			http.Error(w, "change freeze until 18:00", HookVetoHTTPStatus)
		case "/broken":
			http.Error(w, "internal error", http.StatusInternalServerError)
		case "/gone":
			http.Error(w, "no such hook", http.StatusNotFound)
		}
	}))
	defer srv.Close()
	for _, c := range []struct {
		name    string
		hook    config.Hook
		want    string
		mention []string
	}{
		{"exit with the veto status", config.Hook{Command: []string{"sh", "-c", fmt.Sprintf("echo frozen >&2; exit %d", HookVetoExitCode)}},
			ErrHookVetoed, []string{"vetoed the failover of demo", "frozen"}},
		{"exit 1", config.Hook{Command: []string{"sh", "-c", "echo oops >&2; exit 1"}}, ErrHookFailed, []string{"exit status 1", "oops"}},
		{"exit 2", config.Hook{Command: []string{"sh", "-c", "exit 2"}}, ErrHookFailed, []string{"exit status 2"}},
		{"missing binary", config.Hook{Command: []string{"/nonexistent/baton-hook"}}, ErrHookFailed, []string{"/nonexistent/baton-hook"}},
		{"shell cannot find the program", config.Hook{Command: []string{"sh", "-c", "baton-no-such-program"}}, ErrHookFailed, []string{"exit status 127"}},
		{"webhook answers the veto status", config.Hook{URL: srv.URL + "/veto"}, ErrHookVetoed, []string{"409", "change freeze until 18:00"}},
		{"webhook answers 500", config.Hook{URL: srv.URL + "/broken"}, ErrHookFailed, []string{"500", "internal error"}},
		{"webhook answers 404", config.Hook{URL: srv.URL + "/gone"}, ErrHookFailed, []string{"404"}},
		{"webhook on a closed port", config.Hook{URL: closedURL}, ErrHookFailed, []string{"refused"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := c.hook
			h.Name, h.On = "gate", []config.HookPoint{config.PreFailover, config.PreSwitchover}
			a := hookActivities(h)
			err := a.RunHook(context.Background(), HookInput{Hook: "gate", Event: Event{Cluster: "demo", Point: config.PreFailover, Kind: "unplanned"}})
			var app *temporal.ApplicationError
			if !asApp(err, &app) || app.Type() != c.want || !app.NonRetryable() {
				t.Fatalf("want a non-retryable %s, got %v", c.want, err)
			}
			if !strings.Contains(err.Error(), `pre-failover hook "gate"`) {
				t.Fatalf("%q does not name the hook", err)
			}
			for _, m := range c.mention {
				if !strings.Contains(err.Error(), m) {
					t.Fatalf("%q lacks %q", err, m)
				}
			}
			if c.want == ErrHookFailed && strings.Contains(err.Error(), "vetoed") {
				t.Fatalf("a hook that could not run reads as a veto: %q", err)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Fatalf("%q shows the webhook's URL", err)
			}
		})
	}
	// At a post point nothing vetoes: a veto status is a failure like any other, retried.
	a := hookActivities(config.Hook{Name: "page", On: []config.HookPoint{config.PostFailover},
		Command: []string{"sh", "-c", fmt.Sprintf("exit %d", HookVetoExitCode)}})
	err = a.RunHook(context.Background(), HookInput{Hook: "page", Event: Event{Cluster: "demo", Point: config.PostFailover}})
	var app *temporal.ApplicationError
	if err == nil || asApp(err, &app) {
		t.Fatalf("post hook exiting %d: want a plain retryable error, got %v", HookVetoExitCode, err)
	}
}
