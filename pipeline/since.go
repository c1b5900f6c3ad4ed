package pipeline

import (
	"fmt"
	"os"

	"github.com/trawl-dev/trawl/internal/exitcode"
	"github.com/trawl-dev/trawl/record"
	"github.com/trawl-dev/trawl/sink"
)

// openSince opens the earlier output --since names, before anything is
// fetched: a file that is not trawl's output is a mistake that should
// cost nothing. What a previous record must hold to stand in for a 304
// depends on this run: its file and digest when bodies are saved, and
// every transform output.
func (r *run) openSince() error {
	cfg := r.cfg
	if cfg.Since == "" {
		return nil
	}
	opts := sink.SinceOptions{Files: cfg.OutputDir != "", Columns: r.chain.Columns(), TmpDir: os.TempDir()}
	if d := cfg.digest(); d != sink.NoDigest {
		opts.Digest = string(d)
	}
	s, err := sink.OpenSince(cfg.Since, opts)
	if err != nil {
		return exitcode.New(exitcode.Usage, err)
	}
	r.since = s
	switch {
	case s.Missing():
		r.say("--since %s: no such file yet, so every URL is fetched whole", cfg.Since)
	case s.Torn():
		r.say("--since %s: its incomplete last line is left out", cfg.Since)
	}
	return nil
}

// attachPrevious gives rec its record in the earlier output, which makes
// its request conditional. It must be asked for every record the run
// fetches, in input order. With --output-dir the file the earlier record
// names must still be there, since a 304 leaves it in place.
func (r *run) attachPrevious(rec *record.Record, dir *sink.Dir) error {
	if rec.Target == nil {
		return nil
	}
	p, err := r.since.Lookup(rec.Index, rec.Identity())
	if err != nil {
		return fmt.Errorf("--since: %w", err)
	}
	if p != nil && (dir == nil || dir.Holds(p.File)) {
		rec.Prev = p
	}
	return nil
}
