package cmd

import "testing"

// TestFixedValuesAreAccepted: every value completion offers for an option
// is one a run takes. The lists come from the checks' own definitions;
// this catches a check that also wants something the list lacks.
func TestFixedValuesAreAccepted(t *testing.T) {
	t.Chdir(t.TempDir())
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	tested := 0
	// Options that only apply beside another say so.
	beside := map[string][]string{optDigest: {"--output-dir", "d"}}
	for _, o := range testApp().options {
		for _, v := range fixedValues(o.name) {
			tested++
			if code, _, stderr := runCaught(append([]string{"config", "--" + o.name, v}, beside[o.name]...)); code != 0 {
				t.Errorf("--%s %s is offered but refused:\n%s", o.name, v, stderr)
			}
		}
	}
	if tested < 10 {
		t.Fatalf("only %d values offered: fixedValues does not see the options", tested)
	}
}
