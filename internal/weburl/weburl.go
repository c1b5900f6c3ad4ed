// Package weburl parses URLs the way browsers do, by the WHATWG URL
// Standard (https://url.spec.whatwg.org/), for the two schemes trawl
// fetches. One parser serves every place trawl meets a URL — input lines,
// links found in pages and redirect targets — so that the three agree with
// each other and with the pages and tools trawl is compared with, where
// net/url follows RFC 3986 and differs: it sends "http://0x7f.1/" to DNS as
// a name where a browser connects to 127.0.0.1, and it refuses "100%.html"
// and tabs inside an href that browsers accept.
//
// Parse implements the standard's basic URL parser for http and https: a
// result with any other scheme is reported as a *SchemeError instead of
// being parsed, since trawl never fetches it. NetURL hands the result to
// the rest of trawl as a *url.URL in canonical form.
//
// Two deliberate differences from the standard, both about input that is
// not what the standard takes as input:
//   - The standard parses Unicode text; a byte that is not part of valid
//     UTF-8 is percent-encoded as itself (as net/url and wget do) rather
//     than first becoming U+FFFD.
//   - Queries are always percent-encoded as UTF-8; browsers use the legacy
//     encoding of the page (windows-1252, Shift_JIS, …) for the query of a
//     link in such a page.
package weburl

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// ErrMissingScheme reports input without a scheme and no base URL to
// resolve it against, such as "www.example.com" or "127.0.0.1:8080/".
var ErrMissingScheme = errors.New("no scheme, and no base URL to resolve it against")

// ErrNoHost reports an http(s) URL without a host, such as "http://" or
// "http://:80/".
var ErrNoHost = errors.New("no host")

// SchemeError reports a URL whose scheme is neither http nor https.
type SchemeError struct {
	// Scheme is the scheme, lowercased as the standard does.
	Scheme string
}

// Error names the scheme.
func (e *SchemeError) Error() string {
	return fmt.Sprintf("unsupported scheme %q", e.Scheme)
}

// URL is a parsed http or https URL. Every component is held in the form
// the standard serializes it, so String is a concatenation.
type URL struct {
	scheme   string // "http" or "https"
	username string // percent-encoded
	password string // percent-encoded
	host     string // a lowercase ASCII domain, a dotted-decimal IPv4 address or [IPv6]
	port     string // "" when the port is null: absent, or the scheme's default
	path     string // "/" followed by the segments joined by "/"; never empty
	query    string
	fragment string
	hasQuery bool // the query is not null ("?" alone makes it empty)
	hasFrag  bool // the fragment is not null
}

// Scheme returns "http" or "https".
func (u *URL) Scheme() string { return u.scheme }

// Hostname returns the serialized host: a lowercase ASCII domain (IDNA
// applied), an IPv4 address in dotted decimal, or an IPv6 address in
// brackets.
func (u *URL) Hostname() string { return u.host }

// Port returns the port, or "" when there is none or it is the scheme's
// default.
func (u *URL) Port() string { return u.port }

// String returns the URL serialized as the standard does (what a browser
// shows as href).
func (u *URL) String() string { return u.serialize(false) }

// StringNoFragment returns the serialization without the fragment.
func (u *URL) StringNoFragment() string { return u.serialize(true) }

func (u *URL) serialize(excludeFragment bool) string {
	n := len(u.scheme) + 3 + len(u.username) + len(u.password) + 2 + len(u.host) + len(u.port) + 1 + len(u.path) + len(u.query) + 1 + len(u.fragment) + 1
	var b strings.Builder
	b.Grow(n)
	b.WriteString(u.scheme)
	b.WriteString("://")
	if u.username != "" || u.password != "" {
		b.WriteString(u.username)
		if u.password != "" {
			b.WriteByte(':')
			b.WriteString(u.password)
		}
		b.WriteByte('@')
	}
	b.WriteString(u.host)
	if u.port != "" {
		b.WriteByte(':')
		b.WriteString(u.port)
	}
	b.WriteString(u.path)
	if u.hasQuery {
		b.WriteByte('?')
		b.WriteString(u.query)
	}
	if u.hasFrag && !excludeFragment {
		b.WriteByte('#')
		b.WriteString(u.fragment)
	}
	return b.String()
}

// NetURL returns the URL as a *url.URL in canonical form: scheme and host
// as the standard serializes them (an IPv4 address in dotted decimal, a
// domain in lowercase IDNA form, no default port), Path decoded and
// RawPath, RawQuery and RawFragment as the standard encodes them, so that
// String returns the standard's serialization and the request carries the
// path and query byte for byte.
//
// Two things net/url cannot write the way the standard does. A path that
// keeps a '%' not followed by two hex digits, or a '|' (or a host with a
// '`', '{' or '}', which the standard allows in names), goes into Opaque
// as "//host/path", which net/http sends as is (in absolute form); Path
// still holds it decoded, for code that reads the path. Userinfo and a fragment
// are written by net/url's own escaping, which decodes to the same name,
// password and fragment; userinfo is then left out of Opaque, since the
// request line would carry it (it still goes in the Authorization header).
func (u *URL) NetURL() *url.URL {
	nu := &url.URL{
		Scheme:     u.scheme,
		Host:       u.host,
		Path:       unescape(u.path),
		RawQuery:   u.query,
		ForceQuery: u.hasQuery && u.query == "",
	}
	if u.port != "" {
		nu.Host += ":" + u.port
	}
	if u.username != "" || u.password != "" {
		if u.password != "" {
			nu.User = url.UserPassword(unescape(u.username), unescape(u.password))
		} else {
			nu.User = url.User(unescape(u.username))
		}
	}
	if escaped := nu.EscapedPath(); escaped != u.path {
		nu.RawPath = u.path
		if nu.EscapedPath() != u.path {
			nu.RawPath = ""
			nu.Opaque = "//" + nu.Host + u.path
		}
	}
	if strings.ContainsAny(u.host, "`{}") {
		// net/url would write these %-escaped, and fail to read that back.
		nu.RawPath = ""
		nu.Opaque = "//" + nu.Host + u.path
	}
	if u.hasFrag {
		nu.Fragment = unescape(u.fragment)
		if nu.EscapedFragment() != u.fragment {
			nu.RawFragment = u.fragment
		}
	}
	return nu
}

// Parse parses input as a URL, resolving it against base when base is not
// nil, by the standard's basic URL parser. Leading and trailing C0 controls
// and spaces are removed, and so are tabs and newlines anywhere.
//
// A result whose scheme is not http or https is a *SchemeError. When base
// is nil, input without a scheme is ErrMissingScheme. (A base with another
// scheme resolves nothing to an http(s) URL: pass nil.)
func Parse(input string, base *URL) (*URL, error) {
	s := removeTabNewline(trimC0Space(input))
	p := parser{base: base}
	if err := p.parse(s); err != nil {
		return nil, err
	}
	u := p.u
	return &u, nil
}

func (p *parser) parse(s string) error {
	if scheme, rest, ok := splitScheme(s); ok {
		if scheme != "http" && scheme != "https" {
			return &SchemeError{Scheme: scheme}
		}
		p.u.scheme = scheme
		if p.base != nil && p.base.scheme == scheme {
			// "http:foo" against an http base is relative to it.
			if strings.HasPrefix(rest, "//") {
				return p.authority(strings.TrimLeft(rest, `/\`))
			}
			return p.relative(rest)
		}
		// "http:h", "http:/h" and "http:\\\h" all name the host h.
		return p.authority(strings.TrimLeft(rest, `/\`))
	}
	if p.base == nil {
		return ErrMissingScheme
	}
	return p.relative(s)
}

// ResolveNet parses ref against base, a URL already in net/url form, and
// returns the result in canonical form (see NetURL).
func ResolveNet(ref string, base *url.URL) (*url.URL, error) {
	b, err := Parse(base.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("base URL %s: %w", base.Redacted(), err)
	}
	u, err := Parse(ref, b)
	if err != nil {
		return nil, err
	}
	return u.NetURL(), nil
}

// parser holds the state of one Parse.
type parser struct {
	u    URL
	base *URL
	path []byte // the path as it is built, when it cannot be a slice of the input
}

// splitScheme returns the lowercased scheme and what follows its colon, if
// s starts with one.
func splitScheme(s string) (scheme, rest string, ok bool) {
	if s == "" || !isAlpha(s[0]) {
		return "", "", false
	}
	upper := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ':':
			scheme = s[:i]
			if upper {
				scheme = strings.ToLower(scheme)
			}
			return scheme, s[i+1:], true
		case 'A' <= c && c <= 'Z':
			upper = true
		case isAlpha(c) || isDigit(c) || c == '+' || c == '-' || c == '.':
		default:
			return "", "", false
		}
	}
	return "", "", false
}

// relative runs the standard's relative state: s has no scheme of its own
// (or the base's, written without slashes) and takes what it lacks from the
// base.
func (p *parser) relative(s string) error {
	b := p.base
	p.u.scheme = b.scheme
	if s != "" && (s[0] == '/' || s[0] == '\\') {
		if len(s) > 1 && (s[1] == '/' || s[1] == '\\') {
			return p.authority(strings.TrimLeft(s, `/\`))
		}
		p.u.username, p.u.password, p.u.host, p.u.port = b.username, b.password, b.host, b.port
		return p.pathStart(s)
	}
	p.u.username, p.u.password, p.u.host, p.u.port = b.username, b.password, b.host, b.port
	p.u.query, p.u.hasQuery = b.query, b.hasQuery
	switch {
	case s == "":
		p.u.path = b.path
		return nil
	case s[0] == '?':
		p.u.path = b.path
		return p.queryState(s[1:])
	case s[0] == '#':
		p.u.path = b.path
		p.fragmentState(s[1:])
		return nil
	}
	p.u.query, p.u.hasQuery = "", false
	p.path = append(p.path[:0], b.path...)
	p.shorten()
	return p.segments(s)
}

// authority parses userinfo, host and port, then the rest. s starts right
// after the slashes that introduce the authority.
func (p *parser) authority(s string) error {
	end := strings.IndexAny(s, `/\?#`)
	if end < 0 {
		end = len(s)
	}
	hostport, rest := s[:end], s[end:]
	if at := strings.LastIndexByte(hostport, '@'); at >= 0 {
		// Every '@' but the last belongs to the userinfo (as %40), and the
		// first ':' separates the password.
		user, pass, _ := strings.Cut(hostport[:at], ":")
		p.u.username = encode(user, userinfoSet)
		p.u.password = encode(pass, userinfoSet)
		hostport = hostport[at+1:]
	}
	if err := p.hostAndPort(hostport); err != nil {
		return err
	}
	return p.pathStart(rest)
}

// hostAndPort parses "host", "host:port" or "[v6]:port".
func (p *parser) hostAndPort(s string) error {
	hostEnd, inBrackets := len(s), false
scan:
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '[':
			inBrackets = true
		case ']':
			inBrackets = false
		case ':':
			if !inBrackets {
				hostEnd = i
				break scan
			}
		}
	}
	if hostEnd == 0 {
		return ErrNoHost
	}
	host, err := parseHost(s[:hostEnd])
	if err != nil {
		return err
	}
	p.u.host = host
	if hostEnd == len(s) {
		return nil
	}
	port := s[hostEnd+1:]
	n := 0
	for i := 0; i < len(port); i++ {
		if !isDigit(port[i]) {
			return fmt.Errorf("port %q is not a number", port)
		}
		if n = n*10 + int(port[i]-'0'); n > 65535 {
			return fmt.Errorf("port %s is out of range (0 to 65535)", port)
		}
	}
	if port != "" && !(p.u.scheme == "http" && n == 80 || p.u.scheme == "https" && n == 443) {
		p.u.port = strconv.Itoa(n)
	}
	return nil
}

// pathStart parses the path, query and fragment: rest is all that follows
// the host, starting with '/', '\', '?', '#' or nothing.
func (p *parser) pathStart(rest string) error {
	end := strings.IndexAny(rest, "?#")
	if end < 0 {
		end = len(rest)
	}
	switch {
	case end == 0:
		// No path at all: an http(s) URL always has one.
		p.u.path = "/"
		return p.afterPath(rest)
	case rest[0] == '/' && simplePath(rest[1:end]):
		// Most paths need no work: take them from the input as they are.
		p.u.path = rest[:end]
		return p.afterPath(rest[end:])
	}
	if rest[0] == '/' || rest[0] == '\\' {
		rest = rest[1:]
	}
	p.path = p.path[:0]
	return p.segments(rest)
}

// segments runs the standard's path state over s, appending segments to
// p.path, which holds the path so far.
func (p *parser) segments(s string) error {
	i := 0
	for {
		j := i
		for j < len(s) && s[j] != '/' && s[j] != '\\' && s[j] != '?' && s[j] != '#' {
			j++
		}
		mark := len(p.path)
		p.path = append(p.path, '/')
		p.path = appendEncoded(p.path, s[i:j], pathSet)
		seg := p.path[mark+1:]
		slash := j < len(s) && (s[j] == '/' || s[j] == '\\')
		switch {
		case isDoubleDot(seg):
			p.path = p.path[:mark]
			p.shorten()
			if !slash {
				p.path = append(p.path, '/')
			}
		case isSingleDot(seg):
			p.path = p.path[:mark]
			if !slash {
				p.path = append(p.path, '/')
			}
		}
		if !slash {
			p.u.path = string(p.path)
			return p.afterPath(s[j:])
		}
		i = j + 1
	}
}

// shorten removes the last segment of p.path, if any.
func (p *parser) shorten() {
	if i := lastSlash(p.path); i >= 0 {
		p.path = p.path[:i]
	}
}

func lastSlash(b []byte) int {
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] == '/' {
			return i
		}
	}
	return -1
}

// afterPath parses what follows the path: empty, "?query…" or "#fragment".
func (p *parser) afterPath(s string) error {
	switch {
	case s == "":
		return nil
	case s[0] == '?':
		return p.queryState(s[1:])
	default: // '#'
		p.fragmentState(s[1:])
		return nil
	}
}

func (p *parser) queryState(s string) error {
	q, frag, hasFrag := strings.Cut(s, "#")
	p.u.query, p.u.hasQuery = encode(q, specialQuerySet), true
	if hasFrag {
		p.fragmentState(frag)
	}
	return nil
}

func (p *parser) fragmentState(s string) {
	p.u.fragment, p.u.hasFrag = encode(s, fragmentSet), true
}

// simplePath reports whether a path (without its leading slash) is already
// as the standard would write it: nothing to percent-encode, no backslash,
// and no dot segment to remove.
func simplePath(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '\\' || pathSet.has(c) {
			return false
		}
		if c == '.' || c == '%' {
			// A dot segment is ".", "..", "%2e" and the like between
			// slashes; anything with a dot or '%' right after a slash is
			// left to the full parser.
			if i == 0 || s[i-1] == '/' {
				return false
			}
		}
	}
	return true
}

func isSingleDot(seg []byte) bool {
	return string(seg) == "." || len(seg) == 3 && strings.EqualFold(string(seg), "%2e")
}

func isDoubleDot(seg []byte) bool {
	switch len(seg) {
	case 2:
		return string(seg) == ".."
	case 4:
		s := strings.ToLower(string(seg))
		return s == ".%2e" || s == "%2e."
	case 6:
		return strings.EqualFold(string(seg), "%2e%2e")
	}
	return false
}

// trimC0Space removes leading and trailing C0 controls and spaces.
func trimC0Space(s string) string {
	i, j := 0, len(s)
	for i < j && s[i] <= ' ' {
		i++
	}
	for j > i && s[j-1] <= ' ' {
		j--
	}
	return s[i:j]
}

// removeTabNewline removes every tab, LF and CR, as browsers do: an href
// broken over lines in the markup still works.
func removeTabNewline(s string) string {
	if !strings.ContainsAny(s, "\t\n\r") {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if c := s[i]; c != '\t' && c != '\n' && c != '\r' {
			b = append(b, c)
		}
	}
	return string(b)
}

// unescape percent-decodes s, keeping a '%' that is not followed by two hex
// digits as it is (the standard's percent-decode).
func unescape(s string) string {
	i := strings.IndexByte(s, '%')
	if i < 0 {
		return s
	}
	b := make([]byte, 0, len(s))
	b = append(b, s[:i]...)
	for ; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			b = append(b, unhex(s[i+1])<<4|unhex(s[i+2]))
			i += 2
			continue
		}
		b = append(b, s[i])
	}
	return string(b)
}

func isAlpha(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
func isDigit(c byte) bool { return '0' <= c && c <= '9' }
func isHex(c byte) bool   { return isDigit(c) || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' }

func unhex(c byte) byte {
	switch {
	case isDigit(c):
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}
