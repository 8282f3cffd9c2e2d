// Package internal holds the adapters that Baton's binaries share.
package internal

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// The arrows point down: nothing under internal/ imports a top-level package (the
// workflows, the activities, the binaries), so every binary can use any adapter without
// carrying the worker. (Tests may: an external test package closes no cycle.)
func TestInternalImportsNothingAboveIt(t *testing.T) {
	const module = "github.com/baton-db/baton/"
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if rest, ok := strings.CutPrefix(p, module); ok && !strings.HasPrefix(rest, "internal/") {
				t.Errorf("internal/%s imports %s, a package above internal/", path, p)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
