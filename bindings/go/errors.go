package fsc

import "github.com/fsc-cache/fsc/bindings/go/internal/swigfsc"

// Code is an fsc status code (the values of enum fsc_status in fsc.h).
type Code int

// The status codes; the values are fixed by the C API, and each line names
// its enum fsc_status member (tests/core/status_table.py checks them).
const (
	CodeOK       Code = 0   // FSC_OK
	CodeMiss     Code = 1   // FSC_MISS
	CodeStale    Code = 2   // FSC_STALE
	CodeStopped  Code = 3   // FSC_STOPPED
	CodeInvalid  Code = -1  // FSC_EINVAL
	CodeNoMem    Code = -2  // FSC_ENOMEM
	CodeIO       Code = -3  // FSC_EIO
	CodeNoSpace  Code = -4  // FSC_ENOSPC
	CodeAccess   Code = -5  // FSC_EACCES
	CodeBusy     Code = -6  // FSC_EBUSY
	CodeTimedOut Code = -7  // FSC_ETIMEDOUT
	CodeDeadlock Code = -8  // FSC_EDEADLK
	CodeCorrupt  Code = -9  // FSC_ECORRUPT
	CodeTooBig   Code = -10 // FSC_ETOOBIG
	CodeXDev     Code = -11 // FSC_EXDEV
	CodeFormat   Code = -12 // FSC_EFORMAT
	CodeCreator  Code = -13 // FSC_ECREATOR
	CodeNotSup   Code = -14 // FSC_ENOTSUP
	CodeLost     Code = -15 // FSC_ELOST
)

// String is the C name of the status, e.g. "FSC_EBUSY".
func (c Code) String() string { return swigfsc.Fsc_strerror(int(c)) }

// Error is a failed fsc call: the status code, the operation and the
// library's detail message. Compare with errors.Is against the Err*
// values (only the Code is compared), or use errors.As to read Code.
type Error struct {
	Code Code
	Op   string // the Go method that failed, e.g. "Set"
	Msg  string // fsc_errmsg() of the failing call; may be empty
	Err  error  // an underlying cause (the creator's error, a context error), or nil
}

func (e *Error) Error() string {
	s := "fsc"
	if e.Op != "" {
		s += ": " + e.Op
	}
	s += ": " + e.Code.String()
	if e.Msg != "" {
		s += ": " + e.Msg
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Is reports whether target is an *Error with the same Code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// Unwrap gives the underlying cause, if any.
func (e *Error) Unwrap() error { return e.Err }

// Sentinel errors, one per status, for errors.Is.
var (
	ErrMiss     = &Error{Code: CodeMiss}
	ErrInvalid  = &Error{Code: CodeInvalid}
	ErrNoMem    = &Error{Code: CodeNoMem}
	ErrIO       = &Error{Code: CodeIO}
	ErrNoSpace  = &Error{Code: CodeNoSpace}
	ErrAccess   = &Error{Code: CodeAccess}
	ErrBusy     = &Error{Code: CodeBusy}
	ErrTimedOut = &Error{Code: CodeTimedOut}
	ErrDeadlock = &Error{Code: CodeDeadlock}
	ErrCorrupt  = &Error{Code: CodeCorrupt}
	ErrTooBig   = &Error{Code: CodeTooBig}
	ErrXDev     = &Error{Code: CodeXDev}
	ErrFormat   = &Error{Code: CodeFormat}
	ErrCreator  = &Error{Code: CodeCreator}
	ErrNotSup   = &Error{Code: CodeNotSup}
	ErrLost     = &Error{Code: CodeLost}
	ErrClosed   = &Error{Code: CodeInvalid, Msg: "cache is closed"}
	errNilCache = &Error{Code: CodeInvalid, Msg: "nil cache"}
)
