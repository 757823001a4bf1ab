package policy

import (
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Locate sets the Line of the findings of one file from its source (YAML or JSON): the line of
// the deepest part of the finding's path that the source has, else of its resource.
func Locate(file string, data []byte, fs []Finding) {
	var doc yaml.Node
	if yaml.Unmarshal(data, &doc) != nil || len(doc.Content) == 0 {
		return
	}
	resources := child(doc.Content[0], "Resources")
	for i := range fs {
		f := &fs[i]
		if f.File != file || f.Resource == "" || resources == nil {
			continue
		}
		n := child(resources, f.Resource)
		if n == nil {
			continue
		}
		f.Line = n.Line
		if f.Path == "" {
			continue
		}
		for _, seg := range strings.Split(f.Path, ".") {
			name, idx := seg, -1
			if j := strings.IndexByte(seg, '['); j > 0 && strings.HasSuffix(seg, "]") {
				name = seg[:j]
				idx, _ = strconv.Atoi(seg[j+1 : len(seg)-1])
			}
			next := child(n, name)
			if next != nil && idx >= 0 {
				if next.Kind == yaml.SequenceNode && idx < len(next.Content) {
					next = next.Content[idx]
				} else {
					next = nil
				}
			}
			if next == nil {
				break
			}
			f.Line, n = next.Line, next
		}
	}
}

// child returns the value node of key in a mapping node (nil if absent); its Line is the key's.
func child(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			v := *n.Content[i+1]
			v.Line = n.Content[i].Line
			return &v
		}
	}
	return nil
}
