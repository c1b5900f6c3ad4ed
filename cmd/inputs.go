package cmd

import (
	"errors"
	"io/fs"
	"os"

	"github.com/spf13/cobra"

	"github.com/trawl-dev/trawl/source"
)

// checkInputs reports a missing input file as the command-line mistake it
// is, before anything else happens. A name that is no file but close to
// a command ("trawl transfroms") was most likely meant as that command.
func checkInputs(root *cobra.Command, args []string) error {
	err := source.Readable(args)
	if err == nil {
		return nil
	}
	for _, arg := range args {
		if _, statErr := os.Stat(arg); !errors.Is(statErr, fs.ErrNotExist) {
			continue
		}
		if sugg := root.SuggestionsFor(arg); len(sugg) > 0 {
			return usageErrorf("%w\ndid you mean 'trawl %s'?", err, sugg[0])
		}
	}
	return &usageError{err}
}
