package cmd

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/trawl-dev/trawl/internal/exitcode"
)

// TestHelpEveryCommand asks for the help of every command in the real tree,
// in the three ways people do (--help, -h, help COMMAND), so that a command
// added later is covered without anyone remembering to add it here. Each
// must exit 0 with its usage and its exit statuses on stdout and nothing
// on stderr.
func TestHelpEveryCommand(t *testing.T) {
	root := testApp().rootCommand()
	var cmds []*cobra.Command
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Hidden {
			return
		}
		c.InitDefaultHelpFlag() // as running it would, which UseLine reflects
		cmds = append(cmds, c)
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	if len(cmds) < 7 {
		t.Fatalf("found only %d commands; the walk is not seeing the tree", len(cmds))
	}
	for _, c := range cmds {
		path := strings.Fields(c.CommandPath())[1:] // without "trawl"
		for _, args := range [][]string{
			append(append([]string(nil), path...), "--help"),
			append(append([]string(nil), path...), "-h"),
			append([]string{"help"}, path...),
		} {
			t.Run(strings.Join(args, " "), func(t *testing.T) {
				code, stdout, stderr := runCaught(args)
				if code != 0 || stderr != "" {
					t.Fatalf("exit status %d, stderr:\n%s", code, stderr)
				}
				if want := "Usage:\n  " + c.UseLine() + "\n"; !strings.Contains(stdout, want) {
					t.Errorf("stdout lacks %q:\n%s", want, stdout)
				}
				if !strings.Contains(stdout, "\nExit status:\n  0 ") {
					t.Errorf("stdout lists no exit statuses:\n%s", stdout)
				}
			})
		}
	}
}

// runCaught runs trawl in this process and turns a panic into exit status
// 2 with the panic on stderr, as the Go runtime would report it.
func runCaught(args []string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	defer func() {
		if p := recover(); p != nil {
			code, stdout, stderr = 2, out.String(), fmt.Sprintf("%s\npanic: %v", errOut.String(), p)
		}
	}()
	code = run(context.Background(), streams{In: strings.NewReader(""), Out: &out, Err: &errOut}, args)
	return code, out.String(), errOut.String()
}

// TestHelpMistakesAreUsageErrors: asking for help on something that is not
// a command, or for a shell trawl cannot complete, is a command-line
// mistake, status 2, with the hint naming the command.
func TestHelpMistakesAreUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		hint string
	}{
		{[]string{"help", "nosuch"}, "Run 'trawl help --help' for usage."},
		{[]string{"help", "merge", "extra"}, "Run 'trawl help --help' for usage."},
		{[]string{"completion", "tcsh"}, "Run 'trawl completion --help' for usage."},
		{[]string{"completion", "bash", "zsh"}, "Run 'trawl completion --help' for usage."},
		{[]string{"merge", "--no-such-flag"}, "Run 'trawl merge --help' for usage."},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, stdout, stderr := runCaught(tc.args)
			if code != exitcode.Usage || stdout != "" {
				t.Errorf("exit status %d, want %d; stdout:\n%s", code, exitcode.Usage, stdout)
			}
			if !strings.HasPrefix(stderr, "trawl: ") || !strings.HasSuffix(stderr, "\n"+tc.hint+"\n") {
				t.Errorf("stderr:\n%s\nwant a trawl: message and the hint %q", stderr, tc.hint)
			}
		})
	}
}
