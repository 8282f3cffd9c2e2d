package activities

import (
	"context"
	"encoding/json"
	"errors"
	"io"
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
		Command: []string{"sh", "-c", "echo change freeze >&2; exit 3"}})
	err := a.RunHook(context.Background(), HookInput{Hook: "freeze", Event: Event{Cluster: "demo", Point: config.PreSwitchover, Kind: "planned"}})
	var app *temporal.ApplicationError
	if !asApp(err, &app) || app.Type() != ErrHookVetoed || !app.NonRetryable() {
		t.Fatalf("want a non-retryable %s, got %v", ErrHookVetoed, err)
	}
	for _, want := range []string{`pre-switchover hook "freeze" vetoed the switchover of demo`, "exit status 3", "change freeze"} {
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
	if err == nil || !strings.Contains(err.Error(), "409") || !strings.Contains(err.Error(), "on-call says no") {
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
