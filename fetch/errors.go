package fetch

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"

	"github.com/trawl-dev/trawl/fetch/internal/lean"
	"github.com/trawl-dev/trawl/record"
)

// TooManyRedirectsError reports that a redirect chain exceeded the limit.
type TooManyRedirectsError struct {
	Max int
}

func (e *TooManyRedirectsError) Error() string {
	return fmt.Sprintf("stopped after %d redirects (--max-redirects)", e.Max)
}

// BadRedirectError reports a redirect to a URL trawl will not follow.
type BadRedirectError struct {
	Location string
	// Reason says what is wrong with the URL; empty means its scheme.
	Reason string
}

func (e *BadRedirectError) Error() string {
	if e.Reason != "" {
		return fmt.Sprintf("redirected to %s: %s", e.Location, e.Reason)
	}
	return fmt.Sprintf("redirected to %s: only http and https URLs are followed", e.Location)
}

// BlockedError reports a request the address or host policy refused.
type BlockedError struct {
	Reason string
}

func (e *BlockedError) Error() string { return "blocked: " + e.Reason }

// StatusError reports a response whose status is not accepted.
type StatusError struct {
	Code   int
	Reason string
}

func (e *StatusError) Error() string {
	if e.Reason != "" {
		return e.Reason
	}
	return fmt.Sprintf("HTTP %d %s", e.Code, statusText(e.Code))
}

func statusText(code int) string {
	if t := http.StatusText(code); t != "" {
		return t
	}
	return "(unknown status)"
}

// BodyError reports a failure while reading a response body.
type BodyError struct {
	Err error
}

func (e *BodyError) Error() string { return "reading body: " + e.Err.Error() }

// Unwrap returns the underlying read error.
func (e *BodyError) Unwrap() error { return e.Err }

// SaveError reports that a body could not be saved to a file.
type SaveError struct {
	Err error
}

func (e *SaveError) Error() string { return "cannot save body: " + e.Err.Error() }

// Unwrap returns the underlying error.
func (e *SaveError) Unwrap() error { return e.Err }

// timeoutError replaces the bare "context deadline exceeded" with a message
// that names the setting responsible.
type timeoutError struct {
	what string
	err  error
}

func (e *timeoutError) Error() string { return e.what }
func (e *timeoutError) Unwrap() error { return e.err }

// classify maps a request error to the record's error kind. parent is the
// URL's context (not the per-attempt one), so that a run being stopped is
// told apart from a request taking too long.
func classify(parent context.Context, err error) record.Kind {
	if parent.Err() != nil {
		// The run is stopping; whatever broke this request is a consequence.
		return record.KindCanceled
	}
	var (
		blocked  *BlockedError
		tooMany  *TooManyRedirectsError
		badRedir *BadRedirectError
		status   *StatusError
		bodyErr  *BodyError
		saveErr  *SaveError
		dnsErr   *net.DNSError
		protoErr *lean.ProtocolError
		robots   *RobotsError
	)
	switch {
	case errors.As(err, &robots):
		return record.KindRobots
	case errors.As(err, &blocked):
		return record.KindBlocked
	case errors.As(err, &tooMany):
		return record.KindTooManyRedirects
	case errors.As(err, &badRedir):
		return record.KindInvalidURL
	case errors.As(err, &status):
		return record.KindHTTPStatus
	case errors.As(err, &saveErr):
		return record.KindSave
	case errors.As(err, &dnsErr):
		return record.KindDNS
	case isTimeout(err):
		return record.KindTimeout
	case isTLS(err):
		return record.KindTLS
	case errors.As(err, &bodyErr):
		return record.KindBody
	case errors.As(err, &protoErr):
		return record.KindProtocol
	}
	return record.KindConnect
}

func isTimeout(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// isTLS reports whether err is the TLS layer refusing: a certificate that
// does not verify, an alert from the server (crypto/tls reports one as a
// net.OpError whose Op is "remote error"), or a server that answered an
// https:// URL with plain HTTP. None of them passes on a retry.
func isTLS(err error) bool {
	var (
		verify   *tls.CertificateVerificationError
		header   tls.RecordHeaderError
		alert    tls.AlertError
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
		op       *net.OpError
	)
	return errors.As(err, &verify) || errors.As(err, &header) || errors.As(err, &alert) ||
		errors.As(err, &unknown) || errors.As(err, &hostname) || errors.As(err, &invalid) ||
		errors.Is(err, http.ErrSchemeMismatch) || errors.As(err, &op) && op.Op == "remote error"
}

// describe turns a request error into the text stored in the record: the
// URL is already in the record, so url.Error's "Get \"...\":" prefix goes.
func describe(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) && ue.Err != nil {
		err = ue.Err
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		var be *BodyError
		if !errors.As(err, &be) {
			return fmt.Errorf("server closed the connection without a complete response: %w", err)
		}
	}
	return err
}
