package cmd

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"github.com/spf13/viper"

	"github.com/trawl-dev/trawl/fetch"
	"github.com/trawl-dev/trawl/internal/netpolicy"
	"github.com/trawl-dev/trawl/internal/netrc"
	"github.com/trawl-dev/trawl/internal/redact"
	"github.com/trawl-dev/trawl/internal/throttle"
	"github.com/trawl-dev/trawl/internal/units"
	"github.com/trawl-dev/trawl/pipeline"
	"github.com/trawl-dev/trawl/record"
	"github.com/trawl-dev/trawl/sink"
	"github.com/trawl-dev/trawl/source"
	"github.com/trawl-dev/trawl/stage"
	"github.com/trawl-dev/trawl/stats"
	"github.com/trawl-dev/trawl/transform"
)

// origin says which layer a setting's value came from.
type origin struct {
	layer string // flag, env, config or default
	where string // the flag, variable or file
}

func (o origin) String() string {
	switch o.layer {
	case "flag":
		return "flag --" + o.where
	case "env":
		return "env " + o.where
	case "config":
		return "config file " + o.where
	}
	return "default"
}

// setting is one option's effective value and where it came from.
type setting struct {
	opt   option
	text  string
	items []string
	from  origin
}

// settings are all options, resolved through the layers.
type settings struct {
	byName map[string]*setting
	order  []string
	file   string // the config file read, if any
}

// loadSettings resolves every option in table: flag > TRAWL_* env > config
// file > default. viper does the layering; the origin of each value is
// recorded so errors and `trawl config` can say where it came from.
func loadSettings(fs *pflag.FlagSet, table []option) (*settings, error) {
	v := viper.New()
	known := make(map[string]option, len(table))
	for _, o := range table {
		known[o.name] = o
		v.SetDefault(o.name, o.def)
		if err := v.BindEnv(o.name, envName(o.name)); err != nil {
			return nil, err
		}
		if f := fs.Lookup(o.name); f != nil && f.Changed {
			rv := f.Value.(*rawValue)
			if o.kind == kindList {
				v.Set(o.name, rv.items)
			} else {
				v.Set(o.name, rv.text)
			}
		}
	}

	file, err := configFile(fs)
	if err != nil {
		return nil, err
	}
	fileLayer := viper.New()
	if file != "" {
		for _, vp := range []*viper.Viper{v, fileLayer} {
			vp.SetConfigFile(file)
			if filepath.Ext(file) == "" {
				vp.SetConfigType("yaml")
			}
			if err := vp.ReadInConfig(); err != nil {
				return nil, usageErrorf("cannot read config file %s: %w", file, err)
			}
		}
		for _, k := range fileLayer.AllKeys() {
			if _, ok := known[k]; !ok {
				if sugg, ok := closest(k, optionNames(table)); ok {
					return nil, usageErrorf("unknown key %q in config file %s\ndid you mean %s?", k, file, sugg)
				}
				return nil, usageErrorf("unknown key %q in config file %s (run 'trawl config' to list the keys)", k, file)
			}
		}
	}

	s := &settings{byName: make(map[string]*setting, len(table)), file: file}
	for _, o := range table {
		st := &setting{opt: o}
		f := fs.Lookup(o.name)
		switch {
		case f != nil && f.Changed:
			st.from = origin{"flag", o.name}
		case envSet(envName(o.name)):
			st.from = origin{"env", envName(o.name)}
		case fileLayer.IsSet(o.name):
			st.from = origin{"config", file}
		default:
			st.from = origin{"default", ""}
		}
		if err := st.absorb(v.Get(o.name)); err != nil {
			return nil, usageErrorf("%s (from %s): %w", o.name, st.from, err)
		}
		s.byName[o.name] = st
		s.order = append(s.order, o.name)
	}
	return s, nil
}

// envSet reports whether a variable is set to a non-empty value, which is
// when viper takes it (an empty variable counts as unset).
func envSet(name string) bool {
	return os.Getenv(name) != ""
}

// configFile finds the config file: --config or TRAWL_CONFIG when given
// (it must exist), else ./trawl.yaml, else $XDG_CONFIG_HOME/trawl/config.yaml.
func configFile(fs *pflag.FlagSet) (string, error) {
	explicit := ""
	if f := fs.Lookup("config"); f != nil && f.Changed {
		explicit = f.Value.String()
	} else if val := os.Getenv("TRAWL_CONFIG"); val != "" {
		explicit = val
	}
	if explicit != "" {
		if _, err := os.Stat(explicit); err != nil {
			return "", usageErrorf("cannot read config file: %w", err)
		}
		return explicit, nil
	}
	candidates := []string{"trawl.yaml"}
	if xdg := os.Getenv("XDG_CONFIG_HOME"); xdg != "" {
		candidates = append(candidates, filepath.Join(xdg, "trawl", "config.yaml"))
	} else if home := os.Getenv("HOME"); home != "" {
		candidates = append(candidates, filepath.Join(home, ".config", "trawl", "config.yaml"))
	}
	for _, c := range candidates {
		if st, err := os.Stat(c); err == nil && !st.IsDir() {
			return c, nil
		}
	}
	return "", nil
}

// absorb turns the layered value into text or items, whatever its source
// type: flags and env give strings, YAML gives numbers, bools and lists.
func (st *setting) absorb(val any) error {
	if st.opt.kind == kindList {
		switch x := val.(type) {
		case nil:
			st.items = nil
		case []string:
			st.items = x
		case []any:
			st.items = nil
			for _, it := range x {
				s, err := scalarText(it)
				if err != nil {
					return err
				}
				st.items = append(st.items, s)
			}
		case string:
			if st.from.layer == "env" {
				items, err := splitList(x)
				if err != nil {
					return err
				}
				st.items = items
			} else if x != "" {
				st.items = []string{x}
			}
		default:
			s, err := scalarText(x)
			if err != nil {
				return err
			}
			st.items = []string{s}
		}
		return nil
	}
	s, err := scalarText(val)
	if err != nil {
		return err
	}
	st.text = s
	return nil
}

func scalarText(val any) (string, error) {
	switch x := val.(type) {
	case nil:
		return "", nil
	case string:
		return x, nil
	case bool, int, int64, float64, uint64:
		return fmt.Sprint(x), nil
	case time.Duration:
		return x.String(), nil
	}
	return "", fmt.Errorf("want a single value, got %v", val)
}

// Config is the typed configuration of a fetch run: the pipeline's, plus
// what only the command line needs to present the run.
type Config struct {
	pipeline.Config
	// Quiet silences the progress bar, the summary and status notes.
	Quiet bool
	// Progress is auto, always or never.
	Progress string
	// TransformsFromDefault is true when no layer named any transform.
	TransformsFromDefault bool
	// MaxFailuresFromDefault is true when no layer set a failure tolerance.
	MaxFailuresFromDefault bool
}

// parser accumulates the first error while reading typed values, so that
// resolve reads as a list of fields rather than a ladder of checks.
type parser struct {
	s   *settings
	err error
}

func (p *parser) fail(name string, err error) {
	if p.err == nil {
		st := p.s.byName[name]
		p.err = usageErrorf("invalid %s %q (from %s): %w", name, st.display(), st.from, err)
	}
}

// display shows a setting's value in messages, with credentials masked.
func (st *setting) display() string {
	switch {
	case st.opt.name == optHeader:
		masked := make([]string, len(st.items))
		for i, h := range st.items {
			masked[i] = redact.HeaderLine(h)
		}
		return strings.Join(masked, ", ")
	case st.opt.name == optProxy:
		return redact.URL(st.text)
	case st.opt.name == optUser:
		return redact.Secret(st.text)
	case st.opt.kind == kindList:
		return strings.Join(st.items, ", ")
	}
	return st.text
}

func (p *parser) str(name string) string { return p.s.byName[name].text }

func (p *parser) list(name string) []string { return p.s.byName[name].items }

func (p *parser) intAtLeast(name string, least int) int {
	n, err := strconv.Atoi(strings.TrimSpace(p.str(name)))
	if err != nil {
		p.fail(name, errors.New("not a whole number"))
		return 0
	}
	if n < least {
		p.fail(name, fmt.Errorf("must be at least %d", least))
	}
	return n
}

func (p *parser) boolean(name string) bool {
	b, err := strconv.ParseBool(strings.TrimSpace(p.str(name)))
	if err != nil {
		p.fail(name, errors.New("want true or false"))
	}
	return b
}

func (p *parser) duration(name string, positive bool) time.Duration {
	d, err := units.ParseDuration(p.str(name))
	if err != nil {
		p.fail(name, err)
	} else if positive && d <= 0 {
		p.fail(name, errors.New("must be more than zero"))
	}
	return d
}

func (p *parser) size(name string) int64 {
	n, err := units.ParseSize(p.str(name))
	if err != nil {
		p.fail(name, err)
	}
	return n
}

func (p *parser) hostPatterns(name string) []netpolicy.HostPattern {
	var out []netpolicy.HostPattern
	for _, s := range p.list(name) {
		hp, err := netpolicy.ParseHostPattern(s)
		if err != nil {
			p.fail(name, err)
			return nil
		}
		out = append(out, hp)
	}
	return out
}

func (p *parser) rate(name string) float64 {
	r, err := throttle.ParseRate(p.str(name))
	if err != nil {
		p.fail(name, err)
	}
	return r
}

func (p *parser) order(name string) stage.Order {
	o, err := stage.ParseOrder(strings.TrimSpace(p.str(name)))
	if err != nil {
		p.fail(name, err)
	}
	return o
}

func (p *parser) oneOf(name string, allowed ...string) string {
	v := strings.TrimSpace(p.str(name))
	for _, a := range allowed {
		if strings.EqualFold(v, a) {
			return a
		}
	}
	p.fail(name, fmt.Errorf("want one of %s", strings.Join(allowed, ", ")))
	return ""
}

// resolve checks every setting and builds the run configuration.
func (s *settings) resolve(inputs []string, registry *transform.Registry) (*Config, error) {
	p := &parser{s: s}
	c := &Config{}
	c.Inputs = inputs
	c.Registry = registry
	c.Output = p.str(optOutput)
	c.Format = p.format(c.Output)
	c.Progress = p.oneOf(optProgress, progressModes...)
	c.Quiet = p.boolean(optQuiet)

	c.FetchStage.Workers = p.intAtLeast(optFetchConcurrency, 1)
	c.TransformStage.Workers = p.intAtLeast(optTransformConcurrency, 1)
	c.FetchStage.Order = p.order(optFetchOrder)
	c.TransformStage.Order = p.order(optTransformOrder)
	if p.boolean(optUnordered) {
		c.FetchStage.Order, c.TransformStage.Order = stage.CompletionOrder, stage.CompletionOrder
	}
	window := p.intAtLeast(optReorderWindow, 0)
	c.FetchStage.Window, c.TransformStage.Window = window, window
	c.ReorderMemory = p.size(optReorderMemory)

	fo := fetch.Options{Concurrency: c.FetchStage.Workers}
	fo.Timeout = p.duration(optTimeout, true)
	fo.ConnectTimeout = p.duration(optConnectTimeout, true)
	fo.Retries = p.intAtLeast(optRetries, 0)
	fo.RetryDelay = p.duration(optRetryDelay, false)
	fo.MaxRetryWait = p.duration(optMaxRetryWait, false)
	fo.MaxRedirects = p.intAtLeast(optMaxRedirects, 0)
	fo.UserAgent = p.str(optUserAgent)
	fo.Method = p.method(optMethod)
	fo.MaxBody = p.size(optMaxBody)
	if acc, err := fetch.ParseStatusSet(p.str(optAccept)); err != nil {
		p.fail(optAccept, err)
	} else {
		fo.Accept = acc
	}
	fo.RawEncoding = p.boolean(optRawEncoding)
	if px := p.str(optProxy); px != "" {
		if u, err := fetch.ParseProxy(px); err != nil {
			p.fail(optProxy, err)
		} else {
			fo.Proxy = u
		}
	}
	fo.Insecure = p.boolean(optInsecure)
	fo.HTTP1 = p.boolean(optHTTP1)
	fo.Engine = p.oneOf(optEngine, fetch.EngineNames()...)
	// TLS client options and credentials. Their files are read here, so
	// that a bad one is a usage error before anything is fetched.
	if file := p.str(optCACert); file != "" {
		if pool, err := fetch.LoadCertPool(file); err != nil {
			p.fail(optCACert, err)
		} else {
			fo.RootCAs = pool
		}
	}
	if cert, key := p.str(optCert), p.str(optKey); cert != "" {
		if c, err := fetch.LoadClientCert(cert, key); err != nil {
			p.fail(optCert, err)
		} else {
			fo.ClientCert = &c
		}
	} else if key != "" {
		p.fail(optKey, errors.New("a key needs its certificate: give --cert too"))
	}
	if v, err := fetch.ParseTLSVersion(p.str(optTLSMin)); err != nil {
		p.fail(optTLSMin, err)
	} else {
		fo.TLSMin = v
	}
	if user := p.str(optUser); user != "" {
		if a, err := fetch.ParseUser(user); err != nil {
			p.fail(optUser, err)
		} else {
			fo.User = a
		}
		for _, h := range p.list(optHeader) {
			if name, _, _ := fetch.ParseHeader(h); name == "Authorization" {
				p.fail(optUser, errors.New("an Authorization header (-H) is given too: give one of them"))
				break
			}
		}
	}
	if file := p.str(optNetrcFile); file != "" || p.boolean(optNetrc) {
		name := optNetrcFile
		if file == "" {
			name = optNetrc
			var err error
			if file, err = netrc.DefaultPath(); err != nil {
				p.fail(name, err)
			}
		}
		if file != "" {
			if nrc, err := netrc.Load(file); err != nil {
				p.fail(name, err)
			} else {
				fo.Netrc = nrc
			}
		}
	}
	fo.Cookies = p.boolean(optCookies)
	for _, entry := range p.list(optResolve) {
		key, addr, err := fetch.ParseResolve(entry)
		if err != nil {
			p.fail(optResolve, err)
			break
		}
		if fo.Resolve == nil {
			fo.Resolve = map[string]string{}
		}
		fo.Resolve[key] = addr
	}
	fo.Policy.DenyPrivate = p.boolean(optDenyPrivate)
	fo.Policy.AllowPrivateRedirects = p.boolean(optAllowPrivateRedir)
	fo.Policy.Hosts.Allow = p.hostPatterns(optAllowHost)
	fo.Policy.Hosts.Deny = p.hostPatterns(optDenyHost)
	fo.Header = http.Header{}
	for _, h := range p.list(optHeader) {
		name, value, err := fetch.ParseHeader(h)
		if err != nil {
			p.fail(optHeader, fmt.Errorf("bad header %q", redact.HeaderLine(h)))
			break
		}
		fo.Header.Add(name, value)
	}
	fo.MaxFileSize = p.size(optMaxFileSize)
	fo.RetryUnsafe = p.boolean(optRetryUnsafe)
	fo.Robots = p.oneOf(optRobots, robotsModes...) == "obey"
	if x, err := record.ParseExtras(p.list(optExtra)); err != nil {
		p.fail(optExtra, err)
	} else {
		fo.Extra = x
	}
	c.requestBody(p, &fo, s)
	c.Fetch = fo
	if f, err := source.ParseFormat(strings.TrimSpace(p.str(optInputFormat))); err != nil {
		p.fail(optInputFormat, err)
	} else {
		c.InputFormat = f
	}
	if s.byName[optURLColumn].from.layer != "default" {
		c.Columns.URL = strings.TrimSpace(p.str(optURLColumn))
	}
	for _, k := range p.list(optKeepColumns) {
		for _, name := range strings.Split(k, ",") {
			if name = strings.TrimSpace(name); name != "" {
				c.Columns.Keep = append(c.Columns.Keep, name)
			}
		}
	}
	if slices.Contains(c.Columns.Keep, "all") && len(c.Columns.Keep) > 1 {
		p.fail(optKeepColumns, errors.New("all keeps every column: name no others beside it"))
	}
	c.URLTemplate = p.str(optURLTemplate)

	for _, x := range p.list(optTransform) {
		spec, err := transform.ParseSpec(x)
		if err != nil {
			p.fail(optTransform, err)
			break
		}
		c.Transforms = append(c.Transforms, spec)
	}
	c.TransformsFromDefault = s.byName[optTransform].from.layer == "default"
	c.TransformOptions = transform.Options{ExecTimeout: p.duration(optExecTimeout, true), MaxOutput: fo.MaxBody}

	if tol, err := stats.ParseTolerance(p.str(optMaxFailures)); err != nil {
		p.fail(optMaxFailures, err)
	} else {
		c.MaxFailures = tol
	}
	c.MaxFailuresFromDefault = s.byName[optMaxFailures].from.layer == "default"
	c.Grace = p.duration(optShutdownGrace, false)
	c.FlushEvery = p.duration(optFlushInterval, true)
	c.Atomic = p.boolean(optAtomic)

	c.OutputDir = p.str(optOutputDir)
	if d, err := sink.ParseDigest(strings.TrimSpace(p.str(optDigest))); err != nil {
		p.fail(optDigest, err)
	} else {
		c.Digest = d
	}
	if tmpl, err := sink.ParseTemplate(p.str(optName)); err != nil {
		p.fail(optName, err)
	} else {
		c.NameTemplate = tmpl
	}
	c.Since = p.str(optSince)
	c.WARC = p.str(optWARC)
	c.WARCMaxSize = p.size(optWARCMaxSize)
	c.WARCMaxBody = p.size(optWARCMaxBody)
	c.WARCInfo = s.warcInfo()
	c.Resume = p.boolean(optResume)
	c.RetryFailed = p.boolean(optResumeRetryFailed)
	c.Deadline = p.duration(optDeadline, false)
	c.LockFile = p.str(optLock)
	c.StatsFile = p.str(optStatsFile)
	c.MetricsFile = p.str(optMetricsFile)
	c.LogFile = p.str(optLogFile)
	c.LogFormat = p.oneOf(optLogFormat, logFormats...)
	c.Throttle = throttle.Options{
		PerHost:     p.intAtLeast(optPerHost, 0),
		Rate:        p.rate(optRate),
		PerHostRate: p.rate(optPerHostRate),
		Adaptive:    !p.boolean(optNoAdaptive),
		MaxPause:    fo.MaxRetryWait,
	}
	c.Dedupe = p.boolean(optDedupe)
	shardBy := strings.TrimSpace(p.str(optShardBy))
	if text := strings.TrimSpace(p.str(optShard)); text != "" {
		if sp, err := source.ResolveShard(text, shardBy, os.Getenv); err != nil {
			p.fail(optShard, err)
		} else {
			c.Shard = &sp
		}
	} else if err := source.CheckShardBy(shardBy); err != nil {
		p.fail(optShardBy, err)
	}
	// {shard} in a file name becomes K, so one command line serves every
	// task of a job array; without a shard it would name a file literally.
	for _, f := range []struct {
		opt  string
		name *string
	}{{optOutput, &c.Output}, {optOutputDir, &c.OutputDir}, {optWARC, &c.WARC}, {optStatsFile, &c.StatsFile}, {optMetricsFile, &c.MetricsFile}, {optLogFile, &c.LogFile}, {optLock, &c.LockFile}, {optSince, &c.Since}} {
		if c.Shard != nil {
			*f.name = c.Shard.Expand(*f.name)
		} else if strings.Contains(*f.name, source.ShardPlaceholder) {
			p.fail(f.opt, errors.New("{shard} stands for the shard's number, and there is no --shard"))
		}
	}
	if p.err == nil {
		p.err = c.Validate()
	}
	if p.err != nil {
		return nil, p.err
	}
	return c, nil
}

// warcInfo lists the settings that differ from the defaults, as the
// warcinfo records of the WARC name them ("trawl-setting: name=value"),
// with credentials masked as everywhere else trawl shows settings.
func (s *settings) warcInfo() []string {
	var out []string
	for _, name := range s.order {
		st := s.byName[name]
		if st.from.layer == "default" {
			continue
		}
		out = append(out, fmt.Sprintf("trawl-setting: %s=%s", name, st.display()))
	}
	return out
}

// method reads -X: any method token, upper-cased as curl leaves it alone
// but servers expect (a lowercase method is almost always a typo).
func (p *parser) method(name string) string {
	m := strings.TrimSpace(p.str(name))
	if !fetch.ValidMethod(m) {
		p.fail(name, errors.New("a method is a token such as GET, POST or PATCH"))
		return ""
	}
	return strings.ToUpper(m)
}

// requestBody reads -d, --json and their templates: at most one of them,
// a static body from the text or @FILE, the JSON headers for --json and
// --json-template (unless -H gives them), and POST unless -X is given.
func (c *Config) requestBody(p *parser, fo *fetch.Options, s *settings) {
	given := 0
	for _, name := range []string{optData, optJSON, optDataTemplate, optJSONTemplate} {
		if p.str(name) != "" {
			given++
		}
	}
	if given > 1 {
		p.fail(optData, errors.New("-d, --json, --data-template and --json-template each give the body: use one"))
		return
	}
	if given == 0 {
		return
	}
	isJSON := p.str(optJSON) != "" || p.str(optJSONTemplate) != ""
	for _, name := range []string{optData, optJSON} {
		if v := p.str(name); v != "" {
			b, err := bodyArg(v)
			if err != nil {
				p.fail(name, err)
				return
			}
			fo.Body = b
		}
	}
	for _, name := range []string{optDataTemplate, optJSONTemplate} {
		if v := p.str(name); v != "" {
			c.BodyTemplate = v
		}
	}
	if isJSON {
		if fo.Header.Get("Content-Type") == "" {
			fo.Header.Set("Content-Type", "application/json")
		}
		if fo.Header.Get("Accept") == "" {
			fo.Header.Set("Accept", "application/json")
		}
	} else if fo.Header.Get("Content-Type") == "" {
		fo.Header.Set("Content-Type", "application/x-www-form-urlencoded") // what curl -d sends
	}
	if s.byName[optMethod].from.layer == "default" {
		fo.Method = http.MethodPost
	}
}

// bodyArg reads a body given as text, or as @FILE (the file's bytes, as
// curl's --data-binary reads them).
func bodyArg(v string) ([]byte, error) {
	name, ok := strings.CutPrefix(v, "@")
	if !ok {
		return []byte(v), nil
	}
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("cannot read the body: %w", err)
	}
	return b, nil
}

// format decides the output format: -f when given, else what the output
// file's extension says (out.csv is CSV), else JSON Lines. A -f that
// contradicts the extension is a mistake worth stopping for.
func (p *parser) format(output string) sink.Format {
	st := p.s.byName[optFormat]
	implied, hasImplied := sink.FormatOf(output)
	if st.from.layer == "default" && hasImplied {
		return implied
	}
	f, err := sink.ParseFormat(strings.TrimSpace(st.text))
	if err != nil {
		p.fail(optFormat, err)
		return sink.JSONL
	}
	if hasImplied && f != implied {
		p.fail(optFormat, fmt.Errorf("the output file %s says %s; drop -f or rename the file", output, implied))
	}
	return f
}
