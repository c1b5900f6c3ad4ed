package fetch

import (
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/trawl-dev/trawl/internal/redact"
)

// BasicAuth is a user name and password for HTTP basic authentication.
// It prints as a mask, so that a BasicAuth that ends up in a message or a
// log by mistake shows no secret.
type BasicAuth struct {
	User, Password string
}

// String masks the credentials.
func (a BasicAuth) String() string { return redact.Mask }

// GoString masks the credentials, for %#v.
func (a BasicAuth) GoString() string { return redact.Mask }

func (a BasicAuth) header() string { return basicAuth(a.User, a.Password) }

func basicAuth(user, password string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))
}

// ParseUser reads curl's -u USER:PASSWORD. The user name ends at the first
// colon; the password may hold more. Where curl would prompt for a missing
// password, trawl runs unattended and refuses instead: "USER:" is how to
// say that the password is empty.
func ParseUser(s string) (*BasicAuth, error) {
	user, password, ok := strings.Cut(s, ":")
	if !ok {
		return nil, errors.New(`want USER:PASSWORD; trawl never stops to ask for a password (write "USER:" for an empty one)`)
	}
	return &BasicAuth{User: user, Password: password}, nil
}

// hasAuthorization reports whether h sets an Authorization header, whatever
// the case of its key.
func hasAuthorization(h http.Header) bool {
	for k := range h {
		if strings.EqualFold(k, "Authorization") {
			return true
		}
	}
	return false
}

// withCredentials returns req with the Authorization header it is entitled
// to, target being the URL the attempt started from. It runs on every hop,
// before the hop's request is sent and before the next hop's is made from
// it, so a header it sets rides along to the same host's redirects and is
// dropped with the rest at a redirect to another host (nextRequest). In
// order:
//
//   - an Authorization header given with -H, or set for this host on an
//     earlier hop, is sent as it is (curl's -H too replaces what curl
//     would write itself);
//   - the userinfo of the hop's URL (the URL's own, which a relative
//     redirect inherits), winning over --user's header;
//   - --user's header, set by New for every first request;
//   - the netrc entry of the hop's host, else the default entry, but
//     only on the URL's own host: a default sent wherever a redirect
//     points would hand its password to any server that asks.
func (c *Client) withCredentials(req *outRequest, target *url.URL) *outRequest {
	u := req.url
	_, authSet := req.header["Authorization"]
	var auth string
	switch {
	case authSet && c.opts.User == nil:
		return req
	case u.User != nil && u.User.String() != "": // not a bare @
		password, _ := u.User.Password()
		auth = basicAuth(u.User.Username(), password)
	case authSet || c.opts.Netrc == nil:
		return req
	default:
		login, password, ok := c.opts.Netrc.Lookup(u.Hostname(), sameOrigin(u, target))
		if !ok {
			return req
		}
		auth = basicAuth(login, password)
	}
	out := *req
	out.header = req.header.Clone()
	out.header.Set("Authorization", auth)
	return &out
}
