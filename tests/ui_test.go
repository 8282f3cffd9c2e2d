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

// Opens a finished switchover in the Temporal Web UI in headless Chromium, checks what the
// page shows, and saves a screenshot under tests/output/ (git-ignored).
func TestWebUIShowsAFinishedSwitchover(t *testing.T) {
	if _, err := os.Stat("/usr/bin/chromium"); err != nil {
		t.Fatal("chromium is not installed: deploy/deps.sh installs Debian's chromium")
	}
	out, code := baton(t, "switchover", "--cluster", "demo")
	if code != 0 {
		t.Fatalf("switchover: %s", out)
	}
	runs := listWorkflows(t, "BatonCluster = 'demo' AND BatonKind = 'planned' AND BatonOutcome = 'succeeded'")
	waitFor(t, 10*time.Second, func() bool {
		runs = listWorkflows(t, "BatonCluster = 'demo' AND BatonKind = 'planned' AND BatonOutcome = 'succeeded'")
		return len(runs) > 0
	})
	page := sandbox["TEMPORAL_UI_URL"] + "/namespaces/" + sandbox["TEMPORAL_NAMESPACE"] + "/workflows/" +
		url.PathEscape("failover/demo") + "/" + runs[0] + "/history"

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath("/usr/bin/chromium"), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("disable-quic", true), chromedp.Flag("no-first-run", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1600, 1200))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancelTimeout := context.WithTimeout(ctx, 90*time.Second)
	defer cancelTimeout()

	var text string
	deadline := time.Now().Add(60 * time.Second)
	if _, err := chromedp.Run(ctx, chromedp.Navigate(page)); err != nil {
		t.Fatalf("open %s: %v", page, err)
	}
	for { // the UI is a single-page app: wait until it has rendered the run
		var err error
		if text, err = chromedp.Run(ctx, chromedp.Evaluate[string]("document.body ? document.body.innerText : ''")); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(text, "PlannedSwitchover") && strings.Contains(text, "Completed") || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
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
	for _, want := range []string{"failover/demo", "PlannedSwitchover", "Completed"} {
		if !strings.Contains(text, want) {
			t.Errorf("the Web UI page for the run does not show %q", want)
		}
	}
}
