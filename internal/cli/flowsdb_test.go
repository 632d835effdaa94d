package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// dbConfig writes a configuration whose database is new and whose flows
// directory is flowsDir, and makes it the one commands read.
func dbConfig(t *testing.T, flowsDir string) string {
	t.Helper()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "callflow.toml")
	src := "database = \"" + filepath.Join(dir, "cf.db") + "\"\nflows_dir = \"" + flowsDir + "\"\ndefault_country = \"1\"\n"
	if err := os.WriteFile(cfg, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("CALLFLOW_CONFIG", cfg)
	return cfg
}

// cli runs a command that must succeed and print want.
func cli(t *testing.T, want string, args ...string) string {
	t.Helper()
	out, errOut, code := runCLI(t, args...)
	if code != 0 || !strings.Contains(out, want) {
		t.Fatalf("%v: exit %d\n%s%s\nwant %q", args, code, out, errOut, want)
	}
	return out
}

// refused runs a command that must fail saying want.
func refused(t *testing.T, want string, args ...string) {
	t.Helper()
	out, errOut, code := runCLI(t, args...)
	if code == 0 || !strings.Contains(errOut, want) {
		t.Errorf("%v: exit %d\n%s%s\nwant the refusal %q", args, code, out, errOut, want)
	}
}

const salesFlow = `# Acme sales
name = "Sales"
numbers = ["+15550001111"]
status = "published"
[[steps]]
id = "ring"
applet = "forward"
to = "PJSIP/sales"
`

func TestExportedCopyImportsAsItselfNotTheOriginal(t *testing.T) {
	dbConfig(t, t.TempDir())
	files := writeFiles(t, map[string]string{"sales.toml": salesFlow})
	cli(t, "Sales: imported (revision", "flows", "import", filepath.Join(files, "sales.toml"))
	cli(t, "Copy of Sales: duplicated", "flows", "duplicate", "Sales")

	exported := cli(t, `name = "Copy of Sales"`, "flows", "export", "Copy of Sales")
	for _, want := range []string{`status = "draft"`, `numbers = []`, `id = "`, "# Acme sales"} {
		if !strings.Contains(exported, want) {
			t.Errorf("the export lacks %s:\n%s", want, exported)
		}
	}
	edited := strings.Replace(exported, `to = "PJSIP/sales"`, `to = "PJSIP/sales2"`, 1)
	edited = strings.Replace(edited, `numbers = []`, `numbers = ["+1 555 000 2222"]`, 1)
	path := filepath.Join(files, "copy.toml")
	os.WriteFile(path, []byte(edited), 0o644)
	cli(t, "Copy of Sales: imported (revision 2, draft, numbers +15550002222)", "flows", "import", path)

	if orig := cli(t, `name = "Sales"`, "flows", "export", "Sales"); strings.Contains(orig, "sales2") || !strings.Contains(orig, `numbers = ["+15550001111"]`) {
		t.Errorf("the original changed:\n%s", orig)
	}
	// The original's export carries its own id: importing it is a no-op.
	os.WriteFile(path, []byte(cli(t, "Sales", "flows", "export", "Sales")), 0o644)
	cli(t, "Sales: unchanged", "flows", "import", path)
}

func TestImportRefusesANameClashWithAnotherFlow(t *testing.T) {
	dbConfig(t, t.TempDir())
	files := writeFiles(t, map[string]string{
		"sales.toml":  salesFlow,
		"again.toml":  strings.Replace(salesFlow, "PJSIP/sales", "PJSIP/other", 1),
		"rename.toml": "name = \"Support\"\n[[steps]]\napplet = \"hangup\"\n",
	})
	cli(t, "Sales: imported", "flows", "import", filepath.Join(files, "sales.toml"))
	refused(t, `a flow named "Sales" already exists`, "flows", "import", filepath.Join(files, "again.toml"))
	cli(t, "Support: imported", "flows", "import", filepath.Join(files, "rename.toml"))

	// Support's export renamed to Sales: the name is another flow's.
	exp := cli(t, "Support", "flows", "export", "Support")
	os.WriteFile(filepath.Join(files, "support.toml"), []byte(strings.Replace(exp, `name = "Support"`, `name = "Sales"`, 1)), 0o644)
	refused(t, `cannot rename "Support" to "Sales"`, "flows", "import", filepath.Join(files, "support.toml"))

	if got := cli(t, "PJSIP/sales", "flows", "export", "Sales"); strings.Contains(got, "PJSIP/other") {
		t.Errorf("Sales was overwritten:\n%s", got)
	}
	cli(t, "Sales: imported (revision", "flows", "import", filepath.Join(files, "again.toml"), "--replace")
}

func TestImportRefusesAFlowThatReadsFilesBesideIt(t *testing.T) {
	dbConfig(t, t.TempDir())
	zip := `name = "Zips"
[[steps]]
id = "zip"
applet = "zip_route"
prompt = ["sound:enter-zip"]
routes = [{ name = "west", %s }]
on = { west = "bye", no_match = "bye", timeout = "bye" }
[[steps]]
id = "bye"
applet = "hangup"
`
	files := writeFiles(t, map[string]string{
		"zips.toml":   strings.Replace(zip, "%s", `file = "west.txt"`, 1),
		"west.txt":    "90001\n",
		"inline.toml": strings.Replace(zip, "%s", `exact = ["90001"]`, 1),
	})
	refused(t, "a flow kept in the database has no directory", "flows", "import", filepath.Join(files, "zips.toml"))
	if out, _, _ := runCLI(t, "flows", "list"); strings.Contains(out, "Zips") {
		t.Errorf("the refused flow is in the database:\n%s", out)
	}
	cli(t, "Zips: imported", "flows", "import", filepath.Join(files, "inline.toml"))
}

func TestImportRefusesWhatTheServerWouldNotLoad(t *testing.T) {
	flowsDir := writeFiles(t, map[string]string{"main.toml": "name = \"Main\"\nnumbers = [\"+15550001111\"]\n[[steps]]\napplet = \"hangup\"\n"})
	dbConfig(t, flowsDir)
	files := writeFiles(t, map[string]string{
		"steal.toml": "name = \"Thief\"\nnumbers = [\"+15550001111\"]\n[[steps]]\napplet = \"hangup\"\n",
		"a.toml":     "name = \"A\"\n[[steps]]\napplet = \"transfer\"\nflow = \"B\"\n",
		"b.toml":     "name = \"B\"\n[[steps]]\napplet = \"hangup\"\n",
	})
	refused(t, "the server would not load it", "flows", "import", filepath.Join(files, "steal.toml"))
	refused(t, `transfer to flow "B", which does not exist`, "flows", "import", filepath.Join(files, "a.toml"))
	cli(t, "A: imported", "flows", "import", filepath.Join(files, "a.toml"), filepath.Join(files, "b.toml"))
}

func TestFileFlowsDuplicateExportAndHistory(t *testing.T) {
	repoFlows := filepath.Join(repoRoot, "testdata", "flows")
	dbConfig(t, repoFlows)
	cli(t, "Copy of After-Hours Flow: duplicated (revision 1, draft, numbers )", "flows", "duplicate", "After-Hours Flow")
	exported := cli(t, `name = "Copy of After-Hours Flow"`, "flows", "export", "Copy of After-Hours Flow")
	if strings.Contains(exported, "+914430009999") || !strings.Contains(exported, `status = "draft"`) {
		t.Errorf("the copy of a file flow:\n%s", exported)
	}
	src, err := os.ReadFile(filepath.Join(repoFlows, "after-hours.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if got := cli(t, "After-Hours Flow", "flows", "export", "After-Hours Flow"); got != string(src) {
		t.Errorf("a file flow's export is not its file:\n%s", got)
	}
	cli(t, "After-Hours Flow is the file "+filepath.Join(repoFlows, "after-hours.toml"), "flows", "history", "After-Hours Flow")
	cli(t, `copied from the file flow "After-Hours Flow"`, "flows", "history", "Copy of After-Hours Flow")
}

func TestSimulateAndGraphSeeDatabaseFlows(t *testing.T) {
	cfg := dbConfig(t, t.TempDir())
	files := writeFiles(t, map[string]string{"sales.toml": salesFlow})
	cli(t, "Sales: imported", "flows", "import", filepath.Join(files, "sales.toml"))
	t.Setenv("CALLFLOW_CONFIG", "")
	cli(t, "dialled PJSIP/sales: answered", "simulate", "--config", cfg, "Sales", "--agents", "answered")
	cli(t, "dialled PJSIP/sales", "simulate", "--config", cfg, "+15550001111")
	cli(t, "digraph", "graph", "--config", cfg, "Sales")
}

func TestImportKeepsWhatTheFileDoesNotSay(t *testing.T) {
	dbConfig(t, t.TempDir())
	files := writeFiles(t, map[string]string{
		"sales.toml": salesFlow,
		"bare.toml":  "name = \"Sales\"\n[[steps]]\napplet = \"hangup\"\n",
	})
	cli(t, "Sales: imported (revision 1, published, numbers +15550001111)", "flows", "import", filepath.Join(files, "sales.toml"))
	cli(t, "unpublished", "flows", "unpublish", "Sales")
	cli(t, "Sales: imported (revision 3, draft, numbers +15550001111)", "flows", "import", filepath.Join(files, "bare.toml"), "--replace")
}
