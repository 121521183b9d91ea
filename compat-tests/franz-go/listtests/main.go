// listtests prints the Test functions of a Go package directory that (transitively, through
// package-level functions and methods of the package's test files) reach getSeedBrokers, i.e. the
// franz-go pkg/kgo tests that talk to a real broker (KGO_SEEDS). Usage: listtests DIR
package main

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

func main() {
	dir := os.Args[1]
	fset := token.NewFileSet()
	files, _ := filepath.Glob(filepath.Join(dir, "*_test.go"))
	calls := map[string]map[string]bool{} // func name -> called identifiers
	var tests []string
	for _, f := range files {
		af, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			panic(err)
		}
		for _, d := range af.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok || fd.Body == nil {
				continue
			}
			name := fd.Name.Name
			if fd.Recv != nil {
				name = "." + name // methods: matched by selector name
			}
			set := calls[name]
			if set == nil {
				set = map[string]bool{}
				calls[name] = set
			}
			ast.Inspect(fd.Body, func(n ast.Node) bool {
				switch x := n.(type) {
				case *ast.Ident:
					set[x.Name] = true
				case *ast.SelectorExpr:
					set["."+x.Sel.Name] = true
				}
				return true
			})
			if fd.Recv == nil && strings.HasPrefix(name, "Test") {
				tests = append(tests, name)
			}
		}
	}
	memo := map[string]int{} // 0 unknown, 1 visiting, 2 yes, 3 no
	var reaches func(string) bool
	reaches = func(fn string) bool {
		switch memo[fn] {
		case 1, 3:
			return false
		case 2:
			return true
		}
		memo[fn] = 1
		for c := range calls[fn] {
			if c == "getSeedBrokers" || (c != fn && calls[c] != nil && reaches(c)) {
				memo[fn] = 2
				return true
			}
		}
		memo[fn] = 3
		return false
	}
	sort.Strings(tests)
	for _, t := range tests {
		memo = map[string]int{}
		if reaches(t) {
			fmt.Println(t)
		}
	}
}
