package ringbuf

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestReleaseStoresStayLast backs release_amd64.go's one assumption the Go
// memory model does not give: that the compiler emits the plain MOV of
// storeRelease64 after the stores that precede it in program order. It
// compiles this package (as the build of the test binary does, without
// -race), disassembles it with go tool objdump, and for every inlined
// release store checks the code that runs right after it (straight on and
// through forward jumps, up to a conditional or backward jump, a call or a
// return): no store of a record's header or payload
// (recordView.setFields, setHeader, copyShortPayload) and no call of
// memmove (a longer payload's copy) may follow it there; and an SPSC
// tail's position store never precedes its sequence store. It also
// requires the release stores it knows of to be found (the SPSC Offer
// fast path has its commit and both tail pairs inlined), so that it cannot
// pass by finding nothing. If it fails, the compiler moved a store past a
// release: use sync/atomic stores in storeRelease64 (release_other.go)
// until the reason is understood.
func TestReleaseStoresStayLast(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and disassembles the package; skipped with -short")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to disassemble the package: %v", err)
	}
	releaseLines := linesOf(t, "release_amd64.go", func(fn *ast.FuncDecl) bool { return fn.Name.Name == "storeRelease64" }, true)
	recordLines := linesOf(t, "mem_unsafe.go", func(fn *ast.FuncDecl) bool {
		switch fn.Name.Name {
		case "setFields", "setHeader", "copyShortPayload":
			return true
		}
		return false
	}, false)
	if len(releaseLines) != 2 || len(recordLines) < 10 {
		t.Fatalf("found %d release store lines and %d record-writing lines in the sources, want 2 and at least 10", len(releaseLines), len(recordLines))
	}

	archive := filepath.Join(t.TempDir(), "ringbuf.a")
	build := exec.Command(goTool, "build", "-o", archive, ".")
	build.Env = append(os.Environ(), "GOFLAGS=", "GOARCH=amd64")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(goTool, "tool", "objdump", "-s", `^github.com/kaelix-io/kaelix/ringbuf\.`, archive).Output()
	if err != nil {
		t.Fatalf("go tool objdump: %v", err)
	}
	funcs := parseObjdump(string(out))
	found := map[string]int{}
	for name, code := range funcs {
		at := map[string]int{} // address -> index
		for i, in := range code {
			at[in.addr] = i
		}
		for i, in := range code {
			if in.file != "release_amd64.go" || !releaseLines[in.line] || !isMemStore(in.text) {
				continue
			}
			found[name]++
			rel := storeDest(in.text)
			// Walk the code that runs next: straight on, through forward
			// unconditional jumps, up to a conditional or backward jump, a
			// call or a return, at most 64 instructions.
			for j, steps := i+1, 0; j < len(code) && steps < 64; j, steps = j+1, steps+1 {
				next := code[j]
				if m := jumpTarget.FindStringSubmatch(next.text); m != nil {
					k, ok := at[m[1]]
					if !strings.HasPrefix(next.text, "JMP ") || !ok || k <= j {
						break
					}
					j = k - 1
					continue
				}
				if next.file == "mem_unsafe.go" && recordLines[next.line] && isMemStore(next.text) {
					t.Errorf("%s: the record store %q (mem_unsafe.go:%d) comes after the release store %q at %s", name, next.text, next.line, in.text, in.addr)
				}
				if strings.Contains(next.text, "runtime.memmove") {
					t.Errorf("%s: the payload's memmove comes after the release store %q at %s", name, in.text, in.addr)
				}
				if isBranch(next.text) {
					break
				}
				if next.file == "release_amd64.go" && isMemStore(next.text) && sameBase(rel, storeDest(next.text)) &&
					disp(rel) == tailPositionOffset && disp(storeDest(next.text)) == tailSequenceOffset {
					t.Errorf("%s: the tail's sequence store %q comes after its position store %q", name, next.text, in.text)
				}
			}
		}
	}
	// The fast path inlines two tail pairs and the commit; reserve one
	// tail pair.
	for name, min := range map[string]int{"(*Publisher).OfferTyped": 5, "(*Publisher).reserve": 2} {
		if got := found["github.com/kaelix-io/kaelix/ringbuf."+name]; got < min {
			t.Errorf("%s: found %d inlined release stores, want at least %d (did inlining change? then update this test)", name, got, min)
		}
	}
}

// linesOf returns the source lines of file's functions that pick
// accepts; with assignOnly, only the lines holding an assignment.
func linesOf(t *testing.T, file string, pick func(*ast.FuncDecl) bool, assignOnly bool) map[int]bool {
	t.Helper()
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, file, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	lines := map[int]bool{}
	for _, d := range f.Decls {
		fn, ok := d.(*ast.FuncDecl)
		if !ok || fn.Body == nil || !pick(fn) {
			continue
		}
		ast.Inspect(fn.Body, func(n ast.Node) bool {
			if a, ok := n.(*ast.AssignStmt); ok {
				lines[fset.Position(a.Pos()).Line] = true
			}
			return true
		})
		if !assignOnly {
			for l := fset.Position(fn.Body.Lbrace).Line + 1; l < fset.Position(fn.Body.Rbrace).Line; l++ {
				lines[l] = true
			}
		}
	}
	return lines
}

type asmInstr struct {
	file       string
	line       int
	addr, text string
}

var (
	objdumpLine = regexp.MustCompile(`^\s+(\S+\.go):(\d+)\s+(0x[0-9a-f]+)\s+[0-9a-f]+\s+(.*?)\s*$`)
	jumpTarget  = regexp.MustCompile(`^J\w+\s+(0x[0-9a-f]+)`)
	memOperand  = regexp.MustCompile(`^(-?0x[0-9a-f]+|-?\d+)?\((\w+)\)`)
)

// parseObjdump splits go tool objdump's output into functions' instructions.
func parseObjdump(out string) map[string][]asmInstr {
	funcs := map[string][]asmInstr{}
	var cur string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "TEXT ") {
			cur = strings.TrimSuffix(strings.Fields(l)[1], "(SB)")
			continue
		}
		if m := objdumpLine.FindStringSubmatch(l); m != nil && cur != "" {
			n, _ := strconv.Atoi(m[2])
			funcs[cur] = append(funcs[cur], asmInstr{file: filepath.Base(m[1]), line: n, addr: m[3], text: m[4]})
		}
	}
	return funcs
}

// isMemStore reports whether an instruction is a MOV whose destination
// (the last operand, in Go assembler order) is memory other than the
// stack frame.
func isMemStore(text string) bool {
	if !strings.HasPrefix(text, "MOV") {
		return false
	}
	d := storeDest(text)
	return strings.Contains(d, "(") && !strings.Contains(d, "(SP)")
}

// storeDest is an instruction's last operand.
func storeDest(text string) string {
	i := strings.LastIndex(text, ", ")
	if i < 0 {
		return ""
	}
	return strings.TrimSpace(text[i+2:])
}

func isBranch(text string) bool {
	return strings.HasPrefix(text, "J") || strings.HasPrefix(text, "RET") || strings.HasPrefix(text, "CALL")
}

// sameBase reports whether two memory operands use the same base register
// and no index.
func sameBase(a, b string) bool {
	ma, mb := memOperand.FindStringSubmatch(a), memOperand.FindStringSubmatch(b)
	return ma != nil && mb != nil && ma[0] == a && mb[0] == b && ma[2] == mb[2]
}

// disp is a memory operand's displacement (0 if none or unparsable).
func disp(op string) uintptr {
	m := memOperand.FindStringSubmatch(op)
	if m == nil || m[1] == "" {
		return 0
	}
	v, _ := strconv.ParseInt(m[1], 0, 64)
	return uintptr(v)
}
