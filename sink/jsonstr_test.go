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

func TestAppendMillis(t *testing.T) {
	for _, us := range []int64{0, 1, 999, 1000, 1500, 12345, 1234567890} {
		if got, want := string(appendMillis(nil, us)), encodingJSON(float64(us)/1000); got != want {
			t.Errorf("appendMillis(%d) = %s, want %s", us, got, want)
		}
	}
}
