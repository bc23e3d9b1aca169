package fsc_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	fsc "github.com/fsc-cache/fsc/bindings/go"
)

// Child processes re-run this test binary with FSC_TEST_CHILD set to a role.
const childEnv = "FSC_TEST_CHILD"

func TestMain(m *testing.M) {
	if role := os.Getenv(childEnv); role != "" {
		key, err := hex.DecodeString(os.Getenv("FSC_TEST_KEY"))
		if err != nil {
			os.Exit(2)
		}
		os.Exit(child(role, os.Getenv("FSC_TEST_DIR"), key))
	}
	os.Exit(m.Run())
}

// child runs one role and returns the exit status; 0 means as expected.
func child(role, dir string, key []byte) int {
	c, err := fsc.Open(dir, fsc.Options{CacheSize: -1})
	if err != nil {
		fmt.Fprintln(os.Stderr, "open:", err)
		return 2
	}
	defer c.Close()
	switch role {
	case "hold":
		// Take the lock, say so, hold it until stdin closes.
		l, err := c.Lock(context.Background(), key)
		if err != nil {
			fmt.Fprintln(os.Stderr, "lock:", err)
			return 2
		}
		fmt.Println("locked")
		io.Copy(io.Discard, os.Stdin)
		if err := l.Unlock(); err != nil {
			fmt.Fprintln(os.Stderr, "unlock:", err)
			return 2
		}
		return 0
	case "trybusy":
		l, err := c.TryLock(key)
		if err == nil {
			l.Unlock()
			fmt.Fprintln(os.Stderr, "lock taken although another process holds it")
			return 3
		}
		if !errors.Is(err, fsc.ErrBusy) {
			fmt.Fprintln(os.Stderr, "want ErrBusy, got", err)
			return 2
		}
		return 0
	case "tryfree":
		l, err := c.TryLock(key)
		if err != nil {
			fmt.Fprintln(os.Stderr, "lock:", err)
			return 3
		}
		if err := l.Unlock(); err != nil {
			return 2
		}
		return 0
	case "big":
		return bigChild(c, dir, key)
	}
	fmt.Fprintln(os.Stderr, "unknown role", role)
	return 2
}

const bigSize = 256 << 20

// bigChild stores a 256 MiB file and reads it back through GetFile, then
// prints its peak RSS (VmHWM, kB) and the value's SHA-256.
func bigChild(c *fsc.Cache, dir string, key []byte) int {
	src := filepath.Join(filepath.Dir(dir), "big.src")
	f, err := os.Create(src)
	if err != nil {
		return 2
	}
	block := make([]byte, 1<<20)
	h := sha256.New()
	for i := 0; i < bigSize/len(block); i++ {
		for j := range block {
			block[j] = byte(i + j)
		}
		f.Write(block)
		h.Write(block)
	}
	want := h.Sum(nil)
	if err := f.Close(); err != nil {
		return 2
	}
	if err := c.SetFile(key, src, false); err != nil {
		fmt.Fprintln(os.Stderr, "SetFile:", err)
		return 2
	}
	os.Remove(src)
	r, err := c.GetFile(key)
	if err != nil {
		fmt.Fprintln(os.Stderr, "GetFile:", err)
		return 2
	}
	h.Reset()
	n, err := io.Copy(h, r)
	r.Close()
	if err != nil || n != bigSize || !bytes.Equal(h.Sum(nil), want) {
		fmt.Fprintf(os.Stderr, "read %d bytes, err %v, content equal %v\n", n, err, bytes.Equal(h.Sum(nil), want))
		return 3
	}
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 2
	}
	for _, line := range strings.Split(string(status), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			fmt.Println(strings.TrimSpace(strings.TrimSuffix(strings.TrimPrefix(line, "VmHWM:"), "kB")))
			return 0
		}
	}
	return 2
}

func open(t *testing.T, opts fsc.Options) (*fsc.Cache, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "cache")
	c, err := fsc.Open(dir, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c, dir
}

// lock takes the key's lock, waiting as long as it takes.
func lock(t *testing.T, c *fsc.Cache, key []byte) *fsc.Lock {
	t.Helper()
	l, err := c.Lock(context.Background(), key)
	if err != nil {
		t.Fatalf("Lock: %v", err)
	}
	return l
}

func childCmd(role, dir string, key []byte) *exec.Cmd {
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), childEnv+"="+role, "FSC_TEST_DIR="+dir, "FSC_TEST_KEY="+hex.EncodeToString(key))
	cmd.Stderr = os.Stderr
	return cmd
}

func runChild(t *testing.T, role, dir string, key []byte) {
	t.Helper()
	if err := childCmd(role, dir, key).Run(); err != nil {
		t.Fatalf("child %q: %v", role, err)
	}
}

func TestVersion(t *testing.T) {
	if v := fsc.Version(); !strings.HasPrefix(v, "0.") {
		t.Fatalf("Version() = %q", v)
	}
}

func TestRoundTrip(t *testing.T) {
	c, _ := open(t, fsc.Options{})
	val := make([]byte, 256)
	for i := range val {
		val[i] = byte(i)
	}
	if err := c.Set([]byte("k"), val); err != nil {
		t.Fatal(err)
	}
	got, err := c.Get([]byte("k"))
	if err != nil || !bytes.Equal(got, val) {
		t.Fatalf("Get = %q, %v", got, err)
	}
	if err := c.Set([]byte("empty"), nil); err != nil {
		t.Fatal(err)
	}
	if got, err := c.Get([]byte("empty")); err != nil || len(got) != 0 {
		t.Fatalf("empty value: %q, %v", got, err)
	}
	if err := c.Delete([]byte("k")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get([]byte("k")); !errors.Is(err, fsc.ErrMiss) {
		t.Fatalf("Get after Delete: %v", err)
	}
}

// The longest Duration as an expiration or a ttl never expires (its
// milliseconds are far past what 64-bit microseconds hold).
func TestLongestExpirationNeverExpires(t *testing.T) {
	forever := time.Duration(math.MaxInt64)
	c, _ := open(t, fsc.Options{Expiration: forever})
	if err := c.Set([]byte("k"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	if err := c.Prune(); err != nil {
		t.Fatal(err)
	}
	if got, err := c.Get([]byte("k")); err != nil || string(got) != "v" {
		t.Fatalf("Get after Prune = %q, %v", got, err)
	}
	got, err := c.GetOrCreate([]byte("k"), forever, func() ([]byte, error) {
		return nil, errors.New("a fresh value was created again")
	})
	if err != nil || string(got) != "v" {
		t.Fatalf("GetOrCreate = %q, %v", got, err)
	}
}

func TestBinaryKeys(t *testing.T) {
	c, _ := open(t, fsc.Options{})
	keys := [][]byte{[]byte("a"), []byte("a\x00"), []byte("a\x00b"), []byte("a\x00c"), {0}, {0, 0}}
	for i, k := range keys {
		if err := c.Set(k, []byte{byte(i), 0, byte(i)}); err != nil {
			t.Fatalf("Set %q: %v", k, err)
		}
	}
	for i, k := range keys {
		got, err := c.Get(k)
		if err != nil || !bytes.Equal(got, []byte{byte(i), 0, byte(i)}) {
			t.Fatalf("Get %q = %v, %v", k, got, err)
		}
	}
}

// storedKeys lists the keys Foreach reports.
func storedKeys(t *testing.T, c *fsc.Cache) [][]byte {
	t.Helper()
	var keys [][]byte
	err := c.Foreach(func(key []byte, size uint64, created time.Time) bool {
		keys = append(keys, append([]byte(nil), key...))
		return true
	})
	if err != nil {
		t.Fatalf("Foreach: %v", err)
	}
	return keys
}

func TestLongKeys(t *testing.T) {
	c, _ := open(t, fsc.Options{})
	max := bytes.Repeat([]byte{0}, fsc.MaxKey)
	if err := c.Set(max, []byte("x")); err != nil {
		t.Fatalf("key of MaxKey bytes: %v", err)
	}
	if keys := storedKeys(t, c); len(keys) != 1 || !bytes.Equal(keys[0], max) {
		t.Fatalf("a key of MaxKey bytes is not stored as is: %d keys", len(keys))
	}
	if err := c.Delete(max); err != nil {
		t.Fatalf("Delete of the MaxKey key: %v", err)
	}

	// The same key (and SHA-256) in every binding's test: Python stores it so.
	long := []byte(strings.Repeat("0123456789abcdef", 4097))
	const stored = "fsc.sha256:4de9ccf85d6b865de082de306a67e3aacb51222b2e3380a3455d0504e1e993b7"
	other := append(append([]byte(nil), long[:len(long)-1]...), 'x')
	if err := c.Set(long, []byte("long")); err != nil {
		t.Fatalf("Set of a long key: %v", err)
	}
	if err := c.Set(other, []byte("other")); err != nil {
		t.Fatalf("Set of another long key: %v", err)
	}
	if got, err := c.Get(long); err != nil || string(got) != "long" {
		t.Fatalf("Get of a long key = %q, %v", got, err)
	}
	if got := string(fsc.HashedKey(long)); got != stored {
		t.Fatalf("HashedKey = %s", got)
	}
	found := false
	for _, k := range storedKeys(t, c) {
		found = found || string(k) == stored
	}
	if !found {
		t.Fatalf("Foreach does not list %s", stored)
	}
	if got, err := c.Get([]byte(stored)); err != nil || string(got) != "long" {
		t.Fatalf("Get of the hashed key = %q, %v", got, err)
	}
	l, err := c.Lock(context.Background(), long)
	if err != nil {
		t.Fatalf("Lock of a long key: %v", err)
	}
	if _, err := c.TryLock([]byte(stored)); !errors.Is(err, fsc.ErrBusy) {
		t.Fatalf("TryLock of the hashed key while the long key is locked: %v", err)
	}
	if err := l.Unlock(); err != nil {
		t.Fatalf("Unlock: %v", err)
	}
	if err := c.Delete(long); err != nil {
		t.Fatalf("Delete of a long key: %v", err)
	}
	if _, err := c.Get(long); !errors.Is(err, fsc.ErrMiss) {
		t.Fatalf("Get after Delete: %v", err)
	}
	if got, err := c.Get(other); err != nil || string(got) != "other" {
		t.Fatalf("the other long key = %q, %v", got, err)
	}
}

func TestErrors(t *testing.T) {
	c, _ := open(t, fsc.Options{})
	_, err := c.Get([]byte("absent"))
	if !errors.Is(err, fsc.ErrMiss) {
		t.Fatalf("miss: %v", err)
	}
	if err := c.Delete([]byte("absent")); !errors.Is(err, fsc.ErrMiss) {
		t.Fatalf("Delete of a missing key: %v", err)
	}
	err = c.Set(nil, []byte("v"))
	var fe *fsc.Error
	if !errors.As(err, &fe) || fe.Code != fsc.CodeInvalid || fe.Msg == "" || !errors.Is(err, fsc.ErrInvalid) {
		t.Fatalf("empty key: %#v", err)
	}
	if !strings.Contains(err.Error(), "FSC_EINVAL") {
		t.Fatalf("message %q lacks the status name", err)
	}
	if errors.Is(err, fsc.ErrMiss) {
		t.Fatal("EINVAL matches ErrMiss")
	}

	notCache := t.TempDir()
	os.WriteFile(filepath.Join(notCache, "precious"), []byte("data"), 0o600)
	if _, err := fsc.Open(notCache, fsc.Options{}); !errors.Is(err, fsc.ErrFormat) {
		t.Fatalf("Open of a foreign directory: %v", err)
	}
	if _, err := fsc.Open(filepath.Join(notCache, "precious"), fsc.Options{}); err == nil {
		t.Fatal("Open of a regular file succeeded")
	}

	small, _ := open(t, fsc.Options{CacheSize: 16})
	if err := small.Set([]byte("k"), make([]byte, 17)); !errors.Is(err, fsc.ErrTooBig) {
		t.Fatalf("value over cache size: %v", err)
	}
	if err := c.SetFile([]byte("k"), 42, false); !errors.Is(err, fsc.ErrInvalid) {
		t.Fatalf("SetFile with an int: %v", err)
	}

	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := c.Set([]byte("k"), nil); !errors.Is(err, fsc.ErrClosed) {
		t.Fatalf("Set after Close: %v", err)
	}
}

// shardFiles counts the files under dir/shards/*/ that are entry files
// (32 hex digits) and pack files (pack.<16 hex digits>).
func shardFiles(t *testing.T, dir string) (entries, packs int) {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "shards", "*", "*"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		base := filepath.Base(name)
		if len(base) == 32 && strings.Trim(base, "0123456789abcdef") == "" {
			entries++
		}
		if rest := strings.TrimPrefix(base, "pack."); rest != base && len(rest) == 16 &&
			strings.Trim(rest, "0123456789abcdef") == "" {
			packs++
		}
	}
	return entries, packs
}

func TestPackLimit(t *testing.T) {
	val := []byte("small value")
	for _, tc := range []struct {
		name           string
		packLimit      int64
		entries, packs bool
	}{
		{"never pack", -1, true, false},
		{"default", 0, false, true},
	} {
		c, dir := open(t, fsc.Options{PackLimit: tc.packLimit})
		if err := c.Set([]byte("k"), val); err != nil {
			t.Fatalf("%s: Set: %v", tc.name, err)
		}
		if got, err := c.Get([]byte("k")); err != nil || !bytes.Equal(got, val) {
			t.Fatalf("%s: Get = %q, %v", tc.name, got, err)
		}
		entries, packs := shardFiles(t, dir)
		if (entries > 0) != tc.entries || (packs > 0) != tc.packs {
			t.Fatalf("%s: %d entry files and %d pack files", tc.name, entries, packs)
		}
	}
	dir := filepath.Join(t.TempDir(), "cache")
	if _, err := fsc.Open(dir, fsc.Options{PackLimit: 1<<20 + 1}); !errors.Is(err, fsc.ErrInvalid) {
		t.Fatalf("PackLimit over 1 MiB: %v", err)
	}
	c, err := fsc.Open(dir, fsc.Options{PackLimit: 1 << 20})
	if err != nil {
		t.Fatalf("PackLimit of 1 MiB: %v", err)
	}
	c.Close()
}

func TestNetworkMode(t *testing.T) {
	// The test directory is local: off unless forced on.
	for _, tc := range []struct {
		mode fsc.NetworkMode
		want bool
	}{{fsc.NetworkAuto, false}, {fsc.NetworkOn, true}, {fsc.NetworkOff, false}} {
		c, _ := open(t, fsc.Options{NetworkMode: tc.mode})
		st, err := c.Stats()
		if err != nil || st.NetworkMode != tc.want || st.NetworkFS {
			t.Fatalf("NetworkMode %v: Stats = %+v, %v", tc.mode, st, err)
		}
		// A handle forced on works as any other.
		if err := c.Set([]byte("k"), []byte("v")); err != nil {
			t.Fatalf("NetworkMode %v: Set: %v", tc.mode, err)
		}
		if v, err := c.Get([]byte("k")); err != nil || string(v) != "v" {
			t.Fatalf("NetworkMode %v: Get = %q, %v", tc.mode, v, err)
		}
		v, err := c.GetOrCreate([]byte("g"), 0, func() ([]byte, error) { return []byte("made"), nil })
		if err != nil || string(v) != "made" {
			t.Fatalf("NetworkMode %v: GetOrCreate = %q, %v", tc.mode, v, err)
		}
	}
	// 1<<32 would be 0 (auto) once cut to a C int.
	for _, bad := range []fsc.NetworkMode{3, -1, 1 << 32} {
		dir := filepath.Join(t.TempDir(), "cache")
		_, err := fsc.Open(dir, fsc.Options{NetworkMode: bad})
		if !errors.Is(err, fsc.ErrInvalid) || !strings.Contains(err.Error(), "NetworkMode") {
			t.Fatalf("NetworkMode %d: %v", int(bad), err)
		}
	}
	if fsc.NetworkOn.String() != "on" || fsc.CodeLost.String() != "FSC_ELOST" {
		t.Fatalf("names: %v, %v", fsc.NetworkOn, fsc.CodeLost)
	}
	if !errors.Is(&fsc.Error{Code: -15, Op: "Set"}, fsc.ErrLost) || errors.Is(fsc.ErrIO, fsc.ErrLost) {
		t.Fatal("ErrLost does not match status -15 alone")
	}
}

func TestFileRoundTrip(t *testing.T) {
	c, _ := open(t, fsc.Options{})
	src := filepath.Join(t.TempDir(), "src")
	content := []byte("HEADER\x00payload")
	if err := os.WriteFile(src, content, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Seek(7, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	if err := c.SetFile([]byte("raw"), f, false); err != nil {
		t.Fatal(err)
	}
	r, err := c.GetFile([]byte("raw"))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	rest, err := io.ReadAll(r)
	if err != nil || string(rest) != "payload" {
		t.Fatalf("from the offset: %q, %v", rest, err)
	}
	if _, err := r.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	if all, _ := io.ReadAll(r); !bytes.Equal(all, content) {
		t.Fatalf("whole file: %q", all)
	}
	if got, err := c.Get([]byte("raw")); err != nil || string(got) != "payload" {
		t.Fatalf("Get of a file value: %q, %v", got, err)
	}
	if _, err := os.Stat(src); err != nil {
		t.Fatalf("copied source vanished: %v", err)
	}

	// A value stored with Set reads back through GetFile as well.
	c.Set([]byte("gen"), []byte("generic"))
	g, err := c.GetFile([]byte("gen"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(g)
	g.Close()
	if string(b) != "generic" {
		t.Fatalf("GetFile of a Set value: %q", b)
	}

	// Move by path: the file is renamed in.
	mv := filepath.Join(filepath.Dir(src), "move")
	os.WriteFile(mv, []byte("moved"), 0o600)
	if err := c.SetFile([]byte("mv"), mv, true); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(mv); !os.IsNotExist(err) {
		t.Fatalf("moved file still there: %v", err)
	}
	if got, err := c.Get([]byte("mv")); err != nil || string(got) != "moved" {
		t.Fatalf("moved value: %q, %v", got, err)
	}
	if _, err := c.GetFile([]byte("absent")); !errors.Is(err, fsc.ErrMiss) {
		t.Fatalf("GetFile miss: %v", err)
	}
}

func TestGetOrCreateStampede(t *testing.T) {
	c, _ := open(t, fsc.Options{})
	const n = 32
	var calls int32
	var started sync.WaitGroup
	started.Add(n)
	allStarted := make(chan struct{})
	go func() { started.Wait(); close(allStarted) }()
	results := make([][]byte, n)
	errs := make([]error, n)
	var done sync.WaitGroup
	for i := 0; i < n; i++ {
		done.Add(1)
		go func(i int) {
			defer done.Done()
			started.Done()
			results[i], errs[i] = c.GetOrCreate([]byte("hot\x00key"), 0, func() ([]byte, error) {
				atomic.AddInt32(&calls, 1)
				<-allStarted // keep the lock until every caller has been launched
				return []byte("created once"), nil
			})
		}(i)
	}
	done.Wait()
	if calls != 1 {
		t.Fatalf("creator called %d times", calls)
	}
	for i := range results {
		if errs[i] != nil || string(results[i]) != "created once" {
			t.Fatalf("caller %d: %q, %v", i, results[i], errs[i])
		}
	}
	// A fresh value: no call at all.
	v, err := c.GetOrCreate([]byte("hot\x00key"), time.Hour, func() ([]byte, error) {
		t.Error("creator called for a fresh value")
		return nil, nil
	})
	if err != nil || string(v) != "created once" {
		t.Fatalf("fresh: %q, %v", v, err)
	}
}

func TestGetOrCreateFailures(t *testing.T) {
	c, _ := open(t, fsc.Options{})
	boom := errors.New("boom")
	_, err := c.GetOrCreate([]byte("k"), 0, func() ([]byte, error) { return nil, boom })
	if !errors.Is(err, fsc.ErrCreator) || !errors.Is(err, boom) {
		t.Fatalf("creator error: %v", err)
	}
	if _, err := c.Get([]byte("k")); !errors.Is(err, fsc.ErrMiss) {
		t.Fatalf("something was stored: %v", err)
	}

	func() {
		defer func() {
			if r := recover(); r != "creator panic" {
				t.Fatalf("recovered %v", r)
			}
		}()
		c.GetOrCreate([]byte("k"), 0, func() ([]byte, error) { panic("creator panic") })
		t.Fatal("no panic")
	}()
	// The panic left the key unlocked and empty.
	l, err := c.TryLock([]byte("k"))
	if err != nil {
		t.Fatalf("key still locked after a panicking creator: %v", err)
	}
	l.Unlock()
	v, err := c.GetOrCreate([]byte("k"), 0, func() ([]byte, error) { return []byte("ok"), nil })
	if err != nil || string(v) != "ok" {
		t.Fatalf("after failures: %q, %v", v, err)
	}
}

func TestLockGoroutines(t *testing.T) {
	c, _ := open(t, fsc.Options{})
	key := []byte("lk")
	l := lock(t, c, key)
	// Many tries from other goroutines (which may run on the thread that
	// took the lock) must all see it busy.
	var wg sync.WaitGroup
	var taken int32
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if l2, err := c.TryLock(key); err == nil {
				atomic.AddInt32(&taken, 1)
				l2.Unlock()
			} else if !errors.Is(err, fsc.ErrBusy) {
				t.Errorf("TryLock: %v", err)
			}
		}()
	}
	wg.Wait()
	if taken != 0 {
		t.Fatalf("%d goroutines took a held lock", taken)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Millisecond)
	defer cancel()
	_, err := c.Lock(ctx, key)
	if !errors.Is(err, fsc.ErrTimedOut) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("deadline: %v", err)
	}

	ctx2, cancel2 := context.WithCancel(context.Background())
	res := make(chan error, 1)
	go func() {
		_, err := c.Lock(ctx2, key)
		res <- err
	}()
	cancel2()
	if err := <-res; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancel: %v", err)
	}

	if err := l.Unlock(); err != nil {
		t.Fatal(err)
	}
	if err := l.Unlock(); !errors.Is(err, fsc.ErrInvalid) {
		t.Fatalf("second Unlock: %v", err)
	}
	l3, err := c.TryLock(key)
	if err != nil {
		t.Fatalf("after Unlock: %v", err)
	}
	l3.Unlock()
}

func TestLockOtherProcess(t *testing.T) {
	c, dir := open(t, fsc.Options{})
	key := []byte("shared\x00lock")

	// This process holds it: another process cannot take it.
	l := lock(t, c, key)
	runChild(t, "trybusy", dir, key)
	l.Unlock()
	runChild(t, "tryfree", dir, key)

	// Another process holds it: this one cannot take it.
	cmd := childCmd("hold", dir, key)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "locked\n" {
		t.Fatalf("child said %q, %v", line, err)
	}
	if _, err := c.TryLock(key); !errors.Is(err, fsc.ErrBusy) {
		t.Fatalf("TryLock while another process holds it: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := c.Lock(ctx, key); !errors.Is(err, fsc.ErrTimedOut) {
		t.Fatalf("Lock with a deadline: %v", err)
	}
	if pid, err := c.LockHolder(key); err != nil || pid != cmd.Process.Pid {
		t.Fatalf("LockHolder = %d, %v; child is %d", pid, err, cmd.Process.Pid)
	}
	stdin.Close() // the child unlocks and exits
	// Waits for the child's unlock, no timing involved.
	l2 := lock(t, c, key)
	l2.Unlock()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v", err)
	}
}

func TestHousekeeping(t *testing.T) {
	c, _ := open(t, fsc.Options{})
	c.Set([]byte("a"), []byte("1"))
	c.Set([]byte("b"), []byte("2"))
	seen := map[string]uint64{}
	if err := c.Foreach(func(k []byte, size uint64, created time.Time) bool {
		seen[string(k)] = size
		return true
	}); err != nil {
		t.Fatal(err)
	}
	if len(seen) != 2 || seen["a"] != 1 {
		t.Fatalf("Foreach saw %v", seen)
	}
	if err := c.Invalidate(true); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get([]byte("a")); !errors.Is(err, fsc.ErrMiss) {
		t.Fatalf("after hard Invalidate: %v", err)
	}
	c.Set([]byte("c"), []byte("3"))
	if err := c.Clear(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get([]byte("c")); !errors.Is(err, fsc.ErrMiss) {
		t.Fatalf("after Clear: %v", err)
	}
	// Not implemented by every build of the library yet: either works or says so.
	notSup := func(name string, err error) {
		if err != nil && !errors.Is(err, fsc.ErrNotSup) {
			t.Errorf("%s: %v", name, err)
		} else if err != nil {
			t.Logf("%s: %v", name, err)
		}
	}
	notSup("Prune", c.Prune())
	st, err := c.Stats()
	notSup("Stats", err)
	if err == nil && (st.Sets < 3 || st.Entries != 0) {
		t.Errorf("Stats after 3 sets and Clear: %+v", st)
	}
	if err == nil && st.NetworkFS {
		t.Errorf("Stats of a cache on a local filesystem: NetworkFS")
	}
	rep, err := c.Verify(false)
	notSup("Verify", err)
	if err == nil && rep.Problems != 0 {
		t.Errorf("Verify of a healthy cache: %+v", rep)
	}
}

func TestBigValueStreams(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 512 MiB")
	}
	dir := filepath.Join(t.TempDir(), "cache")
	cmd := childCmd("big", dir, []byte("big"))
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("child: %v", err)
	}
	kb, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatalf("child printed %q", out)
	}
	t.Logf("peak RSS reading a 256 MiB value: %d kB", kb)
	if kb >= 64<<10 {
		t.Fatalf("peak RSS %d kB, want < 64 MiB", kb)
	}
}

func TestSoftInvalidateServesStale(t *testing.T) {
	c, dir := open(t, fsc.Options{})
	key := []byte("soft")
	if err := c.Set(key, []byte("old")); err != nil {
		t.Fatal(err)
	}
	if err := c.Invalidate(false); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(key); !errors.Is(err, fsc.ErrMiss) {
		t.Fatalf("Get after soft Invalidate: %v", err)
	}
	// Another process holds the key's lock, as a regenerating caller would:
	// the old value comes back at once, without a creator call.
	cmd := childCmd("hold", dir, key)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if line, err := bufio.NewReader(stdout).ReadString('\n'); err != nil || line != "locked\n" {
		t.Fatalf("child said %q, %v", line, err)
	}
	v, err := c.GetOrCreate(key, 0, func() ([]byte, error) {
		t.Error("creator called while another process regenerates")
		return []byte("new"), nil
	})
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v", err)
	}
	if err != nil || string(v) != "old" {
		t.Fatalf("stale value: %q, %v", v, err)
	}
	// Nobody regenerating: this caller does.
	v, err = c.GetOrCreate(key, 0, func() ([]byte, error) { return []byte("new"), nil })
	if err != nil || string(v) != "new" {
		t.Fatalf("regenerated: %q, %v", v, err)
	}
}
