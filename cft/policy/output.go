package policy

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// WriteText writes the findings, then the suppressed findings with their reasons, then a summary
// line.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	for _, f := range r.Findings {
		b.WriteString(f.String())
		b.WriteByte('\n')
	}
	if len(r.Suppressed) > 0 {
		fmt.Fprintf(&b, "suppressed (%d):\n", len(r.Suppressed))
		for _, f := range r.Suppressed {
			b.WriteString("  ")
			b.WriteString(f.String())
			b.WriteByte('\n')
		}
	}
	fmt.Fprintf(&b, "policy: %d file(s), %d error(s), %d warning(s), %d suppressed\n", len(r.Files), r.Errors(), r.Warnings(), len(r.Suppressed))
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(struct {
		*Report
		Errors   int `json:"errors"`
		Warnings int `json:"warnings"`
	}{r, r.Errors(), r.Warnings()})
}

// SARIF 2.1.0, the subset code-review tools read.
type (
	sarifLog struct {
		Version string     `json:"version"`
		Schema  string     `json:"$schema"`
		Runs    []sarifRun `json:"runs"`
	}
	sarifRun struct {
		Tool    sarifTool     `json:"tool"`
		Results []sarifResult `json:"results"`
	}
	sarifTool struct {
		Driver sarifDriver `json:"driver"`
	}
	sarifDriver struct {
		Name           string      `json:"name"`
		InformationURI string      `json:"informationUri,omitempty"`
		Rules          []sarifRule `json:"rules"`
	}
	sarifRule struct {
		ID                   string         `json:"id"`
		Name                 string         `json:"name,omitempty"`
		ShortDescription     sarifText      `json:"shortDescription"`
		FullDescription      sarifText      `json:"fullDescription"`
		Help                 sarifText      `json:"help"`
		DefaultConfiguration sarifConfig    `json:"defaultConfiguration"`
		Properties           map[string]any `json:"properties,omitempty"`
	}
	sarifText struct {
		Text string `json:"text"`
	}
	sarifConfig struct {
		Level string `json:"level"`
	}
	sarifResult struct {
		RuleID       string             `json:"ruleId"`
		RuleIndex    int                `json:"ruleIndex"`
		Level        string             `json:"level"`
		Message      sarifText          `json:"message"`
		Locations    []sarifLocation    `json:"locations"`
		Suppressions []sarifSuppression `json:"suppressions,omitempty"`
		Properties   map[string]any     `json:"properties,omitempty"`
	}
	sarifLocation struct {
		PhysicalLocation sarifPhysical  `json:"physicalLocation"`
		LogicalLocations []sarifLogical `json:"logicalLocations,omitempty"`
	}
	sarifPhysical struct {
		ArtifactLocation sarifArtifact `json:"artifactLocation"`
		Region           *sarifRegion  `json:"region,omitempty"`
	}
	sarifArtifact struct {
		URI string `json:"uri"`
	}
	sarifRegion struct {
		StartLine int `json:"startLine"`
	}
	sarifLogical struct {
		Name               string `json:"name"`
		FullyQualifiedName string `json:"fullyQualifiedName,omitempty"`
		Kind               string `json:"kind"`
	}
	sarifSuppression struct {
		Kind          string `json:"kind"`
		Justification string `json:"justification"`
	}
)

// SARIFSchema is the schema URI the log declares.
const SARIFSchema = "https://json.schemastore.org/sarif-2.1.0.json"

// WriteSARIF writes the report as a SARIF 2.1.0 log: every rule in the driver, every finding a
// result, suppressed findings with an in-source suppression carrying the reason.
func (r *Report) WriteSARIF(w io.Writer) error {
	all := Rules()
	index := map[string]int{}
	driver := sarifDriver{Name: "apgstack-policy", InformationURI: "https://github.com/apgstack/apgstack/blob/main/docs/policy-rules.md"}
	for i, rule := range all {
		index[rule.ID] = i
		level := "error"
		if rule.Severity == Warning {
			level = "warning"
		}
		driver.Rules = append(driver.Rules, sarifRule{
			ID: rule.ID, Name: identifier(rule.Title),
			ShortDescription:     sarifText{rule.Title},
			FullDescription:      sarifText{rule.Rationale},
			Help:                 sarifText{"Fix: " + rule.Fix + ". Source: " + rule.Source + "."},
			DefaultConfiguration: sarifConfig{level},
			Properties:           map[string]any{"source": rule.Source, "resourceTypes": rule.Types},
		})
	}
	run := sarifRun{Tool: sarifTool{driver}, Results: []sarifResult{}}
	add := func(f Finding) {
		level := "error"
		if f.Severity == Warning {
			level = "warning"
		}
		loc := sarifLocation{PhysicalLocation: sarifPhysical{ArtifactLocation: sarifArtifact{URI: f.File}}}
		if f.Line > 0 {
			loc.PhysicalLocation.Region = &sarifRegion{StartLine: f.Line}
		}
		if f.Resource != "" {
			fq := f.Resource
			if f.Path != "" {
				fq += "." + f.Path
			}
			loc.LogicalLocations = []sarifLogical{{Name: f.Resource, FullyQualifiedName: fq, Kind: "resource"}}
		}
		res := sarifResult{RuleID: f.Rule, RuleIndex: index[f.Rule], Level: level, Message: sarifText{f.Message}, Locations: []sarifLocation{loc}}
		props := map[string]any{}
		if len(f.Stages) > 0 {
			props["stages"] = f.Stages
		}
		if f.Type != "" {
			props["resourceType"] = f.Type
		}
		if len(props) > 0 {
			res.Properties = props
		}
		if f.Reason != "" {
			res.Suppressions = []sarifSuppression{{Kind: "inSource", Justification: f.Reason}}
		}
		run.Results = append(run.Results, res)
	}
	for _, f := range r.Findings {
		add(f)
	}
	for _, f := range r.Suppressed {
		add(f)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(sarifLog{Version: "2.1.0", Schema: SARIFSchema, Runs: []sarifRun{run}})
}

// identifier turns a title into the PascalCase name SARIF viewers show next to the id.
func identifier(title string) string {
	var b strings.Builder
	for _, w := range strings.FieldsFunc(title, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9')
	}) {
		b.WriteString(strings.ToUpper(w[:1]) + w[1:])
	}
	return b.String()
}
