package tests

import (
	"context"
	"testing"

	"go.temporal.io/api/workflowservice/v1"
)

// The sandbox runs Temporal as the dev server (SQLite) or, with `up --temporal postgres`,
// as the production server on PostgreSQL: the server must say which it is.
func TestTemporalPersistenceIsTheSandboxs(t *testing.T) {
	info, err := temporalClient(t).WorkflowService().GetClusterInfo(context.Background(), &workflowservice.GetClusterInfoRequest{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"dev": "sqlite", "postgres": "postgres12"}[sandbox["TEMPORAL_MODE"]]
	t.Logf("Temporal %s: persistence %s, visibility %s", info.GetServerVersion(), info.GetPersistenceStore(), info.GetVisibilityStore())
	if want == "" || info.GetPersistenceStore() != want || info.GetVisibilityStore() != want {
		t.Fatalf("TEMPORAL_MODE %q: the server reports persistence %q and visibility %q, want %q",
			sandbox["TEMPORAL_MODE"], info.GetPersistenceStore(), info.GetVisibilityStore(), want)
	}
}
