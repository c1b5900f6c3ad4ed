package cmd

import "testing"

// TestFixedValuesAreAccepted: every value completion offers for an option
// is one a run takes. The lists come from the checks' own definitions;
// this catches a check that also wants something the list lacks.
func TestFixedValuesAreAccepted(t *testing.T) {
	t.Chdir(t.TempDir())
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	tested := 0
	for _, o := range testApp().options {
		for _, v := range fixedValues(o.name) {
			tested++
			if code, _, stderr := runCaught([]string{"config", "--" + o.name, v}); code != 0 {
				t.Errorf("--%s %s is offered but refused:\n%s", o.name, v, stderr)
			}
		}
	}
	if tested < 10 {
		t.Fatalf("only %d values offered: fixedValues does not see the options", tested)
	}
}
