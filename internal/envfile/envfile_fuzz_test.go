package envfile

import (
	"strings"
	"testing"
)

// Whatever the file holds, Parse does not panic, and what it returns is one line each: no
// key or value spans lines or keeps the spaces or quotes around it.
func FuzzParse(f *testing.F) {
	f.Add([]byte("A=1\n# c\n\nB = \"two\"\n"))
	f.Add([]byte("MYSQL_NODES=\"127.0.1.1:3306 127.0.1.2:3306\"\r\nX='y'"))
	f.Add([]byte("no equals sign"))
	f.Add([]byte("=empty key\nK=v=w"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Parse("env", data)
		if err != nil {
			if !strings.Contains(err.Error(), "expected KEY=VALUE") {
				t.Fatalf("unexpected error: %v", err)
			}
			return
		}
		for k, v := range m {
			if strings.ContainsAny(k+v, "\n") || k != strings.TrimSpace(k) {
				t.Fatalf("key %q value %q", k, v)
			}
		}
	})
}
