package cmd

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/trawl-dev/trawl/internal/redact"
	"go.yaml.in/yaml/v3"
)

func (a *app) configCommand() *cobra.Command {
	c := &cobra.Command{
		Use:   "config [flags]",
		Short: "Show the effective settings as YAML, with where each came from",
		Long: `config prints every setting as it would apply to a run with the same flags,
environment and config file, as YAML that can be saved and used with
--config. A comment after each value says where it came from: a flag, a
TRAWL_* environment variable, the config file, or the default.

A TRAWL_* variable that names no setting is not used; config warns about
it on stderr, as a run does. An unknown key in the config file is an error.`,
		Args:              noArgs,
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE: func(c *cobra.Command, _ []string) error {
			s, err := a.settings(c.Flags())
			if err != nil {
				return err
			}
			if _, err := s.resolve(nil, a.registry); err != nil {
				return err
			}
			w := c.OutOrStdout()
			if s.file != "" {
				fmt.Fprintf(w, "# config file: %s\n", s.file)
			} else {
				fmt.Fprintln(w, "# no config file found")
			}
			for _, name := range s.order {
				st := s.byName[name]
				fmt.Fprintf(w, "%s: %s  # %s\n", name, yamlValue(st), st.from)
			}
			return nil
		},
	}
	a.addRunFlags(c)
	// config takes a run's flags but only reads and checks them.
	setExitStatus(c, configExitStatus)
	return c
}

const configExitStatus = `Exit status:
  0    every setting is valid; they were printed
  2    a setting is wrong (the message says which, and where it came from)`

// yamlValue renders a setting as a YAML value: a scalar, or a flow list.
// Credentials (sensitive header values, proxy userinfo, --user) are masked.
func yamlValue(st *setting) string {
	switch st.opt.kind {
	case kindList:
		items := make([]string, len(st.items))
		for i, it := range st.items {
			if st.opt.name == optHeader {
				it = redact.HeaderLine(it)
			}
			items[i] = yamlScalar(it)
		}
		return "[" + strings.Join(items, ", ") + "]"
	case kindInt, kindBool:
		return st.text
	}
	if st.opt.name == optProxy {
		return yamlScalar(redact.URL(st.text))
	}
	if st.opt.name == optUser {
		return yamlScalar(redact.Secret(st.text))
	}
	return yamlScalar(st.text)
}

// yamlScalar writes s plain when YAML reads it back as the same string, and
// double-quoted otherwise (Go's quoting escapes are a subset of YAML's).
func yamlScalar(s string) string {
	plain := s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._/%+-", r))
	}) < 0
	if plain {
		var back any
		if err := yaml.Unmarshal([]byte("v: "+s), &back); err == nil {
			if m, ok := back.(map[string]any); ok && m["v"] == s {
				return s
			}
		}
	}
	return strconv.Quote(s)
}
