package fetch

import (
	"github.com/trawl-dev/trawl/internal/capture"

	"compress/zlib"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// acceptEncoding is what trawl asks servers for: the three encodings worth
// having, all decoded on the fly.
const acceptEncoding = "gzip, br, zstd"

// countingReader counts the bytes that pass through it: with compression,
// the bytes on the wire as opposed to the decoded body.
type countingReader struct {
	r io.Reader
	n int64
	// err is the error the body last returned, io.EOF at its end.
	err error
	// tap, when set, is given every byte read, for the WARC.
	tap *capture.Exchange
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if c.tap != nil && n > 0 {
		c.tap.Payload(p[:n])
	}
	if err != nil {
		c.err = err
	}
	return n, err
}

// SpliceTo passes up to max of a body's bytes straight to a file when the
// body can (see lean's), counting them.
func (c *countingReader) SpliceTo(f *os.File, max int64) (int64, error) {
	if s, ok := c.r.(interface {
		SpliceTo(*os.File, int64) (int64, error)
	}); ok {
		n, err := s.SpliceTo(f, max)
		c.n += n
		return n, err
	}
	return io.Copy(fileOnly{f}, &io.LimitedReader{R: onlyReader{c}, N: max})
}

// fileOnly and onlyReader hide the methods that would send io.Copy back
// into SpliceTo.
type fileOnly struct{ io.Writer }
type onlyReader struct{ io.Reader }

// decoder undoes a Content-Encoding as the body is read. Each layer is
// decoded in turn, last applied first, so "gzip, br" works too. Caps apply
// to what comes out, so a small compressed body that inflates to gigabytes
// costs at most the cap. Encodings trawl does not know are left as they
// are: the body is then kept as sent.
func decoder(r io.Reader, contentEncoding string) (io.Reader, func(), error) {
	var closers []func()
	closeAll := func() {
		for _, c := range closers {
			c()
		}
	}
	layers := strings.Split(contentEncoding, ",")
	for i := len(layers) - 1; i >= 0; i-- {
		switch enc := strings.ToLower(strings.TrimSpace(layers[i])); enc {
		case "", "identity":
		case "gzip", "x-gzip":
			zr, err := gzip.NewReader(r)
			if err != nil {
				closeAll()
				return nil, nil, fmt.Errorf("bad gzip body: %w", err)
			}
			closers = append(closers, func() { zr.Close() })
			r = zr
		case "br":
			r = brotli.NewReader(r)
		case "zstd":
			// Cap the decoder's window memory so a hostile frame header
			// cannot make it allocate more than the bodies trawl keeps.
			zr, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true), zstd.WithDecoderMaxWindow(64<<20))
			if err != nil {
				closeAll()
				return nil, nil, fmt.Errorf("bad zstd body: %w", err)
			}
			closers = append(closers, zr.Close)
			r = zr
		case "deflate":
			zr, err := zlib.NewReader(r)
			if err != nil {
				closeAll()
				return nil, nil, fmt.Errorf("bad deflate body: %w", err)
			}
			closers = append(closers, func() { zr.Close() })
			r = zr
		default:
			closeAll()
			return nil, nil, errUnknownEncoding
		}
	}
	return r, closeAll, nil
}
