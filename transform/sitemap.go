package transform

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/trawl-dev/trawl/internal/weburl"
)

// sitemap returns the <loc> URLs of a sitemap (<urlset>) or a sitemap
// index (<sitemapindex>), in document order, each once, as a list ready to
// be fed back to trawl like links' output; null when the body is not a
// sitemap. A sitemap.xml.gz is usually served as application/gzip, not
// with a Content-Encoding, so trawl has not decoded it: a gzip body is
// decompressed here, up to the run's output cap (--max-body), so that a
// small bomb costs no more than a large body. Only http(s) URLs are kept,
// as the sitemaps protocol allows no others.
func sitemap(_ context.Context, in *Input, limit int64) (any, error) {
	body := in.Body()
	var r io.Reader = bytes.NewReader(body)
	if len(body) >= 2 && body[0] == 0x1f && body[1] == 0x8b {
		zr, err := gzip.NewReader(r)
		if err != nil {
			return nil, fmt.Errorf("gzip sitemap: %w", err)
		}
		defer zr.Close()
		r = &capped{r: zr, left: limit}
	}
	dec := xml.NewDecoder(r)
	dec.Strict = false // sitemaps in the wild carry stray entities and bad markup
	dec.CharsetReader = func(_ string, in io.Reader) (io.Reader, error) {
		return in, nil // the protocol says UTF-8; take the bytes as they are
	}
	var (
		out   []string
		seen  = make(map[string]bool)
		depth int
		root  bool
		inLoc bool
		loc   strings.Builder
	)
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if errors.Is(err, errCapped) {
				return nil, fmt.Errorf("gzip sitemap larger than %d bytes (--max-body) when decompressed", limit)
			}
			if !root {
				return nil, nil // not XML, so not a sitemap
			}
			return nil, fmt.Errorf("sitemap: %w", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			if depth == 1 {
				if t.Name.Local != "urlset" && t.Name.Local != "sitemapindex" {
					return nil, nil
				}
				root = true
			}
			// <urlset><url><loc> or <sitemapindex><sitemap><loc>; a <loc>
			// deeper down (an image's, in an extension) is not a page.
			if depth == 3 && t.Name.Local == "loc" {
				inLoc = true
				loc.Reset()
			}
		case xml.EndElement:
			if inLoc && depth == 3 {
				inLoc = false
				if u, err := weburl.Parse(strings.TrimSpace(loc.String()), nil); err == nil {
					if s := u.String(); !seen[s] {
						seen[s] = true
						out = append(out, s)
					}
				}
			}
			depth--
		case xml.CharData:
			if inLoc {
				loc.Write(t)
			}
		}
	}
	if !root {
		return nil, nil
	}
	if out == nil {
		out = []string{}
	}
	return out, nil
}

// errCapped ends reading a decompressed body at its cap.
var errCapped = errors.New("decompressed body over the cap")

// capped reads at most left bytes, then fails with errCapped.
type capped struct {
	r    io.Reader
	left int64
}

func (c *capped) Read(p []byte) (int, error) {
	if c.left <= 0 {
		return 0, errCapped
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	return n, err
}

func newSitemap(_ string, opts Options) (Transform, error) {
	limit := opts.MaxOutput
	if limit <= 0 {
		limit = DefaultOptions().MaxOutput
	}
	return Func(func(ctx context.Context, in *Input) (any, error) { return sitemap(ctx, in, limit) }), nil
}
