package sink

import (
	"bytes"
	"encoding/json"
	"testing"
)

// encodingJSON is what appendString must match.
func encodingJSON(v any) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
	return string(bytes.TrimSuffix(b.Bytes(), []byte("\n")))
}

func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "plain", "quo\"te\\", "\x00\x1f\x7f", "é\u2028\u2029", "\xff\xfe", "<&>", "\ttab\nline\r"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := string(appendString(nil, s)), encodingJSON(s); got != want {
			t.Fatalf("appendString(%q) = %s, encoding/json says %s", s, got, want)
		}
	})
}

func TestAppendFloat(t *testing.T) {
	for _, f := range []float64{0, 0.001, 0.999, 1, 1.5, 12.345, 1234567.89, 1e-7, 1.5e-9, 1e21, 3e25, -2.5, -1e-8} {
		if got, want := string(appendFloat(nil, f)), encodingJSON(f); got != want {
			t.Errorf("appendFloat(%v) = %s, want %s", f, got, want)
		}
	}
}
