package tests

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Opens a switchover in the Temporal Web UI in headless Chromium: while it waits for approval,
// its search attributes page shows the current step and the plan; once approved and finished,
// the history page shows it completed and the search attributes show the outcome. A screenshot
// of the history is saved under tests/output/ (git-ignored).
func TestWebUIShowsASwitchoverStepByStep(t *testing.T) {
	if _, err := os.Stat("/usr/bin/chromium"); err != nil {
		t.Fatal("chromium is not installed: deploy/deps.sh installs Debian's chromium")
	}
	before := readTopo(t)
	switchoverAwaitingApproval(t)
	t.Cleanup(func() { baton(t, "abort", "--cluster", "demo", "--as", "alice", "--reason", "test ended") })
	runs := listWorkflows(t, "BatonCluster = 'demo' AND BatonKind = 'planned' AND ExecutionStatus = 'Running'")
	if len(runs) != 1 {
		t.Fatalf("%d running switchovers listed by search attributes, want 1", len(runs))
	}
	candidate := searchAttribute(t, "BatonNewPrimary")
	run := sandbox["TEMPORAL_UI_URL"] + "/namespaces/" + sandbox["TEMPORAL_NAMESPACE"] + "/workflows/" +
		url.PathEscape("failover/demo") + "/" + runs[0]

	ctx := browser(t)
	page(t, ctx, run+"/search-attributes", `"BatonStep"`, `"waiting for approval"`, `"BatonKind"`, `"planned"`,
		`"BatonOldPrimary"`, `"`+before.Primary.Name+`"`, `"BatonNewPrimary"`, `"`+candidate+`"`)

	if out, code := baton(t, "approve", "--cluster", "demo", "--as", "alice"); code != 0 {
		t.Fatalf("approve: %s", out)
	}
	waitFor(t, 60*time.Second, func() bool {
		return len(listWorkflows(t, "BatonCluster = 'demo' AND BatonOutcome = 'succeeded' AND RunId = '"+runs[0]+"'")) == 1
	})
	page(t, ctx, run+"/history", "PlannedSwitchover", "Completed", "failover/demo")
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // quality 100 means PNG
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "tests", "output")
	_ = os.MkdirAll(dir, 0o755)
	shot := filepath.Join(dir, "ui-switchover.png")
	if err := os.WriteFile(shot, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%d bytes)", shot, len(png))
	page(t, ctx, run+"/search-attributes", `"BatonOutcome"`, `"succeeded"`, `"BatonStep"`, `"post-switchover hook record"`)
}

// browser starts headless Chromium for the test.
func browser(t *testing.T) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath("/usr/bin/chromium"), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("disable-quic", true), chromedp.Flag("no-first-run", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1600, 1200))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)
	ctx, cancelTimeout := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(cancelTimeout)
	return ctx
}

// page opens addr and waits until the rendered text shows every one of want (the UI is a
// single-page app); it fails naming what the page never showed.
func page(t *testing.T, ctx context.Context, addr string, want ...string) {
	t.Helper()
	if _, err := chromedp.Run(ctx, chromedp.Navigate(addr)); err != nil {
		t.Fatalf("open %s: %v", addr, err)
	}
	var text string
	var missing []string
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(500 * time.Millisecond) {
		var err error
		if text, err = chromedp.Run(ctx, chromedp.Evaluate[string]("document.body ? document.body.innerText : ''")); err != nil {
			t.Fatal(err)
		}
		missing = missing[:0]
		for _, w := range want {
			if !strings.Contains(text, w) {
				missing = append(missing, w)
			}
		}
		if len(missing) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never showed %q", addr, missing)
		}
	}
}
