package cmd

import (
	"encoding/csv"
	"fmt"
	"runtime"
	"strconv"
	"strings"

	"github.com/spf13/pflag"
	"github.com/trawl-dev/trawl/fetch"
	"github.com/trawl-dev/trawl/sink"
)

// kind is how an option's text is interpreted.
type kind int

const (
	kindString kind = iota
	kindInt
	kindBool
	kindDuration
	kindSize
	kindList
)

// typeName is what --help shows after the flag name.
func (k kind) typeName() string {
	switch k {
	case kindInt:
		return "int"
	case kindBool:
		return "bool"
	case kindDuration:
		return "duration"
	case kindSize:
		return "size"
	case kindList:
		return "stringArray"
	}
	return "string"
}

// option is one setting, available as a flag, an environment variable
// TRAWL_<NAME> and a key in the config file. One table drives all three,
// and `trawl config`, so they cannot drift apart.
type option struct {
	name  string
	short string
	kind  kind
	def   string
	usage string
	group string
}

// Option names, used where the code reads a resolved value.
const (
	optOutput               = "output"
	optFormat               = "format"
	optFetchConcurrency     = "fetch-concurrency"
	optTransformConcurrency = "transform-concurrency"
	optFetchOrder           = "fetch-order"
	optTransformOrder       = "transform-order"
	optUnordered            = "unordered"
	optReorderWindow        = "reorder-window"
	optReorderMemory        = "reorder-memory"
	optTimeout              = "timeout"
	optConnectTimeout       = "connect-timeout"
	optRetries              = "retries"
	optRetryDelay           = "retry-delay"
	optMaxRetryWait         = "max-retry-wait"
	optMaxRedirects         = "max-redirects"
	optHeader               = "header"
	optUserAgent            = "user-agent"
	optMethod               = "method"
	optMaxBody              = "max-body"
	optAccept               = "accept"
	optTransform            = "transform"
	optExecTimeout          = "exec-timeout"
	optProgress             = "progress"
	optQuiet                = "quiet"
	optMaxFailures          = "max-failures"
	optShutdownGrace        = "shutdown-grace"
	optFlushInterval        = "flush-interval"
	optAtomic               = "atomic"
	optOutputDir            = "output-dir"
	optName                 = "name"
	optMaxFileSize          = "max-file-size"
	optDigest               = "digest"
	optResume               = "resume"
	optResumeRetryFailed    = "resume-retry-failed"
	optDeadline             = "deadline"
	optLock                 = "lock"
	optStatsFile            = "stats-file"
	optMetricsFile          = "metrics-file"
	optLogFile              = "log-file"
	optLogFormat            = "log-format"
	optPerHost              = "per-host"
	optRate                 = "rate"
	optPerHostRate          = "per-host-rate"
	optNoAdaptive           = "no-adaptive"
	optRawEncoding          = "raw-encoding"
	optProxy                = "proxy"
	optInsecure             = "insecure"
	optHTTP1                = "http1"
	optEngine               = "engine"
	optInputFormat          = "input-format"
	optURLColumn            = "url-column"
	optKeepColumns          = "keep-columns"
	optURLTemplate          = "url-template"
	optData                 = "data"
	optJSON                 = "json"
	optDataTemplate         = "data-template"
	optJSONTemplate         = "json-template"
	optRetryUnsafe          = "retry-unsafe"
	optCookies              = "cookies"
	optResolve              = "resolve"
	optDedupe               = "dedupe"
	optDenyPrivate          = "deny-private"
	optAllowPrivateRedir    = "allow-private-redirects"
	optAllowHost            = "allow-host"
	optDenyHost             = "deny-host"
	optShard                = "shard"
	optShardBy              = "shard-by"
	optSince                = "since"
	optRobots               = "robots"
	optExtra                = "extra"
	optWARC                 = "warc"
	optWARCMaxSize          = "warc-max-size"
	optWARCMaxBody          = "warc-max-body"
)

// TLS client and authentication option names.
const (
	optCACert    = "cacert"
	optCert      = "cert"
	optKey       = "key"
	optTLSMin    = "tls-min"
	optUser      = "user"
	optNetrc     = "netrc"
	optNetrcFile = "netrc-file"
)

// optionTable lists every setting in the order --help and `trawl config`
// show them. version fills in the default User-Agent.
func optionTable(version string) []option {
	return []option{
		{optOutput, "o", kindString, "-", "write records to `file` (- for standard output)", "Output"},
		{optFormat, "f", kindString, "jsonl", "record `format`: jsonl or csv", "Output"},
		{optProgress, "", kindString, "auto", "`when` to draw a progress bar on stderr: auto (when stderr is a terminal), always or never", "Output"},
		{optQuiet, "q", kindBool, "false", "no progress bar and no summary", "Output"},
		{optFlushInterval, "", kindDuration, "1s", "longest time a record waits in the output buffer", "Output"},
		{optAtomic, "", kindBool, "false", "write -o FILE under a temporary name and rename it into place only when the run completes", "Output"},
		{optExtra, "", kindList, "", "add `facts` to each record: timing, conn, tls, redirects or all (comma-separated, repeatable)", "Output"},

		{optOutputDir, "", kindString, "", "save every successful body as a file in this `directory`", "Files"},
		{optName, "", kindString, "{host}/{path}", "file name `template` under --output-dir: {host}, {path}, {index}, {sha256}, {ext}", "Files"},
		{optMaxFileSize, "", kindSize, "0", "do not save bodies larger than this (0 = no limit)", "Files"},
		{optDigest, "", kindString, string(sink.SHA256), "`digest` of each saved file, written in the record under its name: sha256, blake3 (faster) or none (fastest: no field)", "Files"},

		{optWARC, "", kindString, "", "archive every request and response as WARC records in gzipped files under this `path`: a directory (ending in /) or a prefix for the files' names", "WARC"},
		{optWARCMaxSize, "", kindSize, "1GiB", "start a new WARC file once one reaches this size (0 = one file)", "WARC"},
		{optWARCMaxBody, "", kindSize, "0", "archive at most this much of each body; a longer one is archived cut and marked truncated (0 = no limit)", "WARC"},

		{optFetchConcurrency, "c", kindInt, "32", "requests in flight at once", "Concurrency"},
		{optTransformConcurrency, "", kindInt, strconv.Itoa(runtime.NumCPU()), "records transformed at once (default: the number of CPUs)", "Concurrency"},
		{optFetchOrder, "", kindString, "input", "fetch stage output `order`: input or completion", "Concurrency"},
		{optTransformOrder, "", kindString, "input", "transform stage output `order`: input or completion", "Concurrency"},
		{optUnordered, "", kindBool, "false", "both stages in completion order (records leave as they finish)", "Concurrency"},
		{optReorderWindow, "", kindInt, "0", "in input order, how many records a stage may hold behind the oldest unfinished one (0 = automatic: 16 per worker, at least 4096)", "Concurrency"},
		{optReorderMemory, "", kindSize, "64MiB", "in input order, how many bytes of bodies and results a stage may hold behind the oldest unfinished one (0 = no limit but the record count)", "Concurrency"},

		{optEngine, "", kindString, fetch.EngineLean, "HTTP `engine`: lean (trawl's own HTTP/1.1, with HTTP/2 where servers offer it) or net (Go's net/http, for diagnosis)", "HTTP"},
		{optTimeout, "", kindDuration, "30s", "per-attempt limit for connecting, headers and body", "HTTP"},
		{optConnectTimeout, "", kindDuration, "10s", "limit for the TCP connect and TLS handshake", "HTTP"},
		{optRetries, "", kindInt, "2", "retries after a connection error, timeout or status 408/425/429/500/502/503/504", "HTTP"},
		{optRetryDelay, "", kindDuration, "1s", "base of the exponential backoff between retries (full jitter)", "HTTP"},
		{optMaxRetryWait, "", kindDuration, "60s", "longest wait before a retry; a longer Retry-After ends the retries", "HTTP"},
		{optMaxRedirects, "", kindInt, "10", "redirects to follow (0 = none)", "HTTP"},
		{optHeader, "H", kindList, "", "extra request `header` \"Name: value\" (repeatable); a value with {{...}} is a template filled from each row", "HTTP"},
		{optUserAgent, "A", kindString, "trawl/" + version, "User-Agent header `value` (default: trawl/VERSION, as 'trawl version' prints it)", "HTTP"},
		{optMethod, "X", kindString, "GET", "request `method`, any token: GET, HEAD, POST, PUT, PATCH, DELETE, ... (POST when a body is given)", "HTTP"},
		{optMaxBody, "", kindSize, "10MiB", "keep at most this much of each body in memory; a longer body is cut there and marked truncated", "HTTP"},
		{optAccept, "", kindString, "200-399", "`statuses` that count as success, e.g. 200-299,304", "HTTP"},
		{optRawEncoding, "", kindBool, "false", "keep gzip/br/zstd bodies as sent instead of decoding them", "HTTP"},
		{optProxy, "", kindString, "", "send every request through this proxy `URL` (http://, https:// or socks5://); default: HTTP_PROXY, HTTPS_PROXY, NO_PROXY", "HTTP"},
		{optInsecure, "", kindBool, "false", "do not verify TLS certificates", "HTTP"},
		{optHTTP1, "", kindBool, "false", "use HTTP/1.1 even where the server offers HTTP/2", "HTTP"},
		{optCookies, "", kindBool, "false", "keep cookies that servers set, in memory, for the rest of the run", "HTTP"},
		{optResolve, "", kindList, "", "connect to ADDR for HOST:PORT, like curl: `HOST:PORT:ADDR` (repeatable)", "HTTP"},
		{optData, "d", kindString, "", "send this request `body` (@FILE: the file's bytes), like curl -d; the method becomes POST unless -X says otherwise", "HTTP"},
		{optJSON, "", kindString, "", "send this JSON `body` (@FILE: the file's bytes) with Content-Type and Accept application/json, like curl --json", "HTTP"},
		{optDataTemplate, "", kindString, "", "make each row's request body from this `template` ({{.column}}, {{urlquery .q}}, {{json .v}})", "HTTP"},
		{optJSONTemplate, "", kindString, "", "like --data-template, a JSON body made from this `template`, sent with the headers of --json", "HTTP"},
		{optRetryUnsafe, "", kindBool, "false", "retry requests whose method is not idempotent (POST, PATCH, ...); without it they are sent once", "HTTP"},
		{optCACert, "", kindString, "", "trust only the CA certificates in this PEM `file`, instead of the system's, as curl does (to add a CA to the system's, put it in a directory named by SSL_CERT_DIR)", "HTTP"},
		{optCert, "", kindString, "", "client certificate PEM `file` for servers that ask for one; it may hold the key too", "HTTP"},
		{optKey, "", kindString, "", "private key PEM `file` of --cert", "HTTP"},
		{optTLSMin, "", kindString, "1.2", "oldest TLS `version` to speak: 1.2 or 1.3", "HTTP"},
		{optUser, "u", kindString, "", "send `USER:PASSWORD` as basic authentication to each URL's host, dropped at a redirect to another host; trawl never prompts (USER: is an empty password)", "HTTP"},
		{optNetrc, "", kindBool, "false", "basic authentication from ~/.netrc (or $NETRC) for the hosts it names", "HTTP"},
		{optNetrcFile, "", kindString, "", "like --netrc, from this `file`", "HTTP"},

		{optPerHost, "", kindInt, "8", "requests in flight to one host (host:port) at most (0 = no limit)", "Politeness"},
		{optRate, "", kindString, "0", "requests per second over the whole run, a `rate` like 10, 10/s or 600/m (0 = no limit)", "Politeness"},
		{optPerHostRate, "", kindString, "0", "requests per second to each host, a `rate` like --rate's (0 = no limit)", "Politeness"},
		{optNoAdaptive, "", kindBool, "false", "do not slow down hosts that answer 429 or 503", "Politeness"},
		{optDedupe, "", kindBool, "false", "fetch each distinct URL once; later lines with it copy its result and say duplicate_of", "Politeness"},
		{optRobots, "", kindString, "ignore", "`mode` for robots.txt: obey (fetch each host's once, refuse what it disallows without a request, keep its Crawl-delay) or ignore", "Politeness"},

		{optDenyPrivate, "", kindBool, "false", "refuse to connect to private, loopback, link-local (cloud metadata) and other non-public addresses", "Security"},
		{optAllowPrivateRedir, "", kindBool, "false", "let redirects lead from a public address to a private one (refused by default)", "Security"},
		{optAllowHost, "", kindList, "", "fetch only hosts matching this `pattern` (example.com, *.example.com; repeatable), on every redirect too", "Security"},
		{optDenyHost, "", kindList, "", "never fetch hosts matching this `pattern` (repeatable), on every redirect too", "Security"},

		{optInputFormat, "", kindString, "auto", "`format` of the inputs: auto (by the file's extension: .csv, .tsv, .jsonl, .ndjson, else lines; standard input is lines), lines, csv, tsv or jsonl", "Input"},
		{optURLColumn, "", kindString, "url", "the `column` of CSV/TSV input (its header name or 1-based number) or the field of JSON Lines input (dotted for nested ones) that holds the URL", "Input"},
		{optKeepColumns, "", kindList, "", "input `columns` to carry into each record (all, or NAME,...; repeatable): an input object in JSON Lines, columns in CSV", "Input"},
		{optURLTemplate, "", kindString, "", "make each row's URL from this `template` instead of the URL column, e.g. 'https://api.example/items/{{pathescape .id}}'", "Input"},

		{optTransform, "x", kindList, "", "add a `transform` [KEY:]NAME[=ARG] (repeatable; see 'trawl transforms')", "Transforms"},
		{optExecTimeout, "", kindDuration, "30s", "limit for one run of an exec command or a jq program on one record", "Transforms"},

		{optShard, "", kindString, "", "handle only shard `K/N` of the list (0 <= K < N), for N processes on N machines; records keep their index in the whole list. auto[/N] takes K (and N) from a Slurm array, a Kubernetes Indexed Job (auto/N) or GNU parallel (auto/N); {shard} in -o, --output-dir, --warc, --stats-file, --metrics-file, --log-file and --lock becomes K", "Run"},
		{optShardBy, "", kindString, "host", "`what` decides a line's shard: host (all URLs of a host together) or url", "Run"},
		{optMaxFailures, "", kindString, "0", "failed URLs tolerated before exiting with status 3: a `count` or a percentage like 5% (default 0)", "Run"},
		{optShutdownGrace, "", kindDuration, "5s", "after an interrupt, how long in-flight requests may finish before being cancelled", "Run"},
		{optResume, "", kindBool, "false", "continue an interrupted run: keep the records already in -o FILE, fetch the rest and append", "Run"},
		{optResumeRetryFailed, "", kindBool, "false", "with --resume, also fetch again URLs that failed permanently (4xx, invalid, TLS)", "Run"},
		{optSince, "", kindString, "", "an earlier run's output `file` (JSON Lines): ask each URL that had an ETag or Last-Modified there whether it changed; a 304 keeps the earlier record's body facts, file and transform outputs (a missing file: fetch everything)", "Run"},
		{optDeadline, "", kindDuration, "0", "stop starting new URLs in time to end within this long, and exit 5 (0 = no deadline)", "Run"},
		{optLock, "", kindString, "", "hold an exclusive lock on this `file` for the run; exit 4 at once if another trawl holds it", "Run"},
		{optStatsFile, "", kindString, "", "write a JSON summary of the run to this `file` at the end (also when interrupted)", "Run"},
		{optMetricsFile, "", kindString, "", "write the run's figures in Prometheus text format to this `file` (for node_exporter)", "Run"},
		{optLogFile, "", kindString, "", "append run events and every failed URL to this `file`", "Run"},
		{optLogFormat, "", kindString, "text", "--log-file `format`: text or json", "Run"},
	}
}

// envName returns the environment variable for an option.
func envName(name string) string {
	return "TRAWL_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// rawValue is a pflag.Value that keeps the text as given: parsing happens
// once, for all layers alike, so a bad value gets the same message whether
// it came from a flag, the environment or the config file.
type rawValue struct {
	kind  kind
	text  string
	items []string
}

func (v *rawValue) String() string {
	if v.kind == kindList {
		return strings.Join(v.items, ", ")
	}
	return v.text
}

func (v *rawValue) Set(s string) error {
	if v.kind == kindList {
		v.items = append(v.items, s)
		return nil
	}
	v.text = s
	return nil
}

func (v *rawValue) Type() string { return v.kind.typeName() }

// addFlags registers every option on fs, each marked with its help group.
func addFlags(fs *pflag.FlagSet, table []option) {
	for _, o := range table {
		v := &rawValue{kind: o.kind, text: o.def}
		f := fs.VarPF(v, o.name, o.short, o.usage)
		f.Annotations = map[string][]string{flagGroupKey: {o.group}}
		if o.kind == kindBool {
			f.NoOptDefVal = "true"
		}
		if o.kind == kindList {
			f.DefValue = "" // an empty list needs no "(default [])" in --help
		}
		if machineDefaults[o.name] {
			// The usage says the default in words, the same on every
			// machine (and in the README), rather than this one's value.
			f.DefValue = ""
		}
	}
}

// splitList reads a list given as one string (an environment variable):
// comma-separated with CSV quoting, so `title,"regex=a,b"` is two items.
func splitList(s string) ([]string, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	r := csv.NewReader(strings.NewReader(s))
	r.TrimLeadingSpace = true
	items, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("cannot split %q into a comma-separated list: %w", s, err)
	}
	return items, nil
}

// machineDefaults are the options whose default depends on the machine or
// the build. Their usage says the default in words and --help prints no
// value, and the example config shows them commented out, so that neither
// says anything untrue anywhere.
var machineDefaults = map[string]bool{optTransformConcurrency: true, optUserAgent: true}

// The values of the options that take one of a fixed set, used to check
// them and to complete them in the shell.
var (
	progressModes = []string{"auto", "always", "never"}
	logFormats    = []string{"text", "json"}
	robotsModes   = []string{"obey", "ignore"}
	// methods are offered by completion after -X, which takes any token.
	methods = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
)
