package apgstack

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// EnvPrefix starts every environment variable that overrides the file: the path of a field in
// upper case with dots as underscores, e.g. APGSTACK_DATABASE_PORT or APGSTACK_TARGET_KIND.
const EnvPrefix = "APGSTACK_"

// Load reads the configuration: defaults, then the file (when it exists, or when it was named
// explicitly), then APGSTACK_* variables from environ. Flags are applied by the caller with Set,
// then Validate is called. A missing default file is not an error: the defaults stand.
func Load(path string, explicit bool, environ []string) (Config, error) {
	cfg := Default()
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		if err := Parse(data, &cfg); err != nil {
			return cfg, fmt.Errorf("%s: %w", path, err)
		}
	case errors.Is(err, fs.ErrNotExist) && !explicit:
	default:
		return cfg, fmt.Errorf("read configuration: %w", err)
	}
	if err := cfg.ApplyEnv(environ); err != nil {
		return cfg, err
	}
	return cfg, nil
}

// Parse decodes YAML over cfg; unknown keys are errors so that a typo is not silently ignored.
func Parse(data []byte, cfg *Config) error {
	if err := checkYAML(data); err != nil {
		return err
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	// An empty file decodes to io.EOF: the defaults stand.
	if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("parse configuration: %w", err)
	}
	return nil
}

// ApplyEnv applies APGSTACK_* variables that name a field; others (APGSTACK_LIVE_AWS, ...) are
// left to their users.
func (c *Config) ApplyEnv(environ []string) error {
	fields := map[string]string{}
	for _, path := range FieldPaths() {
		fields[EnvName(path)] = path
	}
	var errs []FieldError
	for _, kv := range environ {
		name, value, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(name, EnvPrefix) {
			continue
		}
		path, known := fields[name]
		if !known {
			continue
		}
		if err := c.Set(path, value); err != nil {
			var fe FieldError
			if errors.As(err, &fe) {
				fe.Field = name
				errs = append(errs, fe)
				continue
			}
			return err
		}
	}
	if len(errs) > 0 {
		return &ValidationError{Errors: errs}
	}
	return nil
}

// EnvName is the environment variable for a field path.
func EnvName(path string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(path, ".", "_"))
}

// FieldPaths lists every settable field as a YAML path (database.port), in declaration order.
func FieldPaths() []string {
	var out []string
	walkFields(reflect.TypeOf(Config{}), "", func(path string, _ []int) { out = append(out, path) })
	return out
}

func walkFields(t reflect.Type, prefix string, fn func(path string, index []int)) {
	var walk func(t reflect.Type, prefix string, index []int)
	walk = func(t reflect.Type, prefix string, index []int) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name := strings.Split(f.Tag.Get("yaml"), ",")[0]
			path := name
			if prefix != "" {
				path = prefix + "." + name
			}
			idx := append(append([]int{}, index...), i)
			if f.Type.Kind() == reflect.Struct {
				walk(f.Type, path, idx)
				continue
			}
			fn(path, idx)
		}
	}
	walk(t, prefix, nil)
}

// Set assigns a field by its YAML path from a string, as flags and environment variables give it.
// A map field takes one entry at a time: target.local.alarmThresholds.CPU=50.
func (c *Config) Set(path, value string) error {
	if parent, key, ok := cutMapKey(path); ok {
		return c.setMapEntry(parent, key, value)
	}
	var index []int
	walkFields(reflect.TypeOf(Config{}), "", func(p string, idx []int) {
		if strings.EqualFold(p, path) {
			index = idx
		}
	})
	if index == nil {
		paths := FieldPaths()
		if s := closest(path, paths); s != "" {
			return FieldError{Field: path, Value: value, Allowed: "an unknown field: did you mean " + s + "?"}
		}
		sort.Strings(paths)
		return FieldError{Field: path, Value: value, Allowed: "a configuration field (" + strings.Join(paths, ", ") + ")"}
	}
	f := reflect.ValueOf(c).Elem().FieldByIndex(index)
	switch f.Kind() {
	case reflect.String:
		f.SetString(value)
	case reflect.Int:
		n, err := strconv.Atoi(strings.TrimSpace(value))
		if err != nil {
			return FieldError{Field: path, Value: value, Allowed: "a whole number"}
		}
		f.SetInt(int64(n))
	case reflect.Float64:
		x, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil {
			return FieldError{Field: path, Value: value, Allowed: "a number"}
		}
		f.SetFloat(x)
	case reflect.Bool:
		b, err := strconv.ParseBool(strings.TrimSpace(value))
		if err != nil {
			return FieldError{Field: path, Value: value, Allowed: "true or false"}
		}
		f.SetBool(b)
	case reflect.Map:
		return FieldError{Field: path, Value: value, Allowed: "one entry at a time, as " + path + ".NAME=VALUE"}
	default:
		return fmt.Errorf("field %s has unsupported kind %s", path, f.Kind())
	}
	return nil
}

// mapFields are the map-valued fields, whose entries are set as <path>.<key>.
var mapFields = []string{"target.local.alarmThresholds"}

func cutMapKey(path string) (parent, key string, ok bool) {
	for _, m := range mapFields {
		if k, found := strings.CutPrefix(path, m+"."); found && k != "" {
			return m, k, true
		}
	}
	return "", "", false
}

func (c *Config) setMapEntry(parent, key, value string) error {
	switch parent {
	case "target.local.alarmThresholds":
		v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil {
			return FieldError{Field: parent + "." + key, Value: value, Allowed: "a number"}
		}
		if c.Target.Local.AlarmThresholds == nil {
			c.Target.Local.AlarmThresholds = map[string]float64{}
		}
		c.Target.Local.AlarmThresholds[key] = v
	}
	return nil
}
