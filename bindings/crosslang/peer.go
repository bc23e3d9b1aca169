// Cross-language peer in Go: one operation per run on a cache directory,
// keys and values given and printed in hex. See README.md for the commands.
package main

import (
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	fsc "github.com/fsc-cache/fsc/bindings/go"
)

func die(format string, args ...interface{}) {
	fmt.Printf("error "+format+"\n", args...)
	os.Exit(1)
}

func unhex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		die("bad hex %q: %v", s, err)
	}
	return b
}

// keyArg is the key of a KEYHEX argument, or of @FILE: FILE's bytes (a long
// key's hex does not fit in one argument).
func keyArg(s string) []byte {
	if strings.HasPrefix(s, "@") {
		b, err := os.ReadFile(s[1:])
		if err != nil {
			die("key file: %v", err)
		}
		return b
	}
	return unhex(s)
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// waitFor polls for path every millisecond, for at most 30 s.
func waitFor(path string) {
	deadline := time.Now().Add(30 * time.Second)
	for !exists(path) {
		if time.Now().After(deadline) {
			die("timed out waiting for %s", path)
		}
		time.Sleep(time.Millisecond)
	}
}

func main() {
	if len(os.Args) < 4 {
		die("usage: peer CMD DIR KEYHEX [ARGS...]")
	}
	cmd, dir, key := os.Args[1], os.Args[2], keyArg(os.Args[3])
	args := os.Args[4:]
	if cmd == "openrace" { // READYFILE GOFILE: open at the start signal, then get
		if err := os.WriteFile(args[0], nil, 0o644); err != nil {
			die("ready: %v", err)
		}
		waitFor(args[1])
		cmd = "get"
	}
	c, err := fsc.Open(dir, fsc.Options{})
	if err != nil {
		die("open: %v", err)
	}
	defer c.Close()

	switch cmd {
	case "set": // VALHEX
		if err := c.Set(key, unhex(args[0])); err != nil {
			die("set: %v", err)
		}
		fmt.Println("stored")
	case "get":
		v, err := c.Get(key)
		if errors.Is(err, fsc.ErrMiss) {
			fmt.Println("miss")
		} else if err != nil {
			die("get: %v", err)
		} else {
			fmt.Println("hit " + hex.EncodeToString(v))
		}
	case "trylock":
		l, err := c.TryLock(key)
		if errors.Is(err, fsc.ErrBusy) {
			pid, herr := c.LockHolder(key)
			if herr != nil {
				die("lock_holder: %v", herr)
			}
			fmt.Printf("busy %d\n", pid)
		} else if err != nil {
			die("trylock: %v", err)
		} else {
			if err := l.Unlock(); err != nil {
				die("unlock: %v", err)
			}
			fmt.Println("acquired")
		}
	case "stampede": // READYFILE GOFILE COUNTERFILE VALHEX
		ready, goFile, counter, mine := args[0], args[1], args[2], unhex(args[3])
		if err := os.WriteFile(ready, nil, 0o644); err != nil {
			die("ready: %v", err)
		}
		waitFor(goFile)
		v, err := c.GetOrCreate(key, 0, func() ([]byte, error) {
			f, err := os.OpenFile(counter, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
			if err != nil {
				return nil, err
			}
			_, err = fmt.Fprintf(f, "go %d\n", os.Getpid())
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return nil, err
			}
			time.Sleep(300 * time.Millisecond)
			return mine, nil
		})
		if err != nil {
			die("get_or_create: %v", err)
		}
		fmt.Println("value " + hex.EncodeToString(v))
	default:
		die("unknown command %q", cmd)
	}
}
