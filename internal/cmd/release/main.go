// Command release builds the release archives and their checksums file:
//
//	go run ./internal/cmd/release [-version v1.2.3] [-out dist] [-targets linux/amd64,...]
//
// Version, commit and date default to what git says of the checkout (the tag on HEAD,
// HEAD's id and its commit date), so the same commit gives the same bytes. See
// docs/releasing.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/pctoken/pctoken-helper/internal/release"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("release", flag.ContinueOnError)
	fs.SetOutput(stderr)
	src := fs.String("src", "", "the module's root folder (default: the module of the current folder)")
	out := fs.String("out", "", "folder for the archives and checksums; must be empty (default: dist in the module's root)")
	version := fs.String("version", "", "version to stamp, e.g. v1.2.3 (default: the tag on HEAD, else a pseudo-version)")
	commit := fs.String("commit", "", "commit id to stamp (default: HEAD)")
	date := fs.String("date", "", "build date to stamp, RFC 3339 (default: $SOURCE_DATE_EPOCH, else HEAD's commit date)")
	targets := fs.String("targets", "", "comma-separated GOOS/GOARCH list (default: all six release targets)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "error: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	err := build(ctx, *src, *out, *version, *commit, *date, *targets, stdout, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "error: %v\n", err)
		return 1
	}
	return 0
}

func build(ctx context.Context, src, out, version, commit, date, targets string, stdout, stderr io.Writer) error {
	var err error
	if src == "" {
		if src, err = moduleRoot(ctx); err != nil {
			return err
		}
	}
	if out == "" {
		out = filepath.Join(src, "dist")
	}
	o := release.Options{Src: src, Out: out, Log: stderr}
	if targets != "" {
		if o.Targets, err = release.ParseTargets(targets); err != nil {
			return err
		}
	}
	if o.Stamp, err = stamp(ctx, src, version, commit, date); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "release %s (commit %s, %s) into %s\n", o.Stamp.Version, o.Stamp.Commit, o.Stamp.Date.Format(time.RFC3339), out)
	res, err := release.Build(ctx, o)
	if err != nil {
		return err
	}
	for _, name := range append(res.Archives, res.Checksums) {
		fmt.Fprintln(stdout, filepath.Join(out, name))
	}
	return nil
}

// moduleRoot is the folder of the go.mod that governs the current folder.
func moduleRoot(ctx context.Context) (string, error) {
	b, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("failed to find the module: %w", err)
	}
	gomod := strings.TrimSpace(string(b))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("not inside the pctoken-helper module: run from the checkout, or give -src")
	}
	return filepath.Dir(gomod), nil
}

// stamp fills what was not given from git: commit HEAD, its commit date (or
// SOURCE_DATE_EPOCH, the reproducible-builds convention), and the version tag on HEAD,
// else a Go pseudo-version v0.0.0-yyyymmddhhmmss-commit; "-dirty" marks a checkout with
// uncommitted changes.
func stamp(ctx context.Context, src, version, commit, date string) (release.Stamp, error) {
	var s release.Stamp
	git := func(args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, "git", args...)
		cmd.Dir = src
		b, err := cmd.Output()
		if err != nil {
			return "", fmt.Errorf("failed to run git %s (give -version, -commit and -date to build without git): %w", strings.Join(args, " "), err)
		}
		return strings.TrimSpace(string(b)), nil
	}
	var err error
	if commit == "" {
		if commit, err = git("rev-parse", "HEAD"); err != nil {
			return s, err
		}
	}
	s.Commit = commit
	switch {
	case date != "":
		if s.Date, err = time.Parse(time.RFC3339, date); err != nil {
			return s, fmt.Errorf("failed to read -date: %w", err)
		}
	case os.Getenv("SOURCE_DATE_EPOCH") != "":
		sec, err := strconv.ParseInt(os.Getenv("SOURCE_DATE_EPOCH"), 10, 64)
		if err != nil {
			return s, fmt.Errorf("failed to read SOURCE_DATE_EPOCH: %w", err)
		}
		s.Date = time.Unix(sec, 0)
	default:
		ct, err := git("log", "-1", "--format=%ct", commit)
		if err != nil {
			return s, err
		}
		sec, err := strconv.ParseInt(ct, 10, 64)
		if err != nil {
			return s, fmt.Errorf("failed to read the commit date %q: %w", ct, err)
		}
		s.Date = time.Unix(sec, 0)
	}
	s.Date = s.Date.UTC()
	if version == "" {
		tag, err := git("tag", "--points-at", commit, "--list", "v[0-9]*", "--sort=-v:refname")
		if err != nil {
			return s, err
		}
		if first, _, _ := strings.Cut(tag, "\n"); first != "" {
			version = first
		} else {
			short := commit
			if len(short) > 12 {
				short = short[:12]
			}
			version = "v0.0.0-" + s.Date.Format("20060102150405") + "-" + short
		}
		dirty, err := git("status", "--porcelain", "--untracked-files=no")
		if err != nil {
			return s, err
		}
		if dirty != "" {
			version += "-dirty"
		}
	}
	s.Version = version
	return s, nil
}
