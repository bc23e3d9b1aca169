// Package fsc is a persistent, size-bounded, cross-process filesystem cache
// with dogpile (stampede) protection: the Go face of libfsc.
//
// Keys and values are byte slices (keys: any bytes, NUL included, of any
// length: one longer than MaxKey is stored under HashedKey(key)). A *Cache
// is safe for concurrent use by many goroutines, and any number of
// processes may open the same directory at once.
//
// Errors are *Error values carrying the library's status Code; compare them
// with errors.Is against ErrMiss, ErrBusy, ErrTimedOut, ... .
package fsc

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/user"
	"path/filepath"
	"runtime"
	"runtime/cgo"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/fsc-cache/fsc/bindings/go/internal/swigfsc"
)

// Version is the version of the loaded libfsc, "MAJOR.MINOR.PATCH".
func Version() string { return swigfsc.Fsc_version() }

// MaxKey is the longest key in bytes the library stores as is.
const MaxKey = 65536

// LongKeyPrefix starts the key under which a key longer than MaxKey is
// stored, followed by the lowercase hex SHA-256 of the whole key (the same
// in every binding of fsc).
const LongKeyPrefix = "fsc.sha256:"

// HashedKey is the key under which a key longer than MaxKey is stored.
func HashedKey(key []byte) []byte {
	sum := sha256.Sum256(key)
	return append([]byte(LongKeyPrefix), hex.EncodeToString(sum[:])...)
}

// storedKey is the key the library is given for key.
func storedKey(key []byte) []byte {
	if len(key) > MaxKey {
		return HashedKey(key)
	}
	return key
}

// Options of Open. The zero value means the library's defaults.
type Options struct {
	// CacheSize bounds the bytes on disk: 0 means the default (1 GiB),
	// a negative value means unbounded.
	CacheSize int64
	// MaxEntries bounds the number of values; 0 means unbounded.
	MaxEntries uint64
	// Expiration: older values are misses. 0 means values never expire.
	Expiration time.Duration
	// ProcessLocal makes Lock exclude only the goroutines of this process
	// (distributed_lock = 0); by default it excludes other processes too.
	ProcessLocal bool
	// FileMovable makes SetFile rename files into the cache by default.
	FileMovable bool
	// Durable fsyncs data and directory before a set returns.
	Durable bool
	// PackLimit: values stored with Set of at most this many bytes are
	// packed into their shard's pack file instead of a file of their own.
	// 0 means the default (4096 bytes), a negative value means never pack
	// (every value gets its own file); more than 1 MiB is an ErrInvalid
	// error from Open.
	PackLimit int64
	// SharedGroup, a group name or gid, shares the cache with that group's
	// members. Empty: the cache is its owner's, and a directory another
	// user owns or others may write is refused with ErrAccess (see
	// FSC_OWNERSHIP in fsc.h).
	SharedGroup string
	// NetworkMode (network_mode, FSC_NETWORK in fsc.h): NetworkAuto (the
	// zero value) runs in network mode when the cache is on a network or
	// FUSE filesystem, NetworkOn and NetworkOff force it; any other value
	// is an ErrInvalid error from Open.
	NetworkMode NetworkMode
}

// NetworkMode chooses whether a cache runs in network mode, for a
// directory several hosts share over a network filesystem.
type NetworkMode int

// The values of Options.NetworkMode (FSC_NETWORK_AUTO, _ON, _OFF).
const (
	NetworkAuto NetworkMode = 0
	NetworkOn   NetworkMode = 1
	NetworkOff  NetworkMode = 2
)

// String is "auto", "on" or "off".
func (m NetworkMode) String() string {
	switch m {
	case NetworkAuto:
		return "auto"
	case NetworkOn:
		return "on"
	case NetworkOff:
		return "off"
	}
	return "NetworkMode(" + strconv.Itoa(int(m)) + ")"
}

// Cache is an open cache directory.
type Cache struct {
	mu      sync.Mutex // guards the fields below
	h       swigfsc.Struct_SS_fsc_cache
	calls   int                         // calls in flight on h
	closing swigfsc.Struct_SS_fsc_cache // what Close left to the last call in flight
	dir     string
}

// call runs one C call and, on an error status, reads fsc_errmsg() on the
// same OS thread (it is thread-local and the goroutine could move).
func call(op string, f func() int) (int, error) {
	runtime.LockOSThread()
	rc := f()
	msg := ""
	if rc < 0 {
		msg = swigfsc.Fsc_errmsg()
	}
	runtime.UnlockOSThread()
	if rc < 0 {
		return rc, &Error{Code: Code(rc), Op: op, Msg: msg}
	}
	return rc, nil
}

func invalid(op, msg string) error { return &Error{Code: CodeInvalid, Op: op, Msg: msg} }

// durationMs converts d to milliseconds, rounding a positive remainder up.
func durationMs(d time.Duration) int64 {
	ms := int64(d / time.Millisecond)
	if d%time.Millisecond > 0 {
		ms++
	}
	return ms
}

// Open opens (creating it when missing) the cache in dir.
func Open(dir string, opts Options) (*Cache, error) {
	if strings.IndexByte(dir, 0) >= 0 {
		return nil, invalid("Open", "directory name contains NUL")
	}
	o := swigfsc.NewFsc_options() // filled with the defaults
	defer swigfsc.DeleteFsc_options(o)
	switch {
	case opts.CacheSize < 0:
		o.SetCache_size(0)
	case opts.CacheSize > 0:
		o.SetCache_size(uint64(opts.CacheSize))
	}
	o.SetMax_entries(opts.MaxEntries)
	if opts.Expiration > 0 {
		o.SetExpiration_ms(durationMs(opts.Expiration))
	} else if opts.Expiration < 0 {
		return nil, invalid("Open", "negative Expiration")
	}
	if opts.ProcessLocal {
		o.SetDistributed_lock(0)
	}
	if opts.FileMovable {
		o.SetFile_movable(1)
	}
	if opts.Durable {
		o.SetDurable(1)
	}
	switch {
	case opts.PackLimit < 0:
		o.SetPack_limit(0)
	case opts.PackLimit > 0:
		o.SetPack_limit(uint64(opts.PackLimit))
	}
	if opts.SharedGroup != "" {
		gid, err := groupID(opts.SharedGroup)
		if err != nil {
			return nil, invalid("Open", err.Error())
		}
		o.SetShared_group(gid)
	}
	switch opts.NetworkMode {
	case NetworkAuto, NetworkOn, NetworkOff:
		o.SetNetwork_mode(int(opts.NetworkMode))
	default:
		return nil, invalid("Open",
			"NetworkMode must be NetworkAuto, NetworkOn or NetworkOff, not "+opts.NetworkMode.String())
	}
	var p uintptr
	if _, err := call("Open", func() int { return swigfsc.Fsc_open(dir, o, &p) }); err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		abs = dir
	}
	c := &Cache{h: swigfsc.SwigcptrStruct_SS_fsc_cache(p), dir: abs}
	runtime.SetFinalizer(c, (*Cache).Close)
	return c, nil
}

// Dir is the directory the cache was opened in (made absolute).
func (c *Cache) Dir() string { return c.dir }

// groupID is the gid of a group given by name or number.
func groupID(group string) (int64, error) {
	g, err := user.LookupGroup(group)
	if err != nil {
		if g, err = user.LookupGroupId(group); err != nil {
			return 0, err
		}
	}
	return strconv.ParseInt(g.Gid, 10, 64)
}

// acquire gives the C handle for one call in flight; end it with release.
// Close leaves the handle open while calls are in flight, so a call never
// runs on a closed handle, not even one from a create or Foreach function
// of a call that closed the cache.
func (c *Cache) acquire() (swigfsc.Struct_SS_fsc_cache, error) {
	if c == nil {
		return nil, errNilCache
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.h == nil {
		return nil, ErrClosed
	}
	c.calls++
	return c.h, nil
}

// release ends a call in flight; the last one closes what Close left.
func (c *Cache) release() {
	c.mu.Lock()
	c.calls--
	h := c.closing
	if c.calls > 0 {
		h = nil
	}
	if h != nil {
		c.closing = nil
	}
	c.mu.Unlock()
	if h != nil {
		swigfsc.Fsc_close(h)
	}
}

// Close closes the cache; later calls get ErrClosed. With calls in flight
// (in other goroutines, or the call whose create or Foreach function closes
// the cache) it returns at once and the last of them closes the handle.
// Locks still held stay valid until unlocked. Closing twice is a no-op.
func (c *Cache) Close() error {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	if c.h == nil {
		c.mu.Unlock()
		return nil
	}
	runtime.SetFinalizer(c, nil)
	h := c.h
	c.h = nil
	if c.calls > 0 {
		c.closing = h
		c.mu.Unlock()
		return nil
	}
	c.mu.Unlock()
	_, err := call("Close", func() int { return swigfsc.Fsc_close(h) })
	return err
}

// Set stores a copy of value under key, replacing any value.
func (c *Cache) Set(key, value []byte) error {
	h, err := c.acquire()
	if err != nil {
		return err
	}
	defer c.release()
	_, err = call("Set", func() int { return swigfsc.Fsc_set(h, storedKey(key), value) })
	return err
}

// entry looks key up; the caller frees the entry. ErrMiss when there is none.
func (c *Cache) entry(op string, key []byte) (swigfsc.Struct_SS_fsc_entry, error) {
	h, err := c.acquire()
	if err != nil {
		return nil, err
	}
	defer c.release()
	var p uintptr
	rc, err := call(op, func() int { return swigfsc.Fsc_get(h, storedKey(key), &p) })
	if err != nil {
		return nil, err
	}
	if rc == int(CodeMiss) {
		return nil, ErrMiss
	}
	return swigfsc.SwigcptrStruct_SS_fsc_entry(p), nil
}

// readAll reads an entry's value (from its remembered offset) into Go memory,
// so the library checks the checksum at the end.
func readAll(op string, e swigfsc.Struct_SS_fsc_entry) ([]byte, error) {
	size := swigfsc.Fsc_entry_size(e)
	if off := swigfsc.Fsc_entry_offset(e); off <= size {
		size -= off
	}
	// One spare byte so that the last read sees the end of the value.
	buf := make([]byte, int(size)+1)
	n := 0
	for {
		if n == len(buf) {
			buf = append(buf, make([]byte, len(buf))...)
		}
		var got uint64
		if _, err := call(op, func() int { return swigfsc.Fsc_entry_read(e, buf[n:], &got) }); err != nil {
			return nil, err
		}
		if got == 0 {
			return buf[:n:n], nil
		}
		n += int(got)
	}
}

// Get returns the value of key, or ErrMiss. For a value stored with SetFile
// it is the content from the remembered offset on.
func (c *Cache) Get(key []byte) ([]byte, error) {
	e, err := c.entry("Get", key)
	if err != nil {
		return nil, err
	}
	defer swigfsc.Fsc_entry_free(e)
	return readAll("Get", e)
}

// Delete removes the value of key; ErrMiss when there was none.
func (c *Cache) Delete(key []byte) error {
	h, err := c.acquire()
	if err != nil {
		return err
	}
	defer c.release()
	rc, err := call("Delete", func() int { return swigfsc.Fsc_delete(h, storedKey(key)) })
	if err == nil && rc == int(CodeMiss) {
		return ErrMiss
	}
	return err
}

// SetFile stores a file as the value of key without reading it into memory.
// src is an *os.File or a path (string).
//   - *os.File: its whole content is copied, and its current offset is
//     remembered: GetFile hands out a file positioned there. With move, the
//     file is renamed into the cache instead (by f.Name()).
//   - path: the file is copied from offset 0, or renamed in with move.
//
// A move across filesystems fails with ErrXDev and leaves the file in place.
func (c *Cache) SetFile(key []byte, src interface{}, move bool) error {
	fd, path := -1, ""
	switch s := src.(type) {
	case *os.File:
		if s == nil {
			return invalid("SetFile", "nil *os.File")
		}
		defer runtime.KeepAlive(s)
		fd = int(s.Fd())
		if move {
			path = s.Name()
		}
	case string:
		if s == "" || strings.IndexByte(s, 0) >= 0 {
			return invalid("SetFile", "empty path or path with NUL")
		}
		path = s
	default:
		return invalid("SetFile", "src must be an *os.File or a path string")
	}
	var flags uint
	if move {
		flags = swigfsc.FSC_MOVE
	}
	h, err := c.acquire()
	if err != nil {
		return err
	}
	defer c.release()
	_, err = call("SetFile", func() int { return swigfsc.Fsc_set_file(h, storedKey(key), fd, path, flags) })
	return err
}

// GetFile returns the value of key as a read-only file positioned at the
// remembered offset (0 for values stored with Set), or ErrMiss. Reading to
// EOF gives the value from there on; the caller closes the file. The file is
// the stored one: it stays readable when the value is replaced or evicted.
func (c *Cache) GetFile(key []byte) (*os.File, error) {
	e, err := c.entry("GetFile", key)
	if err != nil {
		return nil, err
	}
	defer swigfsc.Fsc_entry_free(e)
	fd := swigfsc.Fsc_entry_fd(e)
	// The duplicate shares the open file description, so its position.
	nfd, _, errno := syscall.Syscall(syscall.SYS_FCNTL, uintptr(fd), syscall.F_DUPFD_CLOEXEC, 0)
	if errno != 0 {
		return nil, &Error{Code: CodeIO, Op: "GetFile", Msg: "fcntl(F_DUPFD_CLOEXEC)", Err: errno}
	}
	return os.NewFile(nfd, "fsc-value"), nil
}

// GetOrCreate returns the value of key, calling create at most once across
// all goroutines and processes when it is missing or expired; concurrent
// callers wait and get the created value. ttl > 0 overrides the cache's
// expiration for this call, ttl <= 0 uses it. While another caller
// regenerates an expired value, the old value is returned at once.
//
// When create fails, nothing is stored and the error (an *Error with Code
// CodeCreator wrapping create's error) is returned. When create panics, the
// panic is re-raised in the caller once the library has released the lock.
func (c *Cache) GetOrCreate(key []byte, ttl time.Duration, create func() ([]byte, error)) ([]byte, error) {
	if create == nil {
		return nil, invalid("GetOrCreate", "nil create function")
	}
	var (
		createErr error
		panicked  bool
		panicVal  interface{}
	)
	creator := swigfsc.Creator(func(h swigfsc.Struct_SS_fsc_cache, k []byte) (rc int) {
		defer func() {
			if r := recover(); r != nil {
				panicked, panicVal, rc = true, r, 1
			}
		}()
		v, err := create()
		if err != nil {
			createErr = err
			return 1
		}
		if _, err := call("GetOrCreate", func() int { return swigfsc.Fsc_set(h, k, v) }); err != nil {
			createErr = err
			return 1
		}
		return 0
	})
	handle := cgo.NewHandle(creator)
	defer handle.Delete()
	exp := int64(-1)
	if ttl > 0 {
		exp = durationMs(ttl)
	}
	h, err := c.acquire()
	if err != nil {
		return nil, err
	}
	var p uintptr
	rc, err := call("GetOrCreate", func() int {
		return swigfsc.Fsc_go_get_or_create(h, storedKey(key), exp, uint(handle), &p)
	})
	c.release()
	if panicked {
		panic(panicVal)
	}
	if err != nil {
		if e, ok := err.(*Error); ok && e.Code == CodeCreator {
			e.Err = createErr
		}
		return nil, err
	}
	if rc != int(CodeOK) && rc != int(CodeStale) {
		return nil, &Error{Code: Code(rc), Op: "GetOrCreate"}
	}
	e := swigfsc.SwigcptrStruct_SS_fsc_entry(p)
	defer swigfsc.Fsc_entry_free(e)
	return readAll("GetOrCreate", e)
}

// Lock is one hold of a key's lock.
type Lock struct {
	unlock chan chan error
	once   sync.Once
}

// lockPoll bounds each wait when only cancellation can end it.
const lockPoll = 50 * time.Millisecond

// Lock takes key's lock: it excludes every other holder, goroutine or
// process (only goroutines with ProcessLocal). It waits until ctx is done:
// a deadline becomes the library's timeout, a cancellation is noticed
// within 50 ms. If ctx ends first, the error has Code CodeTimedOut and wraps
// ctx.Err(). Lock is not re-entrant: a second Lock of the same key waits.
//
// Each hold keeps one OS thread until Unlock: the library ties in-process
// holds to threads, and that thread runs nothing else meanwhile.
func (c *Cache) Lock(ctx context.Context, key []byte) (*Lock, error) {
	return c.lock(ctx, key, false)
}

// TryLock takes key's lock only if it is free at once, else ErrBusy.
func (c *Cache) TryLock(key []byte) (*Lock, error) {
	return c.lock(context.Background(), key, true)
}

func (c *Cache) lock(ctx context.Context, key []byte, try bool) (*Lock, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	h, err := c.acquire()
	if err != nil {
		return nil, err
	}
	defer c.release()
	key = append([]byte(nil), storedKey(key)...)
	l := &Lock{unlock: make(chan chan error)}
	taken := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		lh, err := lockWait(ctx, h, key, try)
		taken <- err
		if err != nil {
			return
		}
		reply := <-l.unlock
		_, err = call("Unlock", func() int { return swigfsc.Fsc_unlock(lh) })
		reply <- err
	}()
	if err := <-taken; err != nil {
		return nil, err
	}
	runtime.SetFinalizer(l, (*Lock).Unlock)
	return l, nil
}

func lockWait(ctx context.Context, h swigfsc.Struct_SS_fsc_cache, key []byte, try bool) (swigfsc.Struct_SS_fsc_lock_handle, error) {
	ctxErr := func() error {
		return &Error{Code: CodeTimedOut, Op: "Lock", Msg: "context done before the lock was taken", Err: ctx.Err()}
	}
	for {
		if ctx.Err() != nil {
			return nil, ctxErr()
		}
		timeout, poll, byDeadline := int64(-1), false, false
		if try {
			timeout = 0
		} else {
			if dl, ok := ctx.Deadline(); ok {
				rem := time.Until(dl)
				if rem <= 0 {
					return nil, &Error{Code: CodeTimedOut, Op: "Lock", Err: context.DeadlineExceeded}
				}
				timeout, byDeadline = durationMs(rem), true
			}
			if ctx.Done() != nil && (timeout < 0 || timeout > int64(lockPoll/time.Millisecond)) {
				timeout, poll = int64(lockPoll/time.Millisecond), true
			}
		}
		var p uintptr
		rc, err := call("Lock", func() int { return swigfsc.Fsc_lock(h, key, timeout, &p) })
		if err == nil {
			return swigfsc.SwigcptrStruct_SS_fsc_lock_handle(p), nil
		}
		if rc == int(CodeTimedOut) && poll {
			continue
		}
		if rc == int(CodeTimedOut) || rc == int(CodeBusy) {
			if cerr := ctx.Err(); cerr != nil {
				err.(*Error).Err = cerr
			} else if byDeadline && rc == int(CodeTimedOut) {
				// The library's clock may reach the deadline a little first.
				err.(*Error).Err = context.DeadlineExceeded
			}
		}
		return nil, err
	}
}

// Unlock releases the hold. A second Unlock gives an ErrInvalid error.
func (l *Lock) Unlock() error {
	if l == nil {
		return invalid("Unlock", "nil lock")
	}
	err := invalid("Unlock", "lock released twice")
	l.once.Do(func() {
		runtime.SetFinalizer(l, nil)
		reply := make(chan error)
		l.unlock <- reply
		err = <-reply
	})
	return err
}

// LockHolder is the process id holding key's lock in another process, 0
// when none does.
func (c *Cache) LockHolder(key []byte) (int, error) {
	h, err := c.acquire()
	if err != nil {
		return 0, err
	}
	defer c.release()
	var pid int64
	_, err = call("LockHolder", func() int { return swigfsc.Fsc_lock_holder(h, storedKey(key), &pid) })
	return int(pid), err
}

// simple runs a C call that takes only the handle.
func (c *Cache) simple(op string, f func(swigfsc.Struct_SS_fsc_cache) int) error {
	h, err := c.acquire()
	if err != nil {
		return err
	}
	defer c.release()
	_, err = call(op, func() int { return f(h) })
	return err
}

// Invalidate makes every value stored before now a miss (hard), or stale
// (GetOrCreate serves it while one caller regenerates), in every process.
func (c *Cache) Invalidate(hard bool) error {
	v := 0
	if hard {
		v = 1
	}
	return c.simple("Invalidate", func(h swigfsc.Struct_SS_fsc_cache) int { return swigfsc.Fsc_invalidate(h, v) })
}

// Clear removes every value.
func (c *Cache) Clear() error {
	return c.simple("Clear", swigfsc.Fsc_clear)
}

// Prune drops expired values, then evicts the least recently used ones
// down to the cache size.
func (c *Cache) Prune() error {
	return c.simple("Prune", swigfsc.Fsc_prune)
}

// Stats are the cache's counters (since creation, all processes).
type Stats struct {
	Entries, Bytes, CacheSize                  uint64
	Hits, Misses, Sets, Evictions, Expirations uint64
	// NetworkFS: the cache is on a network or FUSE filesystem, which other
	// hosts may share.
	NetworkFS bool
	// NetworkMode: this handle runs in network mode (FSC_NETWORK in fsc.h).
	NetworkMode bool
}

// Stats reads the counters.
func (c *Cache) Stats() (Stats, error) {
	s := swigfsc.NewFsc_statistics()
	defer swigfsc.DeleteFsc_statistics(s)
	if err := c.simple("Stats", func(h swigfsc.Struct_SS_fsc_cache) int { return swigfsc.Fsc_stats(h, s) }); err != nil {
		return Stats{}, err
	}
	return Stats{
		Entries: s.GetEntries(), Bytes: s.GetBytes(), CacheSize: s.GetCache_size(),
		Hits: s.GetHits(), Misses: s.GetMisses(), Sets: s.GetSets(),
		Evictions: s.GetEvictions(), Expirations: s.GetExpirations(),
		NetworkFS: s.GetNetwork_fs() != 0, NetworkMode: s.GetNetwork_mode() != 0,
	}, nil
}

// VerifyReport is what Verify found.
type VerifyReport struct {
	Checked, Problems, Repaired uint64
}

// Verify checks every file of the cache; with repair it fixes what a crash
// or a hand edit left behind.
func (c *Cache) Verify(repair bool) (VerifyReport, error) {
	r := swigfsc.NewFsc_verify_report()
	defer swigfsc.DeleteFsc_verify_report(r)
	v := 0
	if repair {
		v = 1
	}
	if err := c.simple("Verify", func(h swigfsc.Struct_SS_fsc_cache) int { return swigfsc.Fsc_verify(h, v, r) }); err != nil {
		return VerifyReport{}, err
	}
	return VerifyReport{Checked: r.GetChecked(), Problems: r.GetProblems(), Repaired: r.GetRepaired()}, nil
}

// Foreach calls fn once per stored value (in no particular order) until it
// returns false. A key longer than MaxKey is reported as HashedKey(key).
func (c *Cache) Foreach(fn func(key []byte, size uint64, created time.Time) bool) error {
	var (
		panicked bool
		panicVal interface{}
	)
	visitor := swigfsc.Visitor(func(key []byte, size uint64, createdMs int64) (rc int) {
		defer func() {
			if r := recover(); r != nil {
				panicked, panicVal, rc = true, r, 1
			}
		}()
		if fn(key, size, time.UnixMilli(createdMs)) {
			return 0
		}
		return 1
	})
	handle := cgo.NewHandle(visitor)
	defer handle.Delete()
	err := c.simple("Foreach", func(h swigfsc.Struct_SS_fsc_cache) int { return swigfsc.Fsc_go_foreach(h, uint(handle)) })
	if panicked {
		panic(panicVal)
	}
	return err
}
