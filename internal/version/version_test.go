package version

import (
	"runtime/debug"
	"testing"
)

func TestFromBuild(t *testing.T) {
	cases := []struct {
		name string
		bi   debug.BuildInfo
		want string
	}{
		{"a tagged module", debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "v1.2.3"}}, "v1.2.3 (go1.26.0)"},
		{"a checkout", debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "25fea64c0ffee1234567890abcdef01234567890"}, {Key: "vcs.modified", Value: "false"}}},
			"(devel) 25fea64c0ffe (go1.26.0)"},
		{"local changes", debug.BuildInfo{GoVersion: "go1.26.0", Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "25fea64c0ffee1234567890abcdef01234567890"}, {Key: "vcs.modified", Value: "true"}}},
			"(devel) 25fea64c0ffe-dirty (go1.26.0)"},
		{"a short revision", debug.BuildInfo{GoVersion: "go1.26.0", Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "abc"}}}, "(devel) abc (go1.26.0)"},
	}
	for _, c := range cases {
		if got := fromBuild(&c.bi).String(); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}
