package cmd

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/trawl-dev/trawl/fetch"
	"github.com/trawl-dev/trawl/record"
	"github.com/trawl-dev/trawl/sink"
	"github.com/trawl-dev/trawl/source"
	"github.com/trawl-dev/trawl/stage"
	"github.com/trawl-dev/trawl/transform"
)

// shellNames are the shells trawl writes completion scripts for.
func shellNames() []string { return []string{"bash", "zsh", "fish", "powershell"} }

// completionScript writes root's completion script for shell.
func completionScript(root *cobra.Command, shell string, w io.Writer) error {
	switch shell {
	case "bash":
		return root.GenBashCompletionV2(w, true)
	case "zsh":
		return root.GenZshCompletion(w)
	case "fish":
		return root.GenFishCompletion(w, true)
	case "powershell":
		return root.GenPowerShellCompletionWithDesc(w)
	}
	return fmt.Errorf("no completion script for %s", shell)
}

func (a *app) completionCommand() *cobra.Command {
	c := &cobra.Command{
		Use:   "completion SHELL",
		Short: "Print the shell completion script for bash, zsh, fish or powershell",
		Long: `completion prints a script that lets the shell complete trawl's commands
and flags, the values of options (transform names after -x, the formats
and orders --format and --fetch-order take, and so on) and file names.

bash (needs the bash-completion package):
  source <(trawl completion bash)    # in this shell
  mkdir -p ~/.local/share/bash-completion/completions
  trawl completion bash > ~/.local/share/bash-completion/completions/trawl

zsh:
  source <(trawl completion zsh)     # in this shell, once compinit has run
  mkdir -p ~/.zfunc
  trawl completion zsh > ~/.zfunc/_trawl
  # and in ~/.zshrc, before compinit:  fpath=(~/.zfunc $fpath)

fish:
  trawl completion fish | source     # in this shell
  trawl completion fish > ~/.config/fish/completions/trawl.fish

PowerShell:
  trawl completion powershell | Out-String | Invoke-Expression

The lines that write a file make completion work in every new shell.`,
		Args: func(c *cobra.Command, args []string) error {
			switch {
			case len(args) > 1:
				return usageErrorf("completion takes one shell, got %q", args)
			case len(args) == 1 && !slices.Contains(shellNames(), args[0]):
				return usageErrorf("unknown shell %q: want %s", args[0], orList(shellNames()))
			}
			return nil
		},
		ValidArgs: shellNames(),
		RunE: func(c *cobra.Command, args []string) error {
			if len(args) == 0 {
				// What someone typing just this wants is the instructions.
				return c.Help()
			}
			if err := completionScript(c.Root(), args[0], c.OutOrStdout()); err != nil {
				return fmt.Errorf("cannot write the completion script: %w", err)
			}
			return nil
		},
	}
	setExitStatus(c, `Exit status:
  0    the script (or, without SHELL, this help) was printed
  1    the script could not be written
  2    an unknown shell, or more than one`)
	return c
}

// registerCompletions tells the shell what the values of c's run options
// are. Lists come from the definitions the options are checked against,
// so that completion cannot offer what a run refuses.
func (a *app) registerCompletions(c *cobra.Command) {
	register := func(name string, fn cobra.CompletionFunc) {
		// Fails only for a flag that does not exist or is registered twice.
		if err := c.RegisterFlagCompletionFunc(name, fn); err != nil {
			panic(fmt.Sprintf("completion for --%s: %v", name, err))
		}
	}
	for _, o := range a.options {
		switch {
		case o.kind == kindBool:
			// takes no value
		case o.name == optTransform:
			register(o.name, a.completeTransform)
		case o.name == optExtra:
			register(o.name, completeCommaList(fixedValues(o.name)))
		case fixedValues(o.name) != nil:
			register(o.name, completeFrom(fixedValues(o.name)))
		case takesFile(o.name):
			register(o.name, completeFiles)
		case o.name == optOutputDir, o.name == optWARC:
			register(o.name, completeDirs)
		default:
			// Numbers, durations, patterns: nothing the shell could offer.
			register(o.name, cobra.NoFileCompletions)
		}
	}
	register("config", completeFiles)
}

// fixedValues returns the values of an option that takes one of a fixed
// set, from the definition its check uses, and nil for other options.
func fixedValues(name string) []string {
	switch name {
	case optFormat:
		return sink.FormatNames()
	case optFetchOrder, optTransformOrder:
		return stage.OrderNames()
	case optProgress:
		return progressModes
	case optLogFormat:
		return logFormats
	case optShardBy:
		return source.ShardByNames()
	case optMethod:
		return methods
	case optEngine:
		return fetch.EngineNames()
	case optDigest:
		return sink.DigestNames()
	case optInputFormat:
		return append([]string{"auto"}, source.FormatNames()...)
	case optTLSMin:
		return fetch.TLSVersionNames()
	case optRobots:
		return robotsModes
	case optExtra:
		return record.ExtraNames()
	}
	return nil
}

// takesFile reports whether an option's value names a file.
func takesFile(name string) bool {
	switch name {
	case optOutput, optLock, optStatsFile, optMetricsFile, optLogFile, optSince:
		return true
	case optCACert, optCert, optKey, optNetrcFile:
		return true
	}
	return false
}

// completeFrom offers the values that start with what was typed.
func completeFrom(values []string) cobra.CompletionFunc {
	return func(_ *cobra.Command, _ []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		var out []cobra.Completion
		for _, v := range values {
			if strings.HasPrefix(v, toComplete) {
				out = append(out, v)
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}

// completeCommaList offers the values for the last item of a
// comma-separated list, after the items already typed.
func completeCommaList(values []string) cobra.CompletionFunc {
	return func(_ *cobra.Command, _ []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		done, partial := "", toComplete
		if i := strings.LastIndexByte(toComplete, ','); i >= 0 {
			done, partial = toComplete[:i+1], toComplete[i+1:]
		}
		var out []cobra.Completion
		for _, v := range values {
			if strings.HasPrefix(v, partial) && !slices.Contains(strings.Split(done, ","), v) {
				out = append(out, done+v)
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}

func completeFiles(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
	return nil, cobra.ShellCompDirectiveDefault
}

func completeDirs(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
	return nil, cobra.ShellCompDirectiveFilterDirs
}

// completeTransform offers the registered transform names after -x. A KEY:
// typed before the name is the user's and is kept; an argument after '='
// is the user's too. A name that needs an argument is offered with its
// '=', and without a space after it when it is the only choice.
func (a *app) completeTransform(_ *cobra.Command, _ []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	if strings.Contains(toComplete, "=") {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	prefix, partial := "", toComplete
	if key, name, ok := strings.Cut(toComplete, ":"); ok {
		prefix, partial = key+":", name
	}
	var out []cobra.Completion
	allNeedArg := true
	for _, info := range a.registry.List() {
		if !strings.HasPrefix(info.Name, partial) {
			continue
		}
		word := prefix + info.Name
		if info.Arg == transform.RequiredArg {
			word += "="
		} else {
			allNeedArg = false
		}
		out = append(out, cobra.CompletionWithDesc(word, info.Summary))
	}
	directive := cobra.ShellCompDirectiveNoFileComp
	if len(out) > 0 && allNeedArg {
		directive |= cobra.ShellCompDirectiveNoSpace
	}
	return out, directive
}

// orList writes a list for a message: "a, b or c".
func orList(items []string) string {
	if len(items) < 2 {
		return strings.Join(items, "")
	}
	return strings.Join(items[:len(items)-1], ", ") + " or " + items[len(items)-1]
}
