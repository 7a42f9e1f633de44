//go:build linux

package faulttest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// ext4Disk is a small ext4 filesystem in a file, loop-mounted with
// errors=remount-ro: the kernel turns it read-only under its users when
// it meets an error, as a failing disk does. (A plain `mount -o
// remount,ro` is refused while a file on it is open for writing.)
type ext4Disk struct {
	t   *testing.T
	img string
	dir string
}

// mountExt4 makes and mounts an ext4Disk of 16 MiB.
func mountExt4(t *testing.T) *ext4Disk {
	t.Helper()
	for _, bin := range []string{"mkfs.ext4", "e2fsck", "mount"} {
		if _, err := exec.LookPath(bin); err != nil {
			cannotMount(t, bin+" is not installed (Debian: e2fsprogs, mount)")
		}
	}
	d := &ext4Disk{t: t, img: filepath.Join(t.TempDir(), "disk.img"), dir: t.TempDir()}
	if err := os.WriteFile(d.img, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(d.img, 16<<20); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", d.img).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v %s", err, out)
	}
	d.mount()
	t.Cleanup(func() { exec.Command("umount", d.dir).Run() })
	return d
}

// mount mounts the image read-write.
func (d *ext4Disk) mount() {
	d.t.Helper()
	if out, err := exec.Command("mount", "-o", "loop,errors=remount-ro", d.img, d.dir).CombinedOutput(); err != nil {
		cannotMount(d.t, "cannot loop-mount an ext4 image (needs root and loop devices): "+strings.TrimSpace(string(out)))
	}
}

// device returns the loop device's name, such as "loop0".
func (d *ext4Disk) device() string {
	d.t.Helper()
	out, err := exec.Command("findmnt", "-n", "-o", "SOURCE", d.dir).Output()
	if err != nil {
		d.t.Fatalf("findmnt %s: %v", d.dir, err)
	}
	return filepath.Base(strings.TrimSpace(string(out)))
}

// options returns the mount's options, such as "rw,relatime".
func (d *ext4Disk) options() string {
	out, _ := exec.Command("findmnt", "-n", "-o", "OPTIONS", d.dir).Output()
	return strings.TrimSpace(string(out))
}

// fail makes ext4 meet an error (its trigger_fs_error knob), so that the
// kernel remounts it read-only with the files still open.
func (d *ext4Disk) fail() {
	d.t.Helper()
	knob := filepath.Join("/sys/fs/ext4", d.device(), "trigger_fs_error")
	if err := os.WriteFile(knob, []byte("1"), 0o200); err != nil {
		cannotMount(d.t, "cannot make ext4 fail through "+knob+": "+err.Error())
	}
	deadline := time.Now().Add(5 * time.Second)
	for o := d.options(); !strings.HasPrefix(o, "ro") && !strings.Contains(o, "emergency_ro"); o = d.options() {
		if time.Now().After(deadline) {
			d.t.Fatalf("the ext4 disk is still %q after its error", d.options())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// repair unmounts the disk, checks it with e2fsck (as an operator would
// before making it writable again) and mounts it read-only, as an
// operator does to look before making it writable. Nothing may hold a
// file on it.
func (d *ext4Disk) repair() {
	d.t.Helper()
	if out, err := exec.Command("umount", d.dir).CombinedOutput(); err != nil {
		d.t.Fatalf("umount %s: %v %s", d.dir, err, out)
	}
	// e2fsck exits 1 when it corrected errors (the one the test triggered).
	if out, err := exec.Command("e2fsck", "-fy", d.img).CombinedOutput(); err != nil {
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() > 1 {
			d.t.Fatalf("e2fsck: %v %s", err, out)
		}
	}
	d.mount() // mounting "ro" would make the loop device itself read-only
	if out, err := exec.Command("mount", "-o", "remount,ro", d.dir).CombinedOutput(); err != nil {
		d.t.Fatalf("remount %s read-only: %v %s", d.dir, err, out)
	}
}

// writable remounts the disk read-write under its users.
func (d *ext4Disk) writable() {
	d.t.Helper()
	if out, err := exec.Command("mount", "-o", "remount,rw", d.dir).CombinedOutput(); err != nil {
		d.t.Fatalf("remount %s read-write: %v %s", d.dir, err, out)
	}
}

// TestReadOnlyDisk runs serve on a usage file on a disk that the kernel
// turns read-only under it: writes answer 503 with a sentence naming the
// read-only disk and store nothing; reads keep working; serve stops
// without losing anything, and starts on the still read-only disk serving
// every acknowledged event. Once the disk is repaired and mounted
// read-write again under a running serve, logging resumes without a
// restart. (Linux makes a disk that failed writable again only after an
// unmount, which needs its files closed: that is the one restart.)
func TestReadOnlyDisk(t *testing.T) {
	disk := mountExt4(t)
	env := map[string]string{"TOKENLEDGER_FILE": filepath.Join(disk.dir, "token_usage.json")}
	srv := startServe(t, "rodisk", env)
	b := newBatchSender(t, srv.url, "rodisk")
	b.sendOK(20, "before the disk turned read-only")
	disk.fail()
	b.refused("read-only")
	b.acked.check(t, read(t, srv.url, 3))
	srv.stop(t)

	srv = startServe(t, "rodisk-failed", env)
	b.url = srv.url
	b.acked.check(t, read(t, srv.url, 3))
	b.refused("read-only")
	srv.stop(t)

	disk.repair()
	srv = startServe(t, "rodisk-repaired", env)
	b.url = srv.url
	b.acked.check(t, read(t, srv.url, 3))
	b.refused("read-only")
	disk.writable()
	b.resumes("after the disk was mounted read-write again")
	b.acked.check(t, read(t, srv.url, 3))
	srv.stop(t)

	srv = startServe(t, "rodisk-again", env)
	b.acked.check(t, read(t, srv.url, 3))
	if strings.Contains(srv.log(), "corrupt") {
		t.Errorf("the restart found a corrupt file:\n%s", srv.log())
	}
}
