// Package netrc reads .netrc files, the credentials file that curl, ftp
// and git share: "machine HOST login USER password PASS" entries, and a
// "default" entry for every host no machine entry names.
//
// The syntax is curl's: tokens are separated by white space; a value with
// spaces, a quote or a leading # is written in double quotes, with \" \\
// \n \r \t escapes; a # at the start of a token starts a comment that runs
// to the end of the line; "account" is read and ignored; "macdef NAME"
// starts an ftp macro that runs to the next empty line and is skipped.
package netrc

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// File is a parsed .netrc. Its String shows no credentials.
type File struct {
	machines []entry
	def      *entry
}

type entry struct {
	machine         string
	login, password string
	hasLogin        bool
	hasPassword     bool
}

// String describes the file without the secrets it holds.
func (f *File) String() string {
	return fmt.Sprintf("netrc with %d machine entries, default entry %t", len(f.machines), f.def != nil)
}

// GoString is String, so that %#v shows no secrets either.
func (f *File) GoString() string { return f.String() }

// Lookup returns the credentials for host (a host name, without a port):
// those of the first machine entry that names it, else, when orDefault,
// those of the default entry. An entry with neither a login nor a
// password gives nothing: there is nothing to send.
func (f *File) Lookup(host string, orDefault bool) (login, password string, ok bool) {
	for _, e := range f.machines {
		if strings.EqualFold(e.machine, host) {
			return e.login, e.password, e.hasLogin || e.hasPassword
		}
	}
	if orDefault && f.def != nil {
		return f.def.login, f.def.password, f.def.hasLogin || f.def.hasPassword
	}
	return "", "", false
}

// DefaultPath is where curl looks without --netrc-file: $NETRC when set,
// else .netrc in the home directory (on Windows, _netrc when there is no
// .netrc).
func DefaultPath() (string, error) {
	if p := os.Getenv("NETRC"); p != "" {
		return p, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("cannot find the home directory for ~/.netrc: %w", err)
	}
	p := filepath.Join(home, ".netrc")
	if runtime.GOOS == "windows" {
		if _, err := os.Stat(p); errors.Is(err, os.ErrNotExist) {
			return filepath.Join(home, "_netrc"), nil
		}
	}
	return p, nil
}

// Load reads and parses the file at path.
func Load(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read the netrc file: %w", err)
	}
	f, err := Parse(string(data))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return f, nil
}

// Parse reads the text of a .netrc file. A machine entry after the
// default entry is ignored, as the format says the default comes last.
func Parse(text string) (*File, error) {
	f := &File{}
	lx := &lexer{text: text, line: 1}
	var cur *entry
	for {
		tok, quoted, err := lx.next()
		if err != nil {
			return nil, err
		}
		if tok == "" && !quoted {
			break
		}
		if quoted {
			return nil, fmt.Errorf("line %d: quoted %q where a keyword (machine, default, login, password) belongs", lx.line, tok)
		}
		switch tok {
		case "machine":
			if f.def != nil {
				// The default entry comes last, and matches every host
				// a machine entry after it could name: curl stops there.
				return f, nil
			}
			name, err := lx.value("machine")
			if err != nil {
				return nil, err
			}
			f.machines = append(f.machines, entry{machine: name})
			cur = &f.machines[len(f.machines)-1]
		case "default":
			f.def = &entry{}
			cur = f.def
		case "login", "password", "account":
			v, err := lx.value(tok)
			if err != nil {
				return nil, err
			}
			if cur == nil {
				return nil, fmt.Errorf("line %d: %s before any machine or default entry", lx.line, tok)
			}
			switch tok {
			case "login":
				cur.login, cur.hasLogin = v, true
			case "password":
				cur.password, cur.hasPassword = v, true
			}
		case "macdef":
			if _, err := lx.value("macdef"); err != nil {
				return nil, err
			}
			lx.skipMacro()
		default:
			// Other programs' keywords; curl passes over them too.
		}
	}
	return f, nil
}

// lexer splits a .netrc into tokens.
type lexer struct {
	text string
	pos  int
	line int
}

// value reads the value a keyword takes.
func (lx *lexer) value(keyword string) (string, error) {
	line := lx.line
	tok, quoted, err := lx.next()
	if err != nil {
		return "", err
	}
	if tok == "" && !quoted {
		return "", fmt.Errorf("line %d: %s without a value at the end of the file", line, keyword)
	}
	return tok, nil
}

// next returns the next token, and whether it was quoted; an unquoted
// empty token is the end of the text.
func (lx *lexer) next() (string, bool, error) {
	for lx.pos < len(lx.text) {
		c := lx.text[lx.pos]
		switch {
		case c == '\n':
			lx.line++
			lx.pos++
		case c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v':
			lx.pos++
		case c == '#':
			for lx.pos < len(lx.text) && lx.text[lx.pos] != '\n' {
				lx.pos++
			}
		case c == '"':
			return lx.quoted()
		default:
			start := lx.pos
			for lx.pos < len(lx.text) && !strings.ContainsRune(" \t\r\n\f\v", rune(lx.text[lx.pos])) {
				lx.pos++
			}
			return lx.text[start:lx.pos], false, nil
		}
	}
	return "", false, nil
}

// quoted reads a double-quoted token, the opening quote at lx.pos.
func (lx *lexer) quoted() (string, bool, error) {
	line := lx.line
	var b strings.Builder
	for lx.pos++; lx.pos < len(lx.text); lx.pos++ {
		c := lx.text[lx.pos]
		switch c {
		case '"':
			lx.pos++
			return b.String(), true, nil
		case '\n':
			lx.line++
		case '\\':
			if lx.pos+1 < len(lx.text) {
				lx.pos++
				switch e := lx.text[lx.pos]; e {
				case 'n':
					c = '\n'
				case 'r':
					c = '\r'
				case 't':
					c = '\t'
				default:
					c = e
				}
			}
		}
		b.WriteByte(c)
	}
	return "", false, fmt.Errorf("line %d: a quoted value is not closed", line)
}

// skipMacro passes over a macdef's body: from the next line to the first
// empty line.
func (lx *lexer) skipMacro() {
	i := strings.IndexByte(lx.text[lx.pos:], '\n')
	if i < 0 {
		lx.pos = len(lx.text)
		return
	}
	lx.pos += i + 1
	lx.line++
	for lx.pos < len(lx.text) {
		end := strings.IndexByte(lx.text[lx.pos:], '\n')
		line := lx.text[lx.pos:]
		if end >= 0 {
			line = line[:end]
		}
		if end < 0 {
			lx.pos = len(lx.text)
		} else {
			lx.pos += end + 1
			lx.line++
		}
		if strings.TrimRight(line, "\r") == "" {
			return
		}
	}
}
