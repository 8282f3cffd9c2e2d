// Package envfile reads KEY=VALUE files: the sandbox's env file and its secrets file.
package envfile

import (
	"fmt"
	"os"
	"strings"
)

// Read returns the KEY=VALUE lines of path; blank lines and # comments are skipped and
// surrounding quotes are removed from values.
func Read(path string) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return Parse(path, b)
}

// Parse reads KEY=VALUE lines from data; name is the file's name for errors.
func Parse(name string, data []byte) (map[string]string, error) {
	out := map[string]string{}
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("%s line %d: expected KEY=VALUE", name, i+1)
		}
		out[strings.TrimSpace(k)] = strings.Trim(strings.TrimSpace(v), `"'`)
	}
	return out, nil
}
