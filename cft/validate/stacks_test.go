// An external test package, so that stacks may one day use validate without an import cycle.
package validate_test

import (
	"strings"
	"testing"

	"github.com/apgstack/apgstack"
	"github.com/apgstack/apgstack/cft/validate"
	"github.com/apgstack/apgstack/internal/aws/stacks"
)

// Every template apgstack synthesizes validates without an error, both as built and as rendered
// and read back in each format. With no stack builders registered the loop has nothing to do.
func TestSynthesizedTemplatesValidate(t *testing.T) {
	all, err := stacks.All(apgstack.Default())
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range all {
		if fs := validate.Template(s.Template, s.Kind); validate.Errors(fs) > 0 {
			t.Errorf("%s stack as built:\n%s", s.Kind, lines(fs))
		}
		for format, render := range map[string]func() ([]byte, error){"yaml": s.Template.YAML, "json": s.Template.JSON} {
			body, err := render()
			if err != nil {
				t.Fatalf("%s: render %s: %v", s.Kind, format, err)
			}
			fs, parsed := validate.Bytes(body, s.Kind+"."+format)
			if parsed == nil || validate.Errors(fs) > 0 {
				t.Errorf("%s.%s: want no errors, got:\n%s", s.Kind, format, lines(fs))
			} else if len(fs) > 0 {
				t.Logf("%s.%s: warnings:\n%s", s.Kind, format, lines(fs))
			}
		}
	}
}

func lines(fs []validate.Finding) string {
	var b strings.Builder
	for _, f := range fs {
		b.WriteString("  " + f.String() + "\n")
	}
	return b.String()
}
