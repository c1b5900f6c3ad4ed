package cmd

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// exitStatusKey is the command annotation holding the exit statuses the
// command can return, which its help ends with. Each command states its
// own: a table of statuses it cannot return misleads scripts.
const exitStatusKey = "trawl/exit-status"

// flagGroupKey is the flag annotation naming the help group of a run
// option ("HTTP", "Output", ...), from the option table.
const flagGroupKey = "trawl/group"

// The exit statuses of the commands that are not runs; the runs' table is
// exitcode.Help.
const (
	printExitStatus = `Exit status:
  0    printed
  2    usage error (this command takes no arguments)`
	helpExitStatus = `Exit status:
  0    help printed
  2    not a trawl command`
)

// setExitStatus records the statuses c can return, for its help.
func setExitStatus(c *cobra.Command, table string) {
	if c.Annotations == nil {
		c.Annotations = map[string]string{}
	}
	c.Annotations[exitStatusKey] = table
}

// printUsage is every command's usage: the run options in groups, since
// one flat list of 60 flags is hard to scan, any other flags after them,
// and the command's exit statuses. It only shows flags the command has.
func (a *app) printUsage(c *cobra.Command) {
	w := c.OutOrStderr()
	fmt.Fprintf(w, "Usage:\n  %s\n", c.UseLine())
	if c.HasAvailableSubCommands() {
		fmt.Fprintln(w, "\nCommands:")
		for _, sub := range c.Commands() {
			if sub.IsAvailableCommand() {
				fmt.Fprintf(w, "  %-12s %s\n", sub.Name(), sub.Short)
			}
		}
	}
	if c.Example != "" {
		fmt.Fprintf(w, "\nExamples:\n%s\n", c.Example)
	}

	var groups []string
	byGroup := map[string]*pflag.FlagSet{}
	other := pflag.NewFlagSet("other", pflag.ContinueOnError)
	other.SortFlags = false
	c.Flags().VisitAll(func(f *pflag.Flag) {
		if f.Hidden {
			return
		}
		g := f.Annotations[flagGroupKey]
		if len(g) != 1 {
			other.AddFlag(f)
			return
		}
		fs, ok := byGroup[g[0]]
		if !ok {
			fs = pflag.NewFlagSet(g[0], pflag.ContinueOnError)
			fs.SortFlags = false
			byGroup[g[0]] = fs
			groups = append(groups, g[0])
		}
		fs.AddFlag(f)
	})
	for _, g := range groups {
		fmt.Fprintf(w, "\n%s flags:\n%s", g, byGroup[g].FlagUsages())
	}
	if other.HasFlags() {
		title := "Flags"
		if len(groups) > 0 {
			title = "Other flags"
		}
		fmt.Fprintf(w, "\n%s:\n%s", title, other.FlagUsages())
	}

	if table := c.Annotations[exitStatusKey]; table != "" {
		fmt.Fprintf(w, "\n%s\n", table)
	}
	if c.HasAvailableSubCommands() {
		fmt.Fprintf(w, "\nRun '%s COMMAND --help' for more about a command.\n", c.CommandPath())
	}
}

// helpCommand replaces cobra's, which answers help about an unknown
// command with the root's help and status 0, as if it had been found.
func (a *app) helpCommand() *cobra.Command {
	c := &cobra.Command{
		Use:   "help [COMMAND]",
		Short: "Show the help of trawl or of a command",
		Long:  `help shows the same help as 'trawl COMMAND --help', or trawl's own without a COMMAND.`,
		RunE: func(c *cobra.Command, args []string) error {
			target, rest, err := c.Root().Find(args)
			if err != nil || len(rest) > 0 {
				msg := fmt.Sprintf("no help for %q: not a trawl command", strings.Join(args, " "))
				if len(args) == 1 {
					if sugg := c.Root().SuggestionsFor(args[0]); len(sugg) > 0 {
						return usageErrorf("%s\ndid you mean 'trawl help %s'?", msg, sugg[0])
					}
				}
				return usageErrorf("%s", msg)
			}
			// Flags are set up when a command runs; this one does not.
			target.InitDefaultHelpFlag()
			return target.Help()
		},
		ValidArgsFunction: func(c *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
			parent, rest, err := c.Root().Find(args)
			if err != nil || len(rest) > 0 {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			var names []cobra.Completion
			for _, sub := range parent.Commands() {
				if (sub.IsAvailableCommand() || sub == c) && strings.HasPrefix(sub.Name(), toComplete) {
					names = append(names, cobra.CompletionWithDesc(sub.Name(), sub.Short))
				}
			}
			return names, cobra.ShellCompDirectiveNoFileComp
		},
	}
	setExitStatus(c, helpExitStatus)
	return c
}
