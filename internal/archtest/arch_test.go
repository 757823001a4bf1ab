// Package archtest holds the tests that keep the module's structure what the README's layout
// section says: the twin's daemon is entered only through its facade and API client, no source
// file grows past the size a reader can hold, and the CLI registers nothing behind a reader's back.
package archtest

import (
	"go/ast"
	"go/build"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const module = "github.com/apgstack/apgstack"

// pkg is one package of the module: its path and what its files import.
type pkg struct {
	path        string // import path
	dir         string
	imports     []string // non-test files
	testImports []string // _test.go files, internal and external
	goFiles     []string
}

func modulePackages(t *testing.T) []pkg {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	var out []pkg
	err = filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		if name := d.Name(); path != root && (strings.HasPrefix(name, ".") || name == "testdata") {
			return filepath.SkipDir
		}
		bp, err := build.ImportDir(path, 0)
		if err != nil {
			return nil // no Go files here
		}
		rel, _ := filepath.Rel(root, path)
		ip := module
		if rel != "." {
			ip += "/" + filepath.ToSlash(rel)
		}
		out = append(out, pkg{path: ip, dir: path, imports: bp.Imports,
			testImports: append(append([]string{}, bp.TestImports...), bp.XTestImports...), goFiles: bp.GoFiles})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) < 20 {
		t.Fatalf("found only %d packages under %s", len(out), root)
	}
	return out
}

// The supervisor is the twin's daemon: only the twin's facade (which runs it for `apgstack
// supervise`) imports it, in tests too. Outside internal/twin, the twin is reached through the
// facade, its API (types and typed client), the state directory's layout and the bench.
func TestTheTwinHasOneDoor(t *testing.T) {
	const twin = module + "/internal/twin"
	supervisor := twin + "/supervisor"
	door := map[string]bool{twin: true, twin + "/api": true, twin + "/statedir": true, twin + "/bench": true}
	for _, p := range modulePackages(t) {
		for _, imp := range append(append([]string{}, p.imports...), p.testImports...) {
			if imp == supervisor && p.path != twin && p.path != supervisor {
				t.Errorf("%s imports the supervisor; speak to it through %s/api", p.path, twin)
			}
		}
		if p.path == twin || strings.HasPrefix(p.path, twin+"/") {
			continue
		}
		for _, imp := range p.imports {
			if strings.HasPrefix(imp, twin+"/") && !door[imp] {
				t.Errorf("%s imports %s, a twin internal; use the facade %s or its api", p.path, imp, twin)
			}
		}
	}
}

// Test-only packages (fakes, test servers, flow proofs) live under internal/testkit and are never
// imported by product code.
func TestTestKitIsForTestsOnly(t *testing.T) {
	kit := module + "/internal/testkit/"
	for _, p := range modulePackages(t) {
		if strings.HasPrefix(p.path+"/", kit) {
			continue
		}
		for _, imp := range p.imports {
			if strings.HasPrefix(imp, kit) {
				t.Errorf("product package %s imports the test kit %s", p.path, imp)
			}
		}
	}
}

// No hand-written source file grows past about 600 lines: split it by responsibility.
func TestNoOversizedSourceFile(t *testing.T) {
	const limit = 650
	// Files being split in work under way; each entry goes when its split lands.
	pending := map[string]bool{
		module + "/cft/policy/rules_services.go":               true,
		module + "/internal/testkit/awsfake/cloudformation.go": true,
		module + "/internal/twin/supervisor/failover.go":       true,
		module + "/internal/twin/supervisor/supervisor.go":     true,
	}
	for _, p := range modulePackages(t) {
		for _, f := range p.goFiles {
			if pending[p.path+"/"+f] {
				continue
			}
			data, err := os.ReadFile(filepath.Join(p.dir, f))
			if err != nil {
				t.Fatal(err)
			}
			if n := strings.Count(string(data), "\n"); n > limit {
				t.Errorf("%s/%s has %d lines (limit %d)", p.path, f, n, limit)
			}
		}
	}
}

// The CLI lists its commands in one place and has no init functions nor package-level function
// variables that other files assign (hooks whose behaviour depends on file order).
func TestCLIHasNoHooks(t *testing.T) {
	dir := filepath.Join("..", "cli")
	fset := token.NewFileSet()
	pkgs, err := parser.ParseDir(fset, dir, func(fi os.FileInfo) bool { return !strings.HasSuffix(fi.Name(), "_test.go") }, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pkgs {
		for name, f := range p.Files {
			for _, d := range f.Decls {
				switch d := d.(type) {
				case *ast.FuncDecl:
					if d.Name.Name == "init" && d.Recv == nil {
						t.Errorf("%s: func init", name)
					}
				case *ast.GenDecl:
					if d.Tok != token.VAR {
						continue
					}
					for _, s := range d.Specs {
						vs := s.(*ast.ValueSpec)
						if _, ok := vs.Type.(*ast.FuncType); ok {
							t.Errorf("%s: package-level function variable %s", name, vs.Names[0].Name)
						}
						for i, v := range vs.Values {
							if _, isFunc := v.(*ast.FuncLit); isFunc || isFuncConversion(v) {
								t.Errorf("%s: package-level variable %s holds a function", name, vs.Names[i].Name)
							}
						}
					}
				}
			}
		}
	}
}

// isFuncConversion reports a conversion of a function literal, such as PackagerFunc(func...).
func isFuncConversion(e ast.Expr) bool {
	c, ok := e.(*ast.CallExpr)
	if !ok || len(c.Args) != 1 {
		return false
	}
	_, ok = c.Args[0].(*ast.FuncLit)
	return ok
}
