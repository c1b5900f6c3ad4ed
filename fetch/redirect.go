package fetch

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/trawl-dev/trawl/internal/redact"
	"github.com/trawl-dev/trawl/internal/weburl"
)

// isRedirect reports the statuses whose Location trawl follows.
func isRedirect(status int) bool {
	switch status {
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther,
		http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		return true
	}
	return false
}

// redirect resolves a Location against the URL it came from, as browsers
// do, and checks
// the hop it leads to: the redirect count, the scheme, the host patterns
// and, with --deny-private, a private address written out. hop counts
// from 1.
func (c *Client) redirect(from *url.URL, location string, hop int) (*url.URL, error) {
	if hop > c.opts.MaxRedirects {
		return nil, &TooManyRedirectsError{Max: c.opts.MaxRedirects}
	}
	// Resolved by the rules input lines and links follow (the WHATWG URL
	// Standard): http://0x7f.1/ is 127.0.0.1 for every check below.
	next, err := weburl.ResolveNet(location, from)
	if err != nil {
		var se *weburl.SchemeError
		if errors.As(err, &se) {
			return nil, &BadRedirectError{Location: redact.URL(location)}
		}
		return nil, &BadRedirectError{Location: redact.URL(location), Reason: "not a valid URL: " + err.Error()}
	}
	// A fragment is never sent; the one the redirect names is the one
	// the final URL keeps, as browsers do.
	if next.Fragment == "" && from.Fragment != "" {
		next.Fragment, next.RawFragment = from.Fragment, from.RawFragment
	}
	if err := c.checkHost(next, "redirected: "); err != nil {
		return nil, err
	}
	return next, nil
}

// credentialHeaders are given for one host and never sent to another.
var credentialHeaders = [...]string{"Authorization", "Proxy-Authorization", "Cookie"}

// nextRequest is the request for a redirect hop from one URL to the next:
// 303, and 301/302 after a POST, become GET without a body (as browsers
// do); 307 and 308 keep the method and the body. Credentials given for
// one host are not sent to another (another port counts; Go keeps them for
// subdomains, trawl is stricter), and a Host header given for the first
// URL is not carried over.
//
// Another scheme counts as another host too, as in curl since 7.83
// (CVE-2022-27776): it is another port, if an implicit one, and from https
// to http it would send the credentials in the clear.
func (c *Client) nextRequest(prev *outRequest, from, to *url.URL, status int) *outRequest {
	next := &outRequest{method: prev.method, url: to, header: prev.header, body: prev.body, deadline: prev.deadline}
	switch {
	case status == http.StatusSeeOther && prev.method != http.MethodHead,
		(status == http.StatusMovedPermanently || status == http.StatusFound) && prev.method == http.MethodPost:
		next.method, next.body = http.MethodGet, nil
	}
	if !sameOrigin(from, to) {
		stripped := false
		for _, h := range credentialHeaders {
			if _, ok := next.header[h]; ok {
				if !stripped {
					next.header = next.header.Clone()
					stripped = true
				}
				delete(next.header, h)
			}
		}
	}
	return next
}

// sameOrigin reports whether two URLs are for the same scheme, host and
// port, which is how far credentials given for one may go.
func sameOrigin(a, b *url.URL) bool {
	return strings.EqualFold(a.Scheme, b.Scheme) && strings.EqualFold(a.Host, b.Host)
}

// withCookies returns header with the jar's cookies for the request, or
// header itself when there are none (it is shared and never modified).
func withCookies(header http.Header, cookies []*http.Cookie) http.Header {
	if len(cookies) == 0 {
		return header
	}
	h := header.Clone()
	parts := make([]string, 0, len(cookies))
	for _, ck := range cookies {
		parts = append(parts, ck.Name+"="+ck.Value)
	}
	if prev := h.Get("Cookie"); prev != "" {
		parts = append([]string{prev}, parts...)
	}
	h.Set("Cookie", strings.Join(parts, "; "))
	return h
}
