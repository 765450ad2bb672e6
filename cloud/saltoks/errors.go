package saltoks

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Salto KS Connect API error codes seen in the wild (reference §9).
const (
	CodeInvalidParameter = "1100" // bad id, missing field
	CodeValidation       = "1101" // validation failed, unknown field
	CodeBadOrderBy       = "1102" // invalid $orderby
	CodeNotFound         = "2202" // object not found (also "Otp is invalid")
	CodeForbidden        = "2203" // no permission on the object
	CodeOTP              = "3102" // otp_invalid / otp_blocked
)

// Retryable reports whether err says a later retry of the same request can
// succeed (network trouble, 5xx, 429, a torn page).
func Retryable(err error) bool {
	var r interface{ Retryable() bool }
	return errors.As(err, &r) && r.Retryable()
}

// APIError is an error answer of the Connect API: the HTTP status and the
// {ErrorCode, Message} body (ErrorCode arrives as a string or a number and is
// kept as a string).
type APIError struct {
	Method     string
	Path       string // request path, no query
	Status     int
	Code       string
	Message    string
	RetryAfter time.Duration // from a Retry-After header, 0 if none
	Hint       string        // what a mistaken setting that causes this answer looks like, or ""
}

func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "salto ks: %s %s: http %d", e.Method, e.Path, e.Status)
	if e.Code != "" {
		fmt.Fprintf(&b, ", error %s", e.Code)
	}
	if e.Message != "" {
		fmt.Fprintf(&b, ": %s", e.Message)
	}
	if e.Hint != "" {
		fmt.Fprintf(&b, "; %s", e.Hint)
	}
	return b.String()
}

// Retryable is true for 5xx, 429 and 408.
func (e *APIError) Retryable() bool {
	return e.Status >= 500 || e.Status == 429 || e.Status == 408
}

// NotFound reports a 404 or ErrorCode 2202.
func (e *APIError) NotFound() bool { return e.Status == 404 || e.Code == CodeNotFound }

// IsNotFound reports whether err is an APIError meaning "no such object".
func IsNotFound(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.NotFound()
}

// AuthError is a refusal or failure of the identity server's token endpoint
// (OAuth error body {error, error_description}), or a 401 the API still
// answers after a fresh token.
type AuthError struct {
	Status      int
	Code        string // invalid_grant, invalid_client, invalid_scope, …
	Description string
	Hint        string // what a mistaken setting that causes this answer looks like, or ""
}

func (e *AuthError) Error() string {
	msg := fmt.Sprintf("salto ks: authentication failed (http %d", e.Status)
	if e.Code != "" {
		msg += ", " + e.Code
	}
	msg += ")"
	if e.Description != "" {
		msg += ": " + e.Description
	}
	switch e.Code {
	case "invalid_grant":
		msg += "; check the Salto username and password (or refresh token)"
	case "invalid_client", "unauthorized_client":
		msg += "; check client_id and client_secret_file, and that Salto enabled this grant for the client"
	case "invalid_scope":
		msg += "; the client may not request this scope"
	}
	if e.Hint != "" {
		msg += "; " + e.Hint
	}
	return msg
}

// Retryable is true only when the identity server itself failed.
func (e *AuthError) Retryable() bool { return e.Status >= 500 || e.Status == 429 || e.Status == 0 }

// TransportError is a network failure: refused or cut connection, timeout,
// a body that ended early.
type TransportError struct {
	Method, Path string
	Err          error
	Hint         string // what to check (the address, DNS, the clock), or ""
}

func (e *TransportError) Error() string {
	msg := fmt.Sprintf("salto ks: %s %s: %v", e.Method, e.Path, e.Err)
	if e.Hint != "" {
		msg += "; " + e.Hint
	}
	return msg
}
func (e *TransportError) Unwrap() error   { return e.Err }
func (e *TransportError) Retryable() bool { return true }

// DecodeError is a 2xx answer whose body is not what the API sends
// (malformed JSON, wrong shape). Retrying helps when a proxy mangled it.
type DecodeError struct {
	Method, Path string
	Err          error
}

func (e *DecodeError) Error() string {
	return fmt.Sprintf("salto ks: %s %s: unreadable response: %v", e.Method, e.Path, e.Err)
}
func (e *DecodeError) Unwrap() error   { return e.Err }
func (e *DecodeError) Retryable() bool { return true }

// InconsistentError says a paged list changed while it was being read
// (a page shifted, an item showed up twice, the count moved). The items read
// are not a consistent list; re-reading the whole list can help.
type InconsistentError struct {
	Path   string
	Reason string
}

func (e *InconsistentError) Error() string {
	return fmt.Sprintf("salto ks: %s changed while it was paged: %s", e.Path, e.Reason)
}
func (e *InconsistentError) Retryable() bool { return true }

// errorBody is every error shape the API family uses: v1.x {ErrorCode,
// Message}, v2 RFC 7807 {title, status}, OAuth {error, error_description}.
type errorBody struct {
	ErrorCode        json.RawMessage `json:"ErrorCode"`
	Message          string          `json:"Message"`
	Title            string          `json:"title"`
	Detail           string          `json:"detail"`
	Error            string          `json:"error"`
	ErrorDescription string          `json:"error_description"`
}

// ParseErrorBody reads an error body into (code, message). ErrorCode may be a
// JSON string or number; anything unparseable yields empty strings and the
// caller falls back on the HTTP status.
func ParseErrorBody(body []byte) (code, message string) {
	var eb errorBody
	if err := json.Unmarshal(bytes.TrimSpace(body), &eb); err != nil {
		return "", ""
	}
	code = errorCode(eb.ErrorCode)
	message = eb.Message
	if code == "" && eb.Error != "" {
		code = eb.Error
	}
	for _, m := range []string{eb.ErrorDescription, eb.Title, eb.Detail} {
		if message == "" {
			message = m
		}
	}
	return code, clip(message, 300)
}

func errorCode(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return strings.TrimSpace(s)
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		if i, err := strconv.ParseInt(n.String(), 10, 64); err == nil {
			return strconv.FormatInt(i, 10)
		}
		return n.String()
	}
	return ""
}

// clip bounds text copied from a server into our errors and logs.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
