// Package cmd is trawl's command line: it binds flags, TRAWL_* environment
// variables and the config file into one Config, hands it to the pipeline,
// draws progress, and maps the outcome to an exit status. No work happens
// here.
package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/trawl-dev/trawl/internal/exitcode"
	"github.com/trawl-dev/trawl/transform"
)

// streams are the process's standard files, replaceable in tests.
type streams struct {
	In       io.Reader
	Out      io.Writer
	Err      io.Writer
	InIsTTY  bool
	ErrIsTTY bool
}

// app holds what every command shares. It is built once per process (or
// per test) and passed down; nothing lives in package variables.
type app struct {
	streams  streams
	version  string
	registry *transform.Registry
	options  []option
}

// Main runs trawl with the process's arguments and returns its exit status.
// The first SIGINT or SIGTERM stops the run gracefully; a second one ends
// the process at once.
func Main() int {
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	done := make(chan struct{})
	defer close(done)
	sigc := make(chan os.Signal, 2)
	signal.Notify(sigc, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigc)
	go func() {
		select {
		case sig := <-sigc:
			fmt.Fprintf(os.Stderr, "\ntrawl: %s: finishing in-flight requests and writing records (send it again to quit at once)\n", sig)
			cancel(exitcode.Signal{Sig: sig})
		case <-done:
			return
		}
		select {
		case sig := <-sigc:
			// Exit here rather than through the default action of the
			// signal: signal.Reset restores the action trawl started with,
			// which for a background job of a script is "ignore".
			fmt.Fprintf(os.Stderr, "trawl: %s again: quitting at once; records in flight are lost\n", sig)
			os.Exit(exitcode.Signal{Sig: sig}.Code())
		case <-done:
		}
	}()
	// A reader that goes away (trawl urls.txt | head -1) makes writes to
	// stdout fail with EPIPE, reported as the write error it is (exit 1),
	// instead of killing trawl with SIGPIPE. Notify rather than Ignore:
	// an ignored SIGPIPE would be inherited by exec transforms' commands.
	pipec := make(chan os.Signal, 1)
	signal.Notify(pipec, syscall.SIGPIPE)
	defer signal.Stop(pipec)

	s := streams{
		In:       os.Stdin,
		Out:      os.Stdout,
		Err:      os.Stderr,
		InIsTTY:  term.IsTerminal(int(os.Stdin.Fd())),
		ErrIsTTY: term.IsTerminal(int(os.Stderr.Fd())),
	}
	return run(ctx, s, os.Args[1:])
}

// run executes one command line and reports errors the one way trawl does:
// "trawl: " and a lowercase message on stderr, usage hints on their own line.
func run(ctx context.Context, s streams, args []string) int {
	root := newApp(s).rootCommand()
	root.SetArgs(args)
	root.SetIn(s.In)
	root.SetOut(s.Out)
	root.SetErr(s.Err)
	c, err := root.ExecuteContextC(ctx)
	if err != nil {
		if msg := err.Error(); msg != "" {
			fmt.Fprintf(s.Err, "trawl: %s\n", msg)
		}
		var ue *usageError
		if errors.As(err, &ue) {
			// Point at the help of the command that was given, where the
			// flags and arguments it takes are.
			fmt.Fprintf(s.Err, "Run '%s --help' for usage.\n", c.CommandPath())
		}
	}
	return exitCode(err)
}

// newApp builds what the commands of one process (or one test) share.
func newApp(s streams) *app {
	a := &app{streams: s, version: buildVersion(), registry: transform.Builtin()}
	a.options = optionTable(a.version)
	return a
}

// buildVersion reports the module version when built by `go install`, and
// "dev" for a build from a checkout.
func buildVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return strings.TrimPrefix(bi.Main.Version, "v")
	}
	return "dev"
}

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "trawl [flags] [FILE|URL...]",
		Short: "Fetch lists of URLs in bulk, one record per URL",
		Long: `trawl fetches every URL its inputs list and writes one record per URL as
JSON Lines (default) or CSV. An input is a file of one URL per line, a CSV,
TSV or JSON Lines file with a URL column (--url-column, --keep-columns), a
URL given as an argument (http:// or https://), or standard input when no
input or '-' is given. Blank lines and lines starting with # are skipped;
any other line or row without an http(s) URL still gets a record, with
error_kind "invalid_url".

Settings come from flags, then TRAWL_<FLAG> environment variables (dashes
become underscores, e.g. TRAWL_FETCH_CONCURRENCY=8), then the config file
(--config, TRAWL_CONFIG, ./trawl.yaml or $XDG_CONFIG_HOME/trawl/config.yaml),
then the defaults. A TRAWL_ variable that names no setting gets a warning.
'trawl config' shows the effective values and their source.`,
		Example: `  trawl demo                           # try it on a built-in local site
  trawl urls.txt > out.jsonl
  cat urls.txt | trawl -x title | jq -r 'select(.status == 200) | .title'
  trawl a.txt b.txt -f csv -o out.csv
  trawl urls.txt -c 64 --unordered -x title -x sha256`,
		Args: cobra.ArbitraryArgs,
		// The arguments are input files (cobra offers the commands too).
		ValidArgsFunction: completeFiles,
		SilenceErrors:     true,
		SilenceUsage:      true,
		RunE: func(c *cobra.Command, args []string) error {
			if err := checkInputs(c, args); err != nil {
				return err
			}
			cfg, err := a.config(c.Flags(), args)
			if err != nil {
				return err
			}
			return a.fetchRun(c.Context(), cfg)
		},
	}
	root.Flags().SortFlags = false
	a.addRunFlags(root)
	root.AddCommand(a.demoCommand(), a.versionCommand(), a.transformsCommand(), a.configCommand(), a.mergeCommand(), a.completionCommand())
	root.CompletionOptions.DisableDefaultCmd = true // completionCommand replaces it
	// Without a distance cobra suggests only by prefix, so the typos that
	// checkInputs and the help command look for ("transfroms") got none.
	root.SuggestionsMinimumDistance = 2
	// Every command gets trawl's usage errors and its usage layout, also
	// those that do not set them, such as the help command.
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &usageError{err} })
	root.SetUsageFunc(func(c *cobra.Command) error {
		a.printUsage(c)
		return nil
	})
	// The help command is added now rather than when the command line
	// runs, so that the tree is complete for tests that walk it.
	root.SetHelpCommand(a.helpCommand())
	root.InitDefaultHelpCmd()
	return root
}

// addRunFlags gives c every fetch option, plus --config. A command with
// them runs the pipeline and can end with any status of a run; one that
// does not (config) sets its own statuses after this.
func (a *app) addRunFlags(c *cobra.Command) {
	fs := c.Flags()
	fs.SortFlags = false
	addFlags(fs, a.options)
	fs.String("config", "", "read settings from this YAML `file`")
	a.registerCompletions(c)
	setExitStatus(c, exitcode.Help)
}

// config resolves the layered settings for a command's flags.
func (a *app) config(fs *pflag.FlagSet, inputs []string) (*Config, error) {
	s, err := a.settings(fs)
	if err != nil {
		return nil, err
	}
	cfg, err := s.resolve(inputs, a.registry)
	if err != nil {
		return nil, err
	}
	cfg.Software = "trawl/" + a.version // for the WARC's warcinfo records
	return cfg, nil
}

// settings layers the settings for a command's flags, first warning about
// TRAWL_* variables that name no setting, since the layering ignores them.
// The warnings come even with --quiet, which silences the progress and the
// summary: they mean a setting the user made is not being used.
func (a *app) settings(fs *pflag.FlagSet) (*settings, error) {
	for _, w := range unknownEnv(os.Environ(), a.options) {
		fmt.Fprintf(a.streams.Err, "trawl: warning: %s\n", w)
	}
	return loadSettings(fs, a.options)
}

func (a *app) versionCommand() *cobra.Command {
	c := &cobra.Command{
		Use:               "version",
		Short:             "Print the version",
		Args:              noArgs,
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE: func(c *cobra.Command, _ []string) error {
			fmt.Fprintf(c.OutOrStdout(), "trawl %s (%s %s/%s)\n", a.version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
			return nil
		},
	}
	setExitStatus(c, printExitStatus)
	return c
}

func (a *app) transformsCommand() *cobra.Command {
	c := &cobra.Command{
		Use:               "transforms",
		Short:             "List the transforms usable with -x",
		Args:              noArgs,
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE: func(c *cobra.Command, _ []string) error {
			w := c.OutOrStdout()
			fmt.Fprintln(w, "Transforms (use -x NAME, -x NAME=ARG, or -x KEY:NAME[=ARG] to store the output under KEY).")
			fmt.Fprintln(w, "Those that read \"text\" take the previous transform's output when it is a string")
			fmt.Fprintln(w, "(so -x text -x regex=... searches the visible text), and the decoded body otherwise.")
			for _, info := range a.registry.List() {
				fmt.Fprintf(w, "\n  %s (reads %s)\n      %s\n      example: -x %s\n", info.Name, info.Reads, info.Summary, info.Example)
			}
			return nil
		},
	}
	setExitStatus(c, printExitStatus)
	return c
}

// noArgs is cobra.NoArgs with trawl's usage exit status.
func noArgs(c *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageErrorf("%s takes no arguments, got %q", c.CommandPath(), args)
	}
	return nil
}
