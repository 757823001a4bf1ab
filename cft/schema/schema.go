// Package schema holds the CloudFormation registry's resource provider schemas for every AWS
// resource type, embedded as one zip archive with a deflated entry per type (Version says where
// they come from; scripts/refresh-schemas.sh rebuilds them). Nothing is read until a type is
// looked up, and then only that type's entry is inflated and parsed, once.
package schema

import (
	"archive/zip"
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"sync"
)

//go:embed schemas.zip
var archive []byte

//go:embed VERSION
var version string

// Version is the version of github.com/aws-cloudformation/rain whose copy of the registry
// schemas is embedded.
var Version = strings.TrimSpace(version)

// Source names where the embedded schemas come from, for READMEs and `--version` output.
func Source() string { return "github.com/aws-cloudformation/rain " + Version }

// ErrUnknownType is returned by Lookup for a type the registry does not have.
var ErrUnknownType = errors.New("unknown resource type")

// Schema is one resource type's provider schema. The embedded Node describes the resource's
// Properties object.
type Schema struct {
	Node
	TypeName    string           `json:"typeName"`
	Definitions map[string]*Node `json:"definitions"`
	// Pointers such as "/properties/Arn".
	ReadOnlyProperties   []string `json:"readOnlyProperties"`
	WriteOnlyProperties  []string `json:"writeOnlyProperties"`
	CreateOnlyProperties []string `json:"createOnlyProperties"`
	DeprecatedProperties []string `json:"deprecatedProperties"`
	PrimaryIdentifier    []string `json:"primaryIdentifier"`
	Tagging              *Tagging `json:"tagging"`
}

// Tagging is the schema's tagging metadata.
type Tagging struct {
	Taggable     *bool  `json:"taggable"`
	TagOnCreate  *bool  `json:"tagOnCreate"`
	TagUpdatable *bool  `json:"tagUpdatable"`
	TagProperty  string `json:"tagProperty"`
}

// Node is a JSON schema node as the provider schemas use it.
type Node struct {
	Ref                  string           `json:"$ref"`
	Type                 Types            `json:"type"`
	Properties           map[string]*Node `json:"properties"`
	PatternProperties    map[string]*Node `json:"patternProperties"`
	AdditionalProperties *bool            `json:"additionalProperties"`
	Required             []string         `json:"required"`
	Items                *Node            `json:"items"`
	Enum                 []any            `json:"enum"`
	Const                any              `json:"const"`
	OneOf                []*Node          `json:"oneOf"`
	AnyOf                []*Node          `json:"anyOf"`
	AllOf                []*Node          `json:"allOf"`
	Pattern              string           `json:"pattern"`
	MinLength            *int             `json:"minLength"`
	MaxLength            *int             `json:"maxLength"`
	Minimum              *float64         `json:"minimum"`
	Maximum              *float64         `json:"maximum"`
	MinItems             *int             `json:"minItems"`
	MaxItems             *int             `json:"maxItems"`
	Format               string           `json:"format"`
}

// Types is a schema's "type": one name or a list of names.
type Types []string

// UnmarshalJSON accepts both forms.
func (t *Types) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*t = Types{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return fmt.Errorf("type: want a name or a list of names: %w", err)
	}
	*t = many
	return nil
}

// Has reports whether the named type is in t.
func (t Types) Has(name string) bool {
	return slices.Contains(t, name)
}

// ClosedObject reports whether an object node admits no property beyond those it names.
func (n *Node) ClosedObject() bool {
	return n.AdditionalProperties != nil && !*n.AdditionalProperties
}

// Resolve follows $ref (to "#/definitions/X" or "#/properties/X", possibly chained) and returns
// the node it ends at. A reference it cannot follow gives nil, which callers treat as "anything".
func (s *Schema) Resolve(n *Node) *Node {
	for i := 0; n != nil && n.Ref != ""; i++ {
		if i > 32 {
			return nil // a reference loop; treat as unconstrained
		}
		n = s.lookupRef(n.Ref)
	}
	return n
}

func (s *Schema) lookupRef(ref string) *Node {
	path, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		return nil
	}
	parts := strings.Split(path, "/")
	var cur *Node
	switch parts[0] {
	case "definitions":
		if len(parts) < 2 {
			return nil
		}
		cur = s.Definitions[unescape(parts[1])]
	case "properties":
		if len(parts) < 2 {
			return nil
		}
		cur = s.Properties[unescape(parts[1])]
	default:
		return nil
	}
	for i := 2; cur != nil && i+1 < len(parts); i += 2 {
		if parts[i] != "properties" {
			return nil
		}
		cur = cur.Properties[unescape(parts[i+1])]
	}
	return cur
}

// unescape decodes a JSON pointer segment.
func unescape(s string) string {
	return strings.NewReplacer("~1", "/", "~0", "~").Replace(s)
}

// ReadOnly reports whether a top-level property is read-only (set by CloudFormation, not by
// templates).
func (s *Schema) ReadOnly(property string) bool {
	return slices.Contains(s.ReadOnlyProperties, "/properties/"+property)
}

// Taggable reports whether resources of this type take tags, and the property holding them.
func (s *Schema) Taggable() (bool, string) {
	prop := "Tags"
	if s.Tagging != nil {
		if s.Tagging.TagProperty != "" {
			prop = strings.TrimPrefix(s.Tagging.TagProperty, "/properties/")
		}
		if s.Tagging.Taggable != nil && !*s.Tagging.Taggable {
			return false, ""
		}
	}
	if _, ok := s.Properties[prop]; !ok {
		return false, ""
	}
	return true, prop
}

var (
	indexOnce sync.Once
	index     map[string]*zip.File
	indexErr  error

	mu     sync.Mutex
	parsed = map[string]*Schema{}
)

// entryName maps "AWS::RDS::DBCluster" to "aws/rds/dbcluster.json".
func entryName(typeName string) string {
	parts := strings.Split(typeName, "::")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		return ""
	}
	return strings.ToLower(parts[0] + "/" + parts[1] + "/" + parts[2] + ".json")
}

func loadIndex() (map[string]*zip.File, error) {
	indexOnce.Do(func() {
		zr, err := zip.NewReader(bytes.NewReader(archive), int64(len(archive)))
		if err != nil {
			indexErr = fmt.Errorf("embedded resource schemas: %w", err)
			return
		}
		index = make(map[string]*zip.File, len(zr.File))
		for _, f := range zr.File {
			index[f.Name] = f
		}
	})
	return index, indexErr
}

// Has reports whether the registry knows the type. It reads the archive's directory only.
func Has(typeName string) bool {
	idx, err := loadIndex()
	if err != nil {
		return false
	}
	_, ok := idx[entryName(typeName)]
	return ok
}

// Lookup returns the schema of a resource type, parsing it on first use. The type name must match
// the schema's own spelling (CloudFormation type names are case-sensitive); Suggest gives the
// right spelling of a near miss.
func Lookup(typeName string) (*Schema, error) {
	s, err := byEntry(entryName(typeName))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", typeName, err)
	}
	if s.TypeName != typeName {
		return nil, fmt.Errorf("%s: %w", typeName, ErrUnknownType)
	}
	return s, nil
}

// Suggest returns the registry's spelling of a type that differs only in case, or "".
func Suggest(typeName string) string {
	s, err := byEntry(entryName(typeName))
	if err != nil || s.TypeName == typeName {
		return ""
	}
	return s.TypeName
}

// byEntry parses one archive entry, once.
func byEntry(name string) (*Schema, error) {
	idx, err := loadIndex()
	if err != nil {
		return nil, err
	}
	f, ok := idx[name]
	if !ok {
		return nil, ErrUnknownType
	}
	mu.Lock()
	defer mu.Unlock()
	if s, ok := parsed[name]; ok {
		return s, nil
	}
	rc, err := f.Open()
	if err != nil {
		return nil, fmt.Errorf("embedded schema %s: %w", name, err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		return nil, fmt.Errorf("embedded schema %s: %w", name, err)
	}
	s := &Schema{}
	if err := json.Unmarshal(data, s); err != nil {
		return nil, fmt.Errorf("embedded schema %s: %w", name, err)
	}
	parsed[name] = s
	return s, nil
}

// Count returns the number of embedded schemas.
func Count() int {
	idx, _ := loadIndex()
	return len(idx)
}

// Entries lists the archive's entry names, sorted (aws/<service>/<type>.json).
func Entries() []string {
	idx, _ := loadIndex()
	out := make([]string, 0, len(idx))
	for k := range idx {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
