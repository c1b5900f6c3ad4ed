package cmd

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/trawl-dev/trawl/internal/exitcode"
	"github.com/trawl-dev/trawl/sink"
)

func (a *app) mergeCommand() *cobra.Command {
	var output string
	var quiet, allowGaps bool
	c := &cobra.Command{
		Use:   "merge [-o FILE] FILE...",
		Short: "Merge the JSON Lines outputs of shards into one stream ordered by index",
		Long: `merge combines the outputs of 'trawl --shard K/N' runs (or any trawl JSON
Lines outputs of one list) into one stream ordered by index, reading the
files as they are rather than loading them. An incomplete last line, as a
killed run leaves, is skipped.

An index found twice is written once, and the merge exits 3. Missing
indexes (a shard not given or not finished) mean the output is incomplete:
the merge writes what it has and exits 3, unless --allow-gaps says gaps are
expected. Only indexes before the last one found can be seen to be missing.`,
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
				a.say("merged %s from %s", count(rep.Records, "record", "records"), count(len(files), "file", "files"))
				if rep.TornLines > 0 {
					a.say("skipped %s", count(rep.TornLines, "incomplete last line", "incomplete last lines"))
				}
			}
			// Each problem gets its own line; the last one is the error.
			var problems []string
			if rep.DuplicateCount > 0 {
				problems = append(problems, fmt.Sprintf("%s appeared more than once (kept the first): %s%s",
					count(rep.DuplicateCount, "index", "indexes"), strings.Join(rep.Duplicates, "; "), more(len(rep.Duplicates), 10)))
			}
			if rep.GapRecords > 0 {
				gaps := fmt.Sprintf("%s missing: %s%s", count(rep.GapRecords, "index", "indexes"), strings.Join(rep.Gaps, ", "), more(len(rep.Gaps), 10))
				switch {
				case !allowGaps:
					problems = append(problems, gaps+"\nif gaps are expected, add --allow-gaps")
				case !quiet:
					a.say("%s", gaps)
				}
			}
			if len(problems) == 0 {
				return nil
			}
			for _, p := range problems[:len(problems)-1] {
				a.say("%s", p)
			}
			return exitcode.New(exitcode.SomeFailed, errors.New(problems[len(problems)-1]))
		},
	}
	c.Flags().StringVarP(&output, "output", "o", "-", "write the merged records to `file` (- for standard output)")
	c.Flags().BoolVar(&allowGaps, "allow-gaps", false, "exit 0 although indexes are missing (they are still reported)")
	c.Flags().BoolVarP(&quiet, "quiet", "q", false, "no summary on stderr")
	setExitStatus(c, mergeExitStatus)
	return c
}

const mergeExitStatus = `Exit status:
  0    merged: no index twice, none missing (or --allow-gaps)
  1    a file could not be read or written, or holds a line that is not a trawl record
  2    usage error
  3    an index appeared more than once, or indexes are missing; the output
       is written all the same (each index once)`

// more hints that a list was cut at its limit.
func more(shown, limit int) string {
	if shown == limit {
		return ", ..."
	}
	return ""
}
