package sink

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"mime"
	"net/url"
	"path"
	"strconv"
	"strings"
	"unicode/utf8"
)

// DefaultTemplate lays files out like `wget -x`: one directory per host.
const DefaultTemplate = "{host}/{path}"

// maxComponent caps one path component in bytes; most file systems allow
// 255, and suffixes (~N, a query hash) need room.
const maxComponent = 200

// maxName caps a whole relative name; longer names fall back to a hash.
const maxName = 1000

// Template is a parsed --name template.
type Template struct {
	parts []string // literal text and {token}s, in order
	text  string
}

// ParseTemplate parses a --name template, which mixes literal text with
// {host}, {path}, {index}, {sha256} and {ext}.
func ParseTemplate(s string) (Template, error) {
	t := Template{text: s}
	rest := s
	for rest != "" {
		i := strings.IndexByte(rest, '{')
		if i < 0 {
			t.parts = append(t.parts, rest)
			break
		}
		if i > 0 {
			t.parts = append(t.parts, rest[:i])
		}
		j := strings.IndexByte(rest[i:], '}')
		if j < 0 {
			return Template{}, fmt.Errorf("bad name template %q: unclosed {", s)
		}
		tok := rest[i : i+j+1]
		switch tok {
		case "{host}", "{path}", "{index}", "{sha256}", "{ext}":
		default:
			return Template{}, fmt.Errorf("bad name template %q: unknown %s (use {host}, {path}, {index}, {sha256}, {ext})", s, tok)
		}
		t.parts = append(t.parts, tok)
		rest = rest[i+j+1:]
	}
	if len(t.parts) == 0 {
		return Template{}, fmt.Errorf("empty name template")
	}
	return t, nil
}

// Uses reports whether the template has the token, such as "{sha256}".
func (t Template) Uses(token string) bool {
	for _, p := range t.parts {
		if p == token {
			return true
		}
	}
	return false
}

// String returns the template as written.
func (t Template) String() string { return t.text }

// NameInput is what a file name is made from.
type NameInput struct {
	URL         *url.URL
	Index       int64
	ContentType string
	// SHA256 is the body's hex SHA-256, for {sha256} (only with that digest).
	SHA256 string
}

// Name maps a saved body to a relative, slash-separated path that stays
// inside the output directory whatever the URL holds: each component is
// percent-decoded and then sanitized (no "." or "..", no control
// characters, NUL or backslashes, valid UTF-8, at most 200 bytes), empty
// components are dropped, and a name longer than 1000 bytes becomes a hash.
//
// {ext} is the extension of the URL path's last segment (lowercased, 1 to
// 10 letters and digits), else the usual one for the Content-Type, else
// "bin". Placed right after a "." of the template, it adjusts rather than
// appends, like wget --adjust-extension: when the name built so far
// already ends in "."+ext (in any case), the "." and {ext} add nothing, so
// {path}.{ext} never doubles an extension (x.html stays x.html, a PDF at
// /report becomes report.pdf, /dir/ served as HTML dir/index.html).
func (t Template) Name(in NameInput) string {
	var b []byte
	for i, p := range t.parts {
		switch p {
		case "{host}":
			b = append(b, hostPart(in.URL)...)
		case "{path}":
			b = append(b, pathPart(in.URL)...)
		case "{index}":
			b = strconv.AppendInt(b, in.Index, 10)
		case "{sha256}":
			b = append(b, in.SHA256...)
		case "{ext}":
			ext := extension(in.URL, in.ContentType)
			if i > 0 && strings.HasSuffix(t.parts[i-1], ".") && hasExtension(b[:len(b)-1], ext) {
				b = b[:len(b)-1]
				continue
			}
			b = append(b, ext...)
		default:
			b = append(b, p...)
		}
	}
	var comps []string
	for c := range strings.SplitSeq(string(b), "/") {
		if c = sanitizeComponent(c); c != "" {
			comps = append(comps, c)
		}
	}
	name := strings.Join(comps, "/")
	if name == "" || len(name) > maxName {
		return HashName(in)
	}
	return name
}

// HashName is the fallback name for URLs whose natural name is empty or
// too long for the file system: a directory of its own and the URL's hash.
func HashName(in NameInput) string {
	return "_long/" + shortHash(in.URL.String(), 32) + "." + extension(in.URL, in.ContentType)
}

func hostPart(u *url.URL) string {
	host := strings.ToLower(u.Hostname())
	if p := u.Port(); p != "" && !(u.Scheme == "http" && p == "80" || u.Scheme == "https" && p == "443") {
		host += "_" + p
	}
	return host
}

// pathPart returns the decoded URL path, with index.html for directories
// and the query folded into the last component as a short hash.
func pathPart(u *url.URL) string {
	p := u.EscapedPath()
	if dec, err := url.PathUnescape(p); err == nil {
		// Decoding can produce "/" from %2F; that only adds a directory
		// level, and every level is sanitized below.
		p = dec
	}
	if p == "" || strings.HasSuffix(p, "/") {
		p += "index.html"
	}
	if u.RawQuery != "" {
		dir, file := path.Split(p)
		ext := path.Ext(file)
		if len(ext) > 12 || ext == file {
			ext = ""
		}
		p = dir + strings.TrimSuffix(file, ext) + ".q-" + shortHash(u.RawQuery, 8) + ext
	}
	return p
}

// sanitizeComponent makes one path component safe to create.
func sanitizeComponent(c string) string {
	if c == "" {
		return ""
	}
	var b strings.Builder
	for i := 0; i < len(c); {
		r, size := utf8.DecodeRuneInString(c[i:])
		switch {
		case r == utf8.RuneError && size == 1, r < 0x20, r == 0x7f, r == '\\':
			b.WriteByte('_')
		default:
			b.WriteString(c[i : i+size])
		}
		i += size
	}
	s := b.String()
	switch {
	case s == "." || s == "..":
		s = "_" + s
	case strings.HasPrefix(s, partialDir):
		s = "_" + s // never collide with trawl's own temporary directory
	}
	if len(s) > maxComponent {
		ext := path.Ext(s)
		if len(ext) > 12 {
			ext = ""
		}
		keep := maxComponent - len(ext) - 10
		for keep > 0 && !utf8.RuneStart(s[keep]) {
			keep--
		}
		s = s[:keep] + "~" + shortHash(s, 8) + ext
	}
	return s
}

// extension returns the URL path's extension or, when it has none, one for
// the content type; "bin" when neither helps.
func extension(u *url.URL, contentType string) string {
	if e := strings.TrimPrefix(path.Ext(u.Path), "."); e != "" && len(e) <= 10 && isAlnum(e) {
		return strings.ToLower(e)
	}
	mt, _, _ := mime.ParseMediaType(contentType)
	if e := commonExtension(mt); e != "" {
		return e
	}
	if exts, _ := mime.ExtensionsByType(mt); len(exts) > 0 && isAlnum(exts[0][1:]) {
		return exts[0][1:]
	}
	return "bin"
}

// hasExtension reports whether name ends in "." and ext, in any case.
func hasExtension(name []byte, ext string) bool {
	n := len(name) - len(ext)
	return n > 0 && name[n-1] == '.' && strings.EqualFold(string(name[n:]), ext)
}

func isAlnum(s string) bool {
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return s != ""
}

func shortHash(s string, n int) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])[:n]
}

// withSuffix inserts "~n" before the extension of the last component, for
// a second body that maps to a name already taken.
func withSuffix(name string, n int) string {
	dir, file := path.Split(name)
	ext := path.Ext(file)
	if ext == file || len(ext) > 12 {
		ext = ""
	}
	return dir + strings.TrimSuffix(file, ext) + "~" + strconv.Itoa(n) + ext
}

// commonExtension maps the content types trawl meets most to their usual
// extension; mime.ExtensionsByType depends on the machine's tables.
func commonExtension(mediaType string) string {
	switch mediaType {
	case "text/html", "application/xhtml+xml":
		return "html"
	case "application/json":
		return "json"
	case "text/plain":
		return "txt"
	case "text/css":
		return "css"
	case "text/javascript", "application/javascript":
		return "js"
	case "application/xml", "text/xml":
		return "xml"
	case "text/csv":
		return "csv"
	case "image/png":
		return "png"
	case "image/jpeg":
		return "jpg"
	case "image/gif":
		return "gif"
	case "image/webp":
		return "webp"
	case "image/svg+xml":
		return "svg"
	case "application/pdf":
		return "pdf"
	case "application/zip":
		return "zip"
	case "application/gzip":
		return "gz"
	}
	return ""
}
