package cmd

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/trawl-dev/trawl/internal/exitcode"
	"github.com/trawl-dev/trawl/sink"
)

func (a *app) mergeCommand() *cobra.Command {
	var output string
	var quiet bool
	c := &cobra.Command{
		Use:   "merge [-o FILE] FILE...",
		Short: "Merge the JSON Lines outputs of shards into one stream ordered by index",
		Long: `merge combines the outputs of 'trawl --shard K/N' runs (or any trawl JSON
Lines outputs of one list) into one stream ordered by index, reading the
files as they are rather than loading them. An index found twice is
written once and reported; missing indexes (a shard not finished yet) are
reported. An incomplete last line, as a killed run leaves, is skipped.`,
		Example: `  trawl merge shard-*.jsonl -o all.jsonl`,
		Args: func(c *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageErrorf("merge needs the files to merge")
			}
			return nil
		},
		RunE: func(c *cobra.Command, files []string) error {
			out, err := sink.Create(output, a.streams.Out, sink.OutputOptions{})
			if err != nil {
				return err
			}
			rep, err := sink.Merge(out, files, os.TempDir())
			if cerr := out.Close(err == nil); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
			if !quiet {
				a.say("merged %d records from %d files", rep.Records, len(files))
				if rep.TornLines > 0 {
					a.say("skipped %d incomplete last lines", rep.TornLines)
				}
				if rep.GapRecords > 0 {
					a.say("%d indexes missing: %s%s", rep.GapRecords, strings.Join(rep.Gaps, ", "), more(len(rep.Gaps), 10))
				}
			}
			if rep.DuplicateCount > 0 {
				return exitcode.New(exitcode.SomeFailed, fmt.Errorf("%d indexes appeared more than once (kept the first): %s%s",
					rep.DuplicateCount, strings.Join(rep.Duplicates, "; "), more(len(rep.Duplicates), 10)))
			}
			return nil
		},
	}
	c.Flags().StringVarP(&output, "output", "o", "-", "write the merged records to `file` (- for standard output)")
	c.Flags().BoolVarP(&quiet, "quiet", "q", false, "no summary on stderr")
	setExitStatus(c, mergeExitStatus)
	return c
}

const mergeExitStatus = `Exit status:
  0    merged
  1    a file could not be read or written, or holds a line that is not a trawl record
  2    usage error
  3    an index appeared more than once; the output is written all the same
       (each index once)`

// more hints that a list was cut at its limit.
func more(shown, limit int) string {
	if shown == limit {
		return ", ..."
	}
	return ""
}
