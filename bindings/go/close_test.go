package fsc_test

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	fsc "github.com/fsc-cache/fsc/bindings/go"
)

// Close racing calls in other goroutines, and create and Foreach functions
// that close, re-enter or fail: no crash, no hang, every call gives its
// value or ErrClosed.

func TestCloseWhileGoroutinesCall(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cache")
	for round := 0; round < 20; round++ {
		c, err := fsc.Open(dir, fsc.Options{})
		if err != nil {
			t.Fatal(err)
		}
		var started, done sync.WaitGroup
		errs := make(chan error, 4)
		for n := 0; n < 4; n++ {
			started.Add(1)
			done.Add(1)
			go func(n int) {
				defer done.Done()
				key := []byte("k" + strconv.Itoa(n))
				for calls := 0; ; calls++ {
					var err error
					switch calls % 3 {
					case 0:
						err = c.Set(key, []byte("v"))
					case 1:
						if _, err = c.Get(key); errors.Is(err, fsc.ErrMiss) {
							err = nil
						}
					default:
						_, err = c.GetOrCreate([]byte("shared"), 0, func() ([]byte, error) { return []byte("made"), nil })
					}
					if errors.Is(err, fsc.ErrClosed) {
						if calls < 50 {
							started.Done()
						}
						return
					}
					if err != nil {
						errs <- err
						return
					}
					if calls == 50 {
						started.Done()
					}
				}
			}(n)
		}
		started.Wait() // every goroutine is calling
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
		done.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("a call racing Close: %v", err)
		}
		if _, err := c.Get([]byte("k0")); !errors.Is(err, fsc.ErrClosed) {
			t.Fatalf("after Close: %v", err)
		}
	}
}

func TestCreateClosesItsCache(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cache")
	c, err := fsc.Open(dir, fsc.Options{})
	if err != nil {
		t.Fatal(err)
	}
	v, err := c.GetOrCreate([]byte("k"), 0, func() ([]byte, error) {
		if err := c.Close(); err != nil {
			return nil, err
		}
		return []byte("value"), nil
	})
	// The call in flight finishes on the open handle.
	if err != nil || string(v) != "value" {
		t.Fatalf("GetOrCreate whose create closed the cache: %q, %v", v, err)
	}
	if _, err := c.Get([]byte("k")); !errors.Is(err, fsc.ErrClosed) {
		t.Fatalf("Get after the close: %v", err)
	}
	again, err := fsc.Open(dir, fsc.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if v, err := again.Get([]byte("k")); err != nil || string(v) != "value" {
		t.Fatalf("reopened: %q, %v", v, err)
	}
	l, err := again.TryLock([]byte("k"))
	if err != nil {
		t.Fatalf("the key stayed locked: %v", err)
	}
	l.Unlock()
}

func TestCreateReentersItsCache(t *testing.T) {
	c, _ := open(t, fsc.Options{})
	v, err := c.GetOrCreate([]byte("k"), 0, func() ([]byte, error) {
		if _, err := c.Get([]byte("k")); !errors.Is(err, fsc.ErrMiss) {
			return nil, err
		}
		if err := c.Set([]byte("other"), []byte("o")); err != nil {
			return nil, err
		}
		inner, err := c.GetOrCreate([]byte("inner"), 0, func() ([]byte, error) { return []byte("i"), nil })
		if err != nil || string(inner) != "i" {
			return nil, errors.New("inner GetOrCreate: " + string(inner))
		}
		return []byte("outer"), nil
	})
	if err != nil || string(v) != "outer" {
		t.Fatalf("re-entering create: %q, %v", v, err)
	}
	if v, err := c.Get([]byte("other")); err != nil || string(v) != "o" {
		t.Fatalf("other: %q, %v", v, err)
	}
}

func TestCreateFailsAfterReentering(t *testing.T) {
	c, _ := open(t, fsc.Options{})
	boom := errors.New("boom")
	_, err := c.GetOrCreate([]byte("k"), 0, func() ([]byte, error) {
		c.Set([]byte("side"), []byte("s"))
		return nil, boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("create's error: %v", err)
	}
	if _, err := c.Get([]byte("k")); !errors.Is(err, fsc.ErrMiss) {
		t.Fatalf("something was stored: %v", err)
	}
	if v, err := c.GetOrCreate([]byte("k"), 0, func() ([]byte, error) { return []byte("v"), nil }); err != nil || string(v) != "v" {
		t.Fatalf("after the failure: %q, %v", v, err)
	}
}

func TestForeachClosesAndReenters(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cache")
	c, err := fsc.Open(dir, fsc.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		c.Set([]byte("k"+strconv.Itoa(i)), []byte("v"))
	}
	seen := 0
	err = c.Foreach(func(key []byte, size uint64, created time.Time) bool {
		seen++
		if seen == 1 {
			if v, err := c.Get(key); err != nil || string(v) != "v" {
				t.Errorf("Get from Foreach: %q, %v", v, err)
			}
			c.Close()
		} else if _, err := c.Get(key); !errors.Is(err, fsc.ErrClosed) {
			t.Errorf("Get after Close in Foreach: %v", err)
		}
		return true
	})
	if err != nil || seen != 5 {
		t.Fatalf("Foreach: %d seen, %v", seen, err)
	}
}

func TestOwnershipAndSharedGroup(t *testing.T) {
	planted := filepath.Join(t.TempDir(), "planted")
	if err := os.Mkdir(planted, 0o700); err != nil {
		t.Fatal(err)
	}
	os.Chmod(planted, 0o777)
	if _, err := fsc.Open(planted, fsc.Options{}); !errors.Is(err, fsc.ErrAccess) {
		t.Fatalf("a world-writable directory: %v", err)
	}
	shared := filepath.Join(t.TempDir(), "shared")
	c, err := fsc.Open(shared, fsc.Options{SharedGroup: strconv.Itoa(os.Getgid())})
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	st, err := os.Stat(shared)
	if err != nil || st.Mode()&(os.ModeSetgid|os.ModePerm) != os.ModeSetgid|0o770 {
		t.Fatalf("shared directory mode %v, %v", st.Mode(), err)
	}
	if _, err := fsc.Open(shared, fsc.Options{SharedGroup: "no-such-group-fsc"}); !errors.Is(err, fsc.ErrInvalid) {
		t.Fatalf("unknown group: %v", err)
	}
}
