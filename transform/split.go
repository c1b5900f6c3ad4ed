package transform

import (
	"errors"
	"strings"
)

// splitCommand splits an exec command line into words with POSIX shell
// quoting: 'single quotes' keep everything literally, "double quotes" keep
// everything but \" \\ \$ \` escapes, and a backslash outside quotes escapes
// the next character. Unlike a shell it expands nothing: `$TRAWL_URL` in
// `sh -c "echo $TRAWL_URL"` reaches sh as written, to be expanded per
// record, and ;, |, & and $( ) are refused rather than silently passed on,
// since without a shell they would not mean what they look like.
func splitCommand(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case c == '\'':
			end := strings.IndexByte(s[i+1:], '\'')
			if end < 0 {
				return nil, errors.New("unterminated single quote")
			}
			cur.WriteString(s[i+1 : i+1+end])
			i += end + 1
			inWord = true
		case c == '"':
			i++
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) && strings.IndexByte("\"\\$`", s[i+1]) >= 0 {
					i++
				}
				cur.WriteByte(s[i])
			}
			if i >= len(s) {
				return nil, errors.New("unterminated double quote")
			}
			inWord = true
		case c == '\\':
			if i+1 == len(s) {
				return nil, errors.New("backslash at the end of the command")
			}
			i++
			cur.WriteByte(s[i])
			inWord = true
		case strings.IndexByte(";|&<>`", c) >= 0 || c == '$' && i+1 < len(s) && s[i+1] == '(':
			return nil, errors.New("shell syntax (" + string(c) + ") outside quotes: exec runs no shell; write sh -c '...' to use one")
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}
