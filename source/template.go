package source

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"text/template"

	"github.com/trawl-dev/trawl/record"
)

// Request builds each record's request from its row with templates
// (text/template), compiled once for the run. A template reads a row's
// fields by name ({{.token}}); a line's only field is "url". Besides
// text/template's own functions (urlquery among them) there are json,
// which writes a value as JSON ({{json .name}}), and pathescape, which
// escapes a value for one path segment ({{pathescape .id}}).
type Request struct {
	// URL, when set, makes the URL instead of the URL column or line.
	URL *template.Template
	// Header are the request headers whose values are templates.
	Header []HeaderTemplate
	// Body, when set, makes each request's body.
	Body *template.Template
}

// HeaderTemplate is a header whose value is made per row.
type HeaderTemplate struct {
	Name  string
	Value *template.Template
}

// funcs are the functions templates have beside text/template's.
var funcs = template.FuncMap{
	"json": func(v any) (string, error) {
		b, err := json.Marshal(v)
		return string(b), err
	},
	// pathescape is urlquery's counterpart for a path segment, where a
	// space is %20 and a slash is escaped too.
	"pathescape": func(v any) string { return url.PathEscape(fmt.Sprint(v)) },
}

// ParseTemplate compiles one template; what names it in messages.
func ParseTemplate(what, text string) (*template.Template, error) {
	t, err := template.New(what).Funcs(funcs).Option("missingkey=error").Parse(text)
	if err != nil {
		return nil, fmt.Errorf("bad %s: %w", what, err)
	}
	return t, nil
}

// IsTemplate reports whether a value holds a template action.
func IsTemplate(s string) bool { return strings.Contains(s, "{{") }

// usesFields reports whether any template is there to read a row's fields.
func (r *Request) usesFields() bool { return r.URL != nil || r.Body != nil || len(r.Header) > 0 }

// data is what a row's templates see.
func data(r row) any {
	if r.fields != nil {
		return r.fields
	}
	return map[string]any{"url": r.text}
}

func execute(t *template.Template, r row) (string, error) {
	var b bytes.Buffer
	if err := t.Execute(&b, data(r)); err != nil {
		// The row is the news, not the template's name and position,
		// which the user wrote and knows: text/template spells them
		// before " at <action>: ", so the message starts at the action.
		msg := err.Error()
		if i := strings.Index(msg, " at <"); i >= 0 {
			msg = msg[i+len(" at "):]
		}
		return "", fmt.Errorf("%s failed on this row: %s", t.Name(), msg)
	}
	return b.String(), nil
}

// url makes the row's URL.
func (r *Request) url(rw row) (string, error) {
	u, err := execute(r.URL, rw)
	return strings.TrimSpace(u), err
}

// apply makes the row's headers and body.
func (r *Request) apply(rec *record.Record, rw row) error {
	for _, h := range r.Header {
		v, err := execute(h.Value, rw)
		if err != nil {
			return err
		}
		if strings.ContainsAny(v, "\r\n") {
			return fmt.Errorf("header %s template made a value with a line break", h.Name)
		}
		row := rowOf(rec)
		if row.Header == nil {
			row.Header = http.Header{}
		}
		row.Header.Add(h.Name, v)
	}
	if r.Body != nil {
		b, err := execute(r.Body, rw)
		if err != nil {
			return err
		}
		rowOf(rec).Body = []byte(b)
	}
	return nil
}

// rowOf returns the record's row, giving it one if it has none.
func rowOf(rec *record.Record) *record.Row {
	if rec.Row == nil {
		rec.Row = &record.Row{}
	}
	return rec.Row
}
