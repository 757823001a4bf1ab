package policy

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// repoPath is a citation of a file in this repository, with an optional Markdown anchor.
var repoPath = regexp.MustCompile(`\b([A-Za-z0-9_./-]+\.(?:md|go|yaml|json))(#[a-z0-9-]+)?`)

// anchor is the GitHub anchor of a Markdown heading.
func anchor(heading string) string {
	h := strings.ToLower(strings.TrimSpace(strings.TrimLeft(heading, "#")))
	h = regexp.MustCompile(`[^a-z0-9 _-]`).ReplaceAllString(h, "")
	return strings.ReplaceAll(h, " ", "-")
}

// Every document a rule cites in the repository exists there, and a cited section is a heading
// of that document: a reader following the citation finds it.
func TestRulesCiteDocumentsThatExist(t *testing.T) {
	root := filepath.Join("..", "..")
	cited := 0
	for _, r := range Rules() {
		for _, m := range repoPath.FindAllStringSubmatch(r.Source, -1) {
			file, section := m[1], strings.TrimPrefix(m[2], "#")
			if strings.Contains(file, "://") {
				continue
			}
			cited++
			data, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(file)))
			if err != nil {
				t.Errorf("%s cites %s, which is not in the repository: %v", r.ID, file, err)
				continue
			}
			if section == "" {
				continue
			}
			found := false
			for _, line := range strings.Split(string(data), "\n") {
				if strings.HasPrefix(line, "#") && anchor(line) == section {
					found = true
				}
			}
			if !found {
				t.Errorf("%s cites %s#%s: %s has no such section", r.ID, file, section, file)
			}
		}
	}
	if cited == 0 {
		t.Fatal("no rule cites a repository document: the test checks nothing")
	}
}

// The design notes live outside the repository; a rule citing them sends readers nowhere.
func TestRulesDoNotCiteDocumentsOutsideTheRepository(t *testing.T) {
	for _, r := range Rules() {
		if strings.Contains(r.Source, "DESIGN.md") {
			t.Errorf("%s cites DESIGN.md, which is not in the repository: %s", r.ID, r.Source)
		}
	}
}
