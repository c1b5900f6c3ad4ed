package transform

import (
	"reflect"
	"strings"
	"testing"
)

func TestSplitCommand(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"wc -c", []string{"wc", "-c"}},
		{"  a\t b  ", []string{"a", "b"}},
		{`sh -c "echo $TRAWL_URL"`, []string{"sh", "-c", "echo $TRAWL_URL"}},
		{`sh -c 'echo "$1" | wc'`, []string{"sh", "-c", `echo "$1" | wc`}},
		{`a"b c"d`, []string{"ab cd"}},
		{`"a \"q\" \\ \$x \n"`, []string{`a "q" \ $x \n`}},
		{`a\ b \'c`, []string{"a b", "'c"}},
		{`''`, []string{""}},
		{`jq -r .name`, []string{"jq", "-r", ".name"}},
		{"", nil},
	} {
		got, err := splitCommand(tc.in)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("splitCommand(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{`'open`, `"open`, `end\`, "a; b", "a | b", "a && b", "a > f", "echo $(id)", "echo `id`"} {
		if got, err := splitCommand(bad); err == nil {
			t.Errorf("splitCommand(%q) = %q, want an error", bad, got)
		}
	}
}

func FuzzSplitCommand(f *testing.F) {
	for _, s := range []string{"wc -c", `sh -c "echo $X"`, `a\ b 'c d'`, `"\"`, "a;b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		words, err := splitCommand(s)
		if err != nil {
			return
		}
		// Quoting every word again and splitting must give the same words.
		var line string
		for i, w := range words {
			if i > 0 {
				line += " "
			}
			line += "'" + strings.ReplaceAll(w, "'", `'\''`) + "'"
		}
		again, err := splitCommand(line)
		if err != nil || !reflect.DeepEqual(again, words) && !(len(again) == 0 && len(words) == 0) {
			t.Fatalf("%q -> %q -> %q -> %q, %v", s, words, line, again, err)
		}
	})
}
