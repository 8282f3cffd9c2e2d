package config

import (
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"go.yaml.in/yaml/v3"
)

// A cluster's settings live in Consul (the catalog, `baton cluster add|set`) as a map of the
// same keys as its section of the config file, with the same value forms ("2s", [a, b]).
// Hooks are not among them: a hook runs a command on the worker, so it stays in the worker's
// own file, never in data that a Consul token can write.

// SettingKeys are the keys a cluster's settings may have, sorted.
func SettingKeys() []string {
	var out []string
	for _, s := range Settings {
		if !strings.HasPrefix(s.Key, ClusterKey) {
			continue
		}
		for _, k := range s.keys() {
			if k = strings.TrimPrefix(k, ClusterKey); k != "hooks" {
				out = append(out, k)
			}
		}
	}
	sort.Strings(out)
	return out
}

var errHooksInSettings = errors.New("hooks: a cluster's hooks run commands on the worker, so they stay in the worker's config file (clusters.<name>.hooks), never in Consul")

// DecodeSettings turns a cluster's settings map into its config: the table's defaults for
// every key the map lacks, strict decoding (an unknown key or a wrong type is an error) and
// the same validation as the config file's clusters. Every problem is returned at once.
func DecodeSettings(name string, raw map[string]any) (ClusterConfig, error) {
	var cc ClusterConfig
	if _, ok := raw["hooks"]; ok {
		return cc, errHooksInSettings
	}
	m := maps.Clone(raw)
	if m == nil {
		m = map[string]any{}
	}
	for _, s := range Settings {
		if !strings.HasPrefix(s.Key, ClusterKey) || s.Default == "" {
			continue
		}
		if k := strings.TrimPrefix(s.Key, ClusterKey); m[k] == nil {
			m[k] = s.Default
		}
	}
	d, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{Result: &cc, ErrorUnused: true, WeaklyTypedInput: true,
		DecodeHook: mapstructure.ComposeDecodeHookFunc(mapstructure.StringToTimeDurationHookFunc(), mapstructure.StringToSliceHookFunc(","))})
	if err != nil {
		return cc, err
	}
	if err := d.Decode(m); err != nil {
		return cc, fmt.Errorf("clusters.%s: %w (the keys are %s)", name, err, strings.Join(SettingKeys(), ", "))
	}
	errs := validateCluster(name, cc)
	sortErrs(errs)
	return cc, errors.Join(errs...)
}

// EncodeSettings is the settings map of a cluster's config (its hooks left out): durations
// as "2s", lists as lists, so that DecodeSettings gives the same config back.
func EncodeSettings(cc ClusterConfig) map[string]any {
	out := map[string]any{}
	v, t := reflect.ValueOf(cc), reflect.TypeOf(cc)
	for i := range t.NumField() {
		k := t.Field(i).Tag.Get("mapstructure")
		if f := v.Field(i); k == "hooks" || f.Kind() == reflect.Slice && f.Len() == 0 {
			continue
		}
		out[k] = plain(v.Field(i))
	}
	return out
}

// plain is v as JSON-friendly data: strings, bools, numbers, lists and maps keyed by tag.
func plain(v reflect.Value) any {
	if d, ok := v.Interface().(time.Duration); ok {
		return d.String()
	}
	switch v.Kind() {
	case reflect.String:
		return v.String()
	case reflect.Bool:
		return v.Bool()
	case reflect.Slice:
		l := make([]any, v.Len())
		for i := range l {
			l[i] = plain(v.Index(i))
		}
		return l
	case reflect.Struct:
		m := map[string]any{}
		for i := range v.NumField() {
			if k := v.Type().Field(i).Tag.Get("mapstructure"); k != "" && !v.Field(i).IsZero() {
				m[k] = plain(v.Field(i))
			}
		}
		return m
	default:
		return v.Interface()
	}
}

// SetSetting returns a copy of raw with key set to value, read as YAML ("3s", "true",
// "[a, b]", "[{name: a, zone: a, writer: ...}]"); an empty value removes the key, which
// gives it back its default. The caller decodes the result to validate it.
func SetSetting(raw map[string]any, key, value string) (map[string]any, error) {
	if key == "hooks" {
		return nil, errHooksInSettings
	}
	if !slices.Contains(SettingKeys(), key) {
		return nil, fmt.Errorf("%q is not a cluster setting; the settings are %s", key, strings.Join(SettingKeys(), ", "))
	}
	out := maps.Clone(raw)
	if out == nil {
		out = map[string]any{}
	}
	if value == "" {
		delete(out, key)
		return out, nil
	}
	var v any
	if err := yaml.Unmarshal([]byte(value), &v); err != nil {
		return nil, fmt.Errorf("%s=%s: not a value (%v); write a duration as 3s, a list as [a, b]", key, value, err)
	}
	out[key] = v
	return out, nil
}
