"""Network filesystems for the tests: a mount table that names one, and a real loopback SSHFS mount.

``fake_mount_table`` writes a mount table in /proc/self/mountinfo's format in which the
filesystem holding a directory has the given type; ``LOGCONF_MOUNTINFO`` points logconf at it.
``sshfs_mount`` mounts a directory over SFTP from an sshd on 127.0.0.1 (root, ``sshfs`` and
``openssh-server`` needed: see ``SSHFS_SETUP``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

SSHFS_SETUP = "apt-get install -y sshfs openssh-server (as root; /dev/fuse must exist)"


def fake_mount_table(path: Path, directory: Path, fstype: str) -> Path:
    """Write a mount table in which ``directory``'s filesystem (its device) has type ``fstype``."""
    device = os.stat(directory).st_dev
    path.write_text(
        f"1 0 254:77 / / rw,relatime - ext4 /dev/root rw\n"
        f"2 1 {os.major(device)}:{os.minor(device)} / {directory} rw,relatime - {fstype} server:/export rw\n",
        encoding="utf-8",
    )
    return path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def missing_sshfs() -> str | None:
    """Say what is missing for a real SSHFS mount here, or None."""
    if os.geteuid() != 0:
        return "not root"
    if not os.path.exists("/dev/fuse"):
        return "/dev/fuse is missing"
    for tool in ("sshfs", "/usr/sbin/sshd", "ssh-keygen"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    return None


@contextlib.contextmanager
def sshfs_server(base: Path) -> Iterator[tuple[int, Path]]:
    """Run an sshd on 127.0.0.1 that serves SFTP to one key; yield its port and the key."""
    keys = base / "keys"
    keys.mkdir()
    for name in ("host", "user"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(keys / name)], check=True)
    (keys / "authorized").write_text((keys / "user.pub").read_text())
    os.makedirs("/run/sshd", exist_ok=True)  # sshd's privilege-separation directory
    port = _free_port()
    config = keys / "sshd_config"
    config.write_text(
        f"ListenAddress 127.0.0.1\nPort {port}\nHostKey {keys / 'host'}\nAuthorizedKeysFile {keys / 'authorized'}\n"
        "PasswordAuthentication no\nPermitRootLogin prohibit-password\nStrictModes no\nUsePAM no\n"
        f"PidFile {keys / 'sshd.pid'}\nSubsystem sftp internal-sftp\n"
    )
    server = subprocess.Popen(["/usr/sbin/sshd", "-D", "-f", str(config), "-E", str(keys / "sshd.log")])
    try:
        for _ in range(100):  # until it listens
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                break
            time.sleep(0.05)
        yield port, keys / "user"
    finally:
        server.terminate()
        server.wait(10)


@contextlib.contextmanager
def sshfs_mount(export: Path, mountpoint: Path, port: int, key: Path) -> Iterator[Path]:
    """Mount ``export`` at ``mountpoint`` through SFTP on 127.0.0.1: one more client of the same files."""
    mountpoint.mkdir()
    # dir_cache=no: sshfs otherwise serves a file's size from a 20 s cache, so a client would not
    # see what the other client appended; NFS revalidates at open (close-to-open), which this mimics.
    options = f"IdentityFile={key},StrictHostKeyChecking=no,UserKnownHostsFile=/dev/null,port={port},dir_cache=no"
    subprocess.run(["sshfs", "-o", options, f"root@127.0.0.1:{export}", str(mountpoint)], check=True)
    try:
        yield mountpoint
    finally:
        unmount = shutil.which("fusermount3") or shutil.which("fusermount") or "umount"
        subprocess.run([unmount, "-u", str(mountpoint)] if "fusermount" in unmount else [unmount, str(mountpoint)], check=False)
