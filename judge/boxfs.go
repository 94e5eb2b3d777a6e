package judge

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// boxFS is the file system a run's box gets: a fresh tmpfs of Limits.Disk bytes and
// Limits.Files inodes, mounted by the host on the box's directory for the run and
// detached after it. So a program can neither fill the host's disk nor leave anything
// behind: whatever it wrote, however deep, many, unreadable or strange its files, goes
// with one unmount, in bounded time and without a walk. The directory under the mount
// stays empty.
type boxFS struct {
	dir string
}

// maxStacked bounds how many mounts detach peels off one box directory: tmpfs mounts a
// crashed run left, stacked.
const maxStacked = 16

// mountBox detaches whatever a crashed run left mounted on box's directory and mounts a
// fresh tmpfs there, owned by the box's uid, mode 0700.
func mountBox(box Box, lim Limits) (*boxFS, error) {
	fs := &boxFS{dir: box.Dir}
	if err := fs.detach(); err != nil {
		return nil, err
	}
	opts := fmt.Sprintf("size=%d,nr_inodes=%d,mode=0700,uid=%d,gid=%d", lim.Disk, lim.Files, box.UID, box.UID)
	if err := unix.Mount("bulb-box", box.Dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, opts); err != nil {
		return nil, fmt.Errorf("mount the box's tmpfs on %s: %w", box.Dir, err)
	}
	return fs, nil
}

// detach lazily unmounts every mount on the directory (MNT_DETACH: the kernel frees a
// tmpfs's files once nothing uses them).
func (fs *boxFS) detach() error {
	for range maxStacked {
		err := unix.Unmount(fs.dir, unix.MNT_DETACH)
		switch {
		case errors.Is(err, unix.EINVAL), errors.Is(err, os.ErrNotExist):
			return nil // not a mount point (any more)
		case err != nil:
			return fmt.Errorf("detach the box's tmpfs from %s: %w", fs.dir, err)
		}
	}
	return fmt.Errorf("more than %d mounts stacked on %s", maxStacked, fs.dir)
}

// full reports whether the box's file system has no byte or no inode left: a program
// that fills it has gone over its disk limit.
func (fs *boxFS) full() bool {
	var st unix.Statfs_t
	if err := unix.Statfs(fs.dir, &st); err != nil {
		return false
	}
	return st.Bavail == 0 || st.Ffree == 0
}

// emptyDir makes sure the directory under the mounts is empty: it is, unless an older
// Bulb wrote there. What it finds is moved aside (an instant rename, never a walk: it may
// hold a tree a program built to break the host's cleanup) and the directory made anew.
func emptyDir(box Box) error {
	f, err := os.Open(box.Dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	names, err := f.Readdirnames(1)
	f.Close()
	if errors.Is(err, io.EOF) || (err == nil && len(names) == 0) {
		return nil
	}
	aside := fmt.Sprintf("%s.left-%d", box.Dir, time.Now().UnixNano())
	if err := os.Rename(box.Dir, aside); err != nil {
		return fmt.Errorf("move the old contents of box %d aside: %w", box.ID, err)
	}
	if _, err := NewBox(filepath.Dir(box.Dir), box.ID); err != nil {
		return err
	}
	return fmt.Errorf("%w: box %d had files under its mount; moved to %s", errMovedAside, box.ID, aside)
}

// errMovedAside says emptyDir found and moved files: worth a warning, not a failure.
var errMovedAside = errors.New("judge: moved aside")

// collectFiles reads back the named files of box, those the program made, up to limit
// bytes each; nil if none.
func collectFiles(box Box, names []string, limit int64) map[string][]byte {
	var files map[string][]byte
	for _, name := range names {
		data, err := readBoxFile(box, name, limit)
		if err != nil {
			continue // the program did not make it: the caller decides what that means
		}
		if files == nil {
			files = map[string][]byte{}
		}
		files[name] = data
	}
	return files
}

// validName reports whether name is a plain file name (no path).
func validName(name string) bool {
	return name != "" && name != "." && name != ".." && !strings.ContainsRune(name, '/')
}

// writeBoxFile creates file name in the (empty) box, owned by the box uid.
func writeBoxFile(box Box, name string, data []byte) error {
	if !validName(name) {
		return fmt.Errorf("%w: file name %q", ErrBadSpec, name)
	}
	f, err := os.OpenFile(filepath.Join(box.Dir, name), os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o755)
	if err != nil {
		return fmt.Errorf("judge: write box file: %w", err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Chown(box.UID, box.UID)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("judge: write box file: %w", err)
	}
	return nil
}

// readBoxFile reads regular file name from the box, refusing symlinks (the program could
// point one at a host file) and files over limit bytes.
func readBoxFile(box Box, name string, limit int64) ([]byte, error) {
	if !validName(name) {
		return nil, fmt.Errorf("%w: file name %q", ErrBadSpec, name)
	}
	f, err := os.OpenFile(filepath.Join(box.Dir, name), os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", name)
	}
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes", name, limit)
	}
	return data, nil
}
