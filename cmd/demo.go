package cmd

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/trawl-dev/trawl/internal/demosite"
	"github.com/trawl-dev/trawl/stats"
	"github.com/trawl-dev/trawl/transform"
)

func (a *app) demoCommand() *cobra.Command {
	c := &cobra.Command{
		Use:   "demo [flags]",
		Short: "Fetch a built-in demo site on 127.0.0.1 (no network needed)",
		Long: `demo starts a small site on 127.0.0.1 (a few hundred pages with titles and
links, some JSON, a missing page, an endpoint that fails twice with 503 and
then succeeds, and a slow page) and runs the real pipeline over it, with the
same flags as a normal run.

Unless told otherwise it extracts each page's title (-x title) and tolerates
the one deliberately missing page (--max-failures 1), so it exits 0.`,
		Example: `  trawl demo
  trawl demo -o demo.jsonl --progress always
  trawl demo -f csv -x sha256 | head`,
		Args: noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			cfg, err := a.config(c.Flags(), nil)
			if err != nil {
				return err
			}
			if cfg.TransformsFromDefault {
				cfg.Transforms = []transform.Spec{{Key: "title", Name: "title"}}
				if err := cfg.Validate(); err != nil {
					return err
				}
			}
			if cfg.MaxFailuresFromDefault {
				cfg.MaxFailures, _ = stats.ParseTolerance(strconv.Itoa(demosite.ExpectedFailures))
			}
			// The site outlives an interrupt so that in-flight requests can
			// finish during the grace period like against any real server.
			site, err := demosite.Start(context.WithoutCancel(c.Context()), demosite.Options{RetryAfter: 1})
			if err != nil {
				return err
			}
			defer site.Close()
			urls := site.URLs()
			if !cfg.Quiet {
				fmt.Fprintf(a.streams.Err, "trawl: demo site at %s, fetching %d URLs\n", site.URL, len(urls))
			}
			cfg.Inputs = nil
			cfg.Stdin = strings.NewReader(strings.Join(urls, "\n"))
			cfg.Total = int64(len(urls))
			return a.fetchRun(c.Context(), cfg)
		},
	}
	a.addRunFlags(c)
	return c
}
