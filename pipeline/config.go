// Package pipeline is the one place where a trawl run is assembled: from a
// plain Config it builds the lock, the resume state, the deadline, the
// throttle, the deduper, the log, the HTTP client, the output, the encoder
// and the body directory, wires source → fetch → transform → sink with
// stats, and decides how the run ended. The command line fills the Config
// and presents the Result; it holds no run logic.
package pipeline

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/trawl-dev/trawl/fetch"
	"github.com/trawl-dev/trawl/internal/exitcode"
	"github.com/trawl-dev/trawl/internal/throttle"
	"github.com/trawl-dev/trawl/record"
	"github.com/trawl-dev/trawl/sink"
	"github.com/trawl-dev/trawl/source"
	"github.com/trawl-dev/trawl/stage"
	"github.com/trawl-dev/trawl/stats"
	"github.com/trawl-dev/trawl/transform"
)

// Stage sets one stage's workers, order and reorder window.
type Stage struct {
	Workers int
	Order   stage.Order
	// Window bounds started-but-unreleased records; 0 means automatic.
	Window int
}

// Config is everything one run needs, as plain values.
type Config struct {
	// Inputs are the URL lists, read in order; "-" is Stdin, and no
	// inputs at all means Stdin.
	Inputs []string
	Stdin  io.Reader
	// Total, when above 0, is the number of URLs the input holds, for
	// progress (the demo knows it); otherwise files are counted.
	Total int64
	// InputFormat says how inputs are read (auto: by extension), Columns
	// which columns of structured input hold the URL and which are kept.
	InputFormat source.Format
	Columns     source.Columns
	// URLTemplate, when set, makes each row's URL; BodyTemplate each
	// row's body (text/template, see source.Request). Header values of
	// Fetch.Header that hold {{ are made per row too.
	URLTemplate  string
	BodyTemplate string

	// Output is the records file ("" or "-" for Stdout), Format its
	// encoding; Atomic replaces it only when the run completes.
	Output string
	Format sink.Format
	Atomic bool
	Stdout io.Writer
	// FlushEvery bounds how long a record may stay in the output buffer.
	FlushEvery time.Duration
	// OutputDir, when set, is where bodies are saved, named by
	// NameTemplate, with Digest in their records ("" means sha256).
	OutputDir    string
	NameTemplate sink.Template
	Digest       sink.Digest

	// WARC, when set, archives every exchange as WARC records under this
	// path: a directory, or a prefix for the files' names (see
	// sink.WARCOptions). Files rotate at WARCMaxSize (0: one file);
	// WARCMaxBody caps the body bytes archived per response (0: no cap).
	// Software ("trawl/VERSION") and WARCInfo (lines of "name: value",
	// the run's settings) go into each file's warcinfo record.
	WARC        string
	WARCMaxSize int64
	WARCMaxBody int64
	Software    string
	WARCInfo    []string

	// Fetch configures the HTTP client.
	Fetch fetch.Options
	// FetchStage and TransformStage set each stage's workers and order.
	FetchStage     Stage
	TransformStage Stage
	// ReorderMemory bounds the bytes of bodies held, in input order, by
	// records waiting for a slower one ahead of them; 0 means no bound
	// beyond the record window.
	ReorderMemory int64

	// Transforms is the chain applied to each response, built from
	// Registry with TransformOptions.
	Transforms       []transform.Spec
	TransformOptions transform.Options
	Registry         *transform.Registry

	// Throttle limits requests per host and per second.
	Throttle throttle.Options
	// Dedupe fetches each distinct URL once; later lines copy the result.
	Dedupe bool
	// Shard, when set, keeps only this process's share of the list.
	Shard *source.Shard

	// Since, when set, is an earlier run's JSON Lines output: each URL
	// that had validators there is fetched conditionally, and a 304
	// carries its earlier record's body facts over (see sink.Since).
	Since string

	// Resume continues the run whose output is Output; RetryFailed then
	// also fetches again what failed permanently.
	Resume      bool
	RetryFailed bool
	// Deadline, when above 0, stops starting URLs in time for the run to
	// end within it.
	Deadline time.Duration
	// Grace is how long in-flight requests may continue after a stop.
	Grace time.Duration
	// MaxFailures is how many failed URLs the run tolerates.
	MaxFailures stats.Tolerance
	// LockFile, when set, is locked for the run.
	LockFile string
	// StatsFile and MetricsFile, when set, receive the run's figures at
	// the end, as JSON and in Prometheus text format.
	StatsFile   string
	MetricsFile string
	// LogFile, when set, receives run events and failed URLs, in
	// LogFormat (text or json).
	LogFile   string
	LogFormat string

	// Say, when set, is given each line of status meant for the person
	// running trawl (a resume note, a hint about limits). Work code never
	// prints.
	Say func(msg string)
	// Progress, when set, is called once the run starts and returns the
	// function that ends the display.
	Progress func(Progress) (stop func())
	// Observe, when set, is called with every record as it is written.
	Observe func(*record.Record)
}

// Progress is what a progress display reads.
type Progress struct {
	Stats *stats.Stats
	// Total is the number of URLs expected, or -1 while unknown.
	Total int64
	// Count, when set, counts the URLs of the input (a second pass over
	// the files, stopped when ctx is done), for a display that wants a total.
	Count func(ctx context.Context) (int64, error)
}

// usage marks a configuration that cannot run (exit status 2).
func usage(format string, args ...any) error {
	return exitcode.New(exitcode.Usage, fmt.Errorf(format, args...))
}

// IsUsage reports whether err means the configuration, not the run,
// was at fault.
func IsUsage(err error) bool { return exitcode.Of(err) == exitcode.Usage }

func (c *Config) toStdout() bool { return c.Output == "" || c.Output == "-" }

// Layout is the set of fields this configuration's records have.
func (c *Config) Layout(columns []string) record.Layout {
	l := record.Layout{Files: c.OutputDir != "", Duplicates: c.Dedupe, Columns: columns, Since: c.Since != "", Extra: c.Fetch.Extra, WARC: c.WARC != ""}
	if d := c.digest(); d != sink.NoDigest {
		l.Digest = string(d)
	}
	return l
}

func (c *Config) digest() sink.Digest {
	if c.Digest == "" {
		return sink.SHA256
	}
	return c.Digest
}

// chain builds the transform chain, refusing unknown transforms, bad
// arguments and keys that clash with the record's fields.
func (c *Config) chain() (*transform.Chain, error) {
	reg := c.Registry
	if reg == nil {
		reg = transform.Builtin()
	}
	ch, err := reg.NewChain(c.Transforms, c.Layout(nil).Reserved, c.TransformOptions)
	if err != nil {
		return nil, exitcode.New(exitcode.Usage, err)
	}
	return ch, nil
}

// request compiles the per-row request templates, or returns nil when
// there are none. It takes the templated headers out of Fetch.Header.
func (c *Config) request() (*source.Request, http.Header, error) {
	var req source.Request
	any := false
	var err error
	if c.URLTemplate != "" {
		if req.URL, err = source.ParseTemplate("--url-template", c.URLTemplate); err != nil {
			return nil, nil, usage("%w", err)
		}
		any = true
	}
	if c.BodyTemplate != "" {
		if req.Body, err = source.ParseTemplate("body template", c.BodyTemplate); err != nil {
			return nil, nil, usage("%w", err)
		}
		any = true
	}
	plain := http.Header{}
	for name, vs := range c.Fetch.Header {
		for _, v := range vs {
			if !source.IsTemplate(v) {
				plain.Add(name, v)
				continue
			}
			t, err := source.ParseTemplate("header "+name+" template", v)
			if err != nil {
				return nil, nil, usage("%w", err)
			}
			req.Header = append(req.Header, source.HeaderTemplate{Name: name, Value: t})
			any = true
		}
	}
	if !any {
		return nil, c.Fetch.Header, nil
	}
	return &req, plain, nil
}

// Validate checks the configuration as a whole, without opening anything:
// settings that make sense alone but not together, and the transform
// chain. Run calls it first; `trawl config` calls it to report the same
// errors.
func (c *Config) Validate() error {
	switch {
	case c.Atomic && c.toStdout():
		return usage("--atomic needs an output file (-o FILE)")
	case c.Resume && c.toStdout():
		return usage("--resume needs the output file to continue (-o FILE)")
	case c.Resume && c.Format != sink.JSONL:
		return usage("--resume works with -f jsonl only")
	case c.Resume && c.Atomic:
		return usage("--resume and --atomic cannot be combined: --resume appends to -o FILE as it goes, --atomic replaces it at the end")
	case c.RetryFailed && !c.Resume:
		return usage("--resume-retry-failed only applies with --resume")
	case c.OutputDir == "" && (c.NameTemplate.String() != "" && c.NameTemplate.String() != sink.DefaultTemplate || c.Fetch.MaxFileSize != 0):
		return usage("--name and --max-file-size apply to saved files: add --output-dir DIR")
	case c.OutputDir == "" && c.digest() != sink.SHA256:
		return usage("--digest applies to saved files: add --output-dir DIR")
	case c.NameTemplate.Uses("{sha256}") && c.digest() != sink.SHA256:
		return usage("--name uses {sha256}, which needs --digest sha256")
	case c.Since == "-":
		return usage("--since needs the earlier output as a file")
	case c.Since != "" && !c.toStdout() && !c.Atomic && samePath(c.Since, c.Output):
		return usage("--since and -o both name %s: add --atomic, which replaces it only once the run is done, or write elsewhere", c.Output)
	case c.WARC == "" && c.WARCMaxBody != 0:
		return usage("--warc-max-body applies to the WARC: add --warc PATH")
	case c.WARC != "" && c.Atomic:
		return usage("--warc and --atomic cannot be combined: the WARC is written as the run goes, so an interrupted run would leave captures that -o FILE, kept as it was, never names; use --resume to finish such a run")
	case c.WARCMaxSize < 0 || c.WARCMaxBody < 0:
		return usage("--warc-max-size and --warc-max-body cannot be negative")
	}
	if _, _, err := c.request(); err != nil {
		return err
	}
	_, err := c.chain()
	return err
}
