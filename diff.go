package apgstack

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
)

// Change is one field that differs between two configurations.
type Change struct {
	Path     string // YAML path, database.port
	Old, New string // as a user writes them
}

func (c Change) String() string { return fmt.Sprintf("%s %s -> %s", c.Path, show(c.Old), show(c.New)) }

func show(v string) string {
	if v == "" {
		return `""`
	}
	return v
}

// Diff lists the fields whose values differ from old to new, in declaration order.
func Diff(old, new Config) []Change {
	var out []Change
	ov, nv := reflect.ValueOf(old), reflect.ValueOf(new)
	walkFields(reflect.TypeOf(Config{}), "", func(path string, index []int) {
		a, b := ov.FieldByIndex(index), nv.FieldByIndex(index)
		if reflect.DeepEqual(a.Interface(), b.Interface()) {
			return
		}
		if a.Kind() == reflect.Map && a.Len() == 0 && b.Len() == 0 {
			return // nil and empty are the same setting
		}
		out = append(out, Change{Path: path, Old: valueString(a), New: valueString(b)})
	})
	return out
}

func valueString(v reflect.Value) string {
	if v.Kind() != reflect.Map {
		return fmt.Sprint(v.Interface())
	}
	var parts []string
	for _, k := range v.MapKeys() {
		parts = append(parts, fmt.Sprintf("%v=%v", k.Interface(), v.MapIndex(k).Interface()))
	}
	slices.Sort(parts)
	return strings.Join(parts, ",")
}
