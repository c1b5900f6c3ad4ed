package fixedflate

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
)

// inflate decodes with the standard library, which knows nothing of this
// encoder.
func inflate(t testing.TB, b []byte) []byte {
	t.Helper()
	out, err := io.ReadAll(flate.NewReader(bytes.NewReader(b)))
	if err != nil {
		t.Fatalf("the standard library cannot inflate it: %v", err)
	}
	return out
}

func inputs() map[string][]byte {
	rng := rand.New(rand.NewPCG(1, 2))
	random := make([]byte, 70<<10)
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	far := append(append(append([]byte{}, random[:1000]...), random[5000:5000+31<<10]...), random[:1000]...)
	return map[string][]byte{
		"empty":  nil,
		"one":    {'x'},
		"three":  []byte("abc"),
		"run":    bytes.Repeat([]byte{'a'}, 10000), // matches of 258 and one byte apart
		"html":   []byte(strings.Repeat("<p class=\"x\">Paragraph about a fox and a dog.</p>\n", 200)),
		"random": random,
		"far":    far, // a repeat 32 KiB back, at the window's edge
		"all bytes": func() []byte {
			b := make([]byte, 512)
			for i := range b {
				b[i] = byte(i)
			}
			return b
		}(),
	}
}

func TestRoundTrip(t *testing.T) {
	var e Encoder
	for name, in := range inputs() {
		out := inflate(t, e.AppendDeflate(nil, in))
		if !bytes.Equal(out, in) {
			t.Errorf("%s: %d bytes back for %d", name, len(out), len(in))
		}
	}
}

func TestGzipMembers(t *testing.T) {
	var e Encoder
	var b []byte
	ins := inputs()
	order := []string{"html", "empty", "random", "run"}
	for _, name := range order {
		in := ins[name]
		b = e.AppendGzip(b, in[:len(in)/3], in[len(in)/3:])
	}
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	zr.Multistream(false)
	br := bytes.NewReader(b)
	for _, name := range order {
		if err := zr.Reset(br); err != nil {
			t.Fatal(err)
		}
		zr.Multistream(false)
		got, err := io.ReadAll(zr) // checks the CRC and the size
		if err != nil || !bytes.Equal(got, ins[name]) {
			t.Fatalf("member %s: %v, %d bytes", name, err, len(got))
		}
	}
	if br.Len() != 0 {
		t.Fatalf("%d bytes after the members", br.Len())
	}
}

func TestCompresses(t *testing.T) {
	var e Encoder
	html := inputs()["html"]
	if n := len(e.AppendDeflate(nil, html)); n > len(html)/10 {
		t.Errorf("repetitive HTML of %d bytes became %d", len(html), n)
	}
}

func FuzzRoundTrip(f *testing.F) {
	for _, in := range inputs() {
		if len(in) < 4096 {
			f.Add(in, uint16(len(in)/2))
		}
	}
	var e Encoder
	f.Fuzz(func(t *testing.T, in []byte, cut uint16) {
		if out := inflate(t, e.AppendDeflate(nil, in)); !bytes.Equal(out, in) {
			t.Fatalf("%d bytes back for %d", len(out), len(in))
		}
		k := min(int(cut), len(in))
		zr, err := gzip.NewReader(bytes.NewReader(e.AppendGzip(nil, in[:k], in[k:])))
		if err != nil {
			t.Fatal(err)
		}
		out, err := io.ReadAll(zr)
		if err != nil || !bytes.Equal(out, in) {
			t.Fatalf("gzip member of %d+%d bytes: %v, %d bytes back", k, len(in)-k, err, len(out))
		}
	})
}

func BenchmarkRecord(b *testing.B) {
	rec := []byte("WARC/1.1\r\nWARC-Type: response\r\nWARC-Record-ID: <urn:uuid:6f1d2a3b-0a4c-4e2f-9b1a-0123456789ab>\r\n" +
		"Content-Type: application/http;msgtype=response\r\n\r\nHTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n" +
		strings.Repeat("<p class=\"x\">Paragraph about a fox and a dog.</p>\n", 24))
	var e Encoder
	var out []byte
	b.SetBytes(int64(len(rec)))
	for b.Loop() {
		out = e.AppendGzip(out[:0], rec[:250], rec[250:])
	}
	b.ReportMetric(float64(len(out))/float64(len(rec)), "ratio")
}

func BenchmarkRandomText(b *testing.B) {
	rng := rand.New(rand.NewPCG(3, 4))
	const alpha = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	in := make([]byte, 1500)
	for i := range in {
		in[i] = alpha[rng.IntN(len(alpha))]
	}
	var e Encoder
	var out []byte
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		out = e.AppendGzip(out[:0], nil, in)
	}
	b.ReportMetric(float64(len(out))/float64(len(in)), "ratio")
}
