package cli

import (
	"io"
	"regexp"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// sourceFile matches a Go source file name, such as the "(snapshot.go)" that help texts once
// carried: help is for users, who have no use for the layout of the code.
var sourceFile = regexp.MustCompile(`\b[A-Za-z0-9_]+\.go\b`)

// TestHelpNamesNoSourceFiles runs --help of every command, through Main, and looks for source
// file names.
func TestHelpNamesNoSourceFiles(t *testing.T) {
	root := NewRootCmd(&App{Stdin: strings.NewReader(""), Stdout: io.Discard, Stderr: io.Discard})
	var paths [][]string
	var walk func(c *cobra.Command, path []string)
	walk = func(c *cobra.Command, path []string) {
		paths = append(paths, path)
		for _, sub := range c.Commands() {
			if !sub.Hidden {
				walk(sub, append(append([]string{}, path...), sub.Name()))
			}
		}
	}
	walk(root, nil)
	if len(paths) < 20 {
		t.Fatalf("walked %d commands: the tree was not built", len(paths))
	}
	for _, p := range paths {
		t.Run("apgstack "+strings.Join(p, " "), func(t *testing.T) {
			code, stdout, stderr := run(t, nil, append(p, "--help")...)
			if code != ExitOK {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			if m := sourceFile.FindAllString(stdout, -1); len(m) > 0 {
				t.Errorf("help names source files %v:\n%s", m, stdout)
			}
		})
	}
}
