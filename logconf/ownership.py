"""Whose a log directory is: each user's default directory, and what counts as another user's.

On a machine shared by several users, a log directory or rank file that someone else controls
lets them read every record (secrets that redaction misses included) and write forged lines into
the run's logs. So each user gets a default directory of their own, ``/tmp/logconf-<user name>``
(the same path on every node for that user, which ``logconf gather`` relies on), and a directory
or file counts as another user's when

- it is owned by a user other than this process's and root, or
- every user may write it: a regular file writable by others, or a directory writable by others
  without the sticky bit (anyone could rename our files away and put their own in place).

Root counts as no other user: it can read and write every file anyway, so refusing what root
owns would protect nothing, and would refuse ``/tmp`` itself and the directories administrators
make for their users. A directory that a group shares on purpose (``LOGCONF_DIR_MODE=0770``) is
the owner's choice and passes. ``LOGCONF_SHARED_DIR=1`` accepts another user's directory or file
too, for a team that shares one on purpose.
"""

from __future__ import annotations

import functools
import os
import stat

__all__ = ["DEFAULT_DIR", "DIR_TEMPLATE", "SHARED_ENV", "default_dir", "describe", "foreign", "user_name"]

SHARED_ENV = "LOGCONF_SHARED_DIR"
DEFAULT_DIR = "/tmp/logconf-{user}"  # {user}: a template field (logconf.templating)
DIR_TEMPLATE = "${LOGCONF_DIR:-" + DEFAULT_DIR + "}"  # what the shipped configs name


@functools.lru_cache(maxsize=8)
def _name_of(uid: int) -> str:
    try:
        import pwd  # here: `import logconf` stays light

        name = pwd.getpwuid(uid).pw_name
    except (ImportError, KeyError, OSError):
        return str(uid)  # a uid without a passwd entry (a container run with `-u 1234`)
    if not name or "/" in name or ".." in name or not name.isprintable() or " " in name:
        return str(uid)  # a name that cannot stand in a path as it is
    return name


def user_name() -> str:
    """Return this process's user name as paths use it: its passwd name, else its uid in digits."""
    return _name_of(os.geteuid())


def default_dir() -> str:
    """Return this user's default log directory, ``/tmp/logconf-<user name>``."""
    return DEFAULT_DIR.format(user=user_name())


def foreign(info: os.stat_result) -> str | None:
    """Say how another user controls the file or directory that ``info`` describes; None if no one does."""
    if info.st_uid not in (os.geteuid(), 0):
        return "is a symbolic link that another user owns" if stat.S_ISLNK(info.st_mode) else "is owned by another user"
    if info.st_mode & stat.S_IWOTH:  # a link's own mode means nothing; a device's (/dev/full, 0666) is root's choice
        if stat.S_ISREG(info.st_mode):
            return "is writable by every user"
        if stat.S_ISDIR(info.st_mode) and not info.st_mode & stat.S_ISVTX:
            return "is writable by every user, without the sticky bit"
    return None


def describe(info: os.stat_result) -> str:
    """Name the owner and mode that ``info`` describes: ``owner nobody (uid 65534), mode 0777``."""
    return f"owner {_name_of(info.st_uid)} (uid {info.st_uid}), mode {stat.S_IMODE(info.st_mode):04o}"
