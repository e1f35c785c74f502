"""Two real users on one machine: ``python two_users.py REPO``, as root under ``unshare --mount`` (tests/test_shared_machine.py).

It first gives this mount namespace a fresh ``/tmp`` (the host's is never touched) and makes the
checkout and the interpreter reachable by every user: a directory on their way that others may
not enter (``/root``, where pyenv puts its Pythons; a private temporary directory) is covered, in
this namespace only, by a tmpfs that holds just the way through. Then root applies the shipped
config first, ``nobody`` (through ``setpriv``) second, a uid with no name third, and each tries
the others' directories. It prints one JSON line of what each saw; the test judges it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

NOBODY = 65534
NAMELESS = 54321  # a uid with no passwd entry, as a container run with `-u 54321` has

USER_CODE = textwrap.dedent(
    """
    import json, logging, os, sys
    import logconf
    from logconf import ConfigError

    def records(path):
        return [line.split(": ", 1)[1] for line in open(path).read().splitlines()]

    def attempt(directory, shared="0", message="shared on purpose"):
        os.environ["LOGCONF_DIR"], os.environ["LOGCONF_SHARED_DIR"] = directory, shared
        try:
            logconf.apply()
        except ConfigError as exc:
            return f"{exc.value}: {exc.problem.split(': that user')[0]}"
        logging.getLogger("skyrl_train.x").info(message)
        return records(os.path.join(directory, "skyrl_rank_0.log"))

    def own_default(message):
        logconf.apply()
        logging.getLogger("skyrl_train.x").info(message)
        from logconf import ownership
        directory = ownership.default_dir()
        info = os.stat(directory)
        return {"dir": directory, "owner": info.st_uid, "mode": oct(info.st_mode & 0o7777),
                "records": records(os.path.join(directory, "skyrl_rank_0.log"))}
    """
)


def reachable(paths: list[str]) -> None:
    """Give this namespace a fresh /tmp, and make every directory on the way to ``paths`` enterable by all."""
    keep: dict[str, set[str]] = {"/tmp": set()}
    for path in paths:
        parts = path.strip("/").split("/")
        for depth in range(len(parts)):
            directory = "/" + "/".join(parts[:depth])
            if directory == "/tmp" or not os.stat(directory).st_mode & 0o001:
                keep.setdefault(directory, set()).add(parts[depth])
    for directory in sorted(keep, key=len):  # outer first: an inner one is reached through the outer's tmpfs
        original = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        mode = "1777" if directory == "/tmp" else "0755"
        _run("mount", "-t", "tmpfs", "-o", f"mode={mode}", "tmpfs", directory)
        for name in sorted(keep[directory]):
            source = f"/proc/{os.getpid()}/fd/{original}/{name}"
            target = os.path.join(directory, name)
            if os.path.isdir(source):
                os.mkdir(target)
            else:
                open(target, "w").close()
            _run("mount", "--no-canonicalize", "--bind", source, target)  # the magic link, not its name
        os.close(original)


def _run(*command: str) -> None:
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed: {done.stderr.strip()}")


def as_user(uid: int, code: str, env: dict[str, str]) -> object:
    """Run ``USER_CODE`` + ``code`` as ``uid`` (setpriv); return what it prints as JSON."""
    done = subprocess.run(
        ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", sys.executable, "-c", USER_CODE + code],
        env={**env, "XDG_CACHE_HOME": f"/tmp/cache-{uid}", "HOME": "/nonexistent"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd="/",
    )
    if done.returncode != 0:
        raise SystemExit(f"as uid {uid}: exit {done.returncode}: {done.stderr.strip()}")
    return json.loads(done.stdout)


def main(repo: str) -> int:
    python = os.path.realpath(sys.executable)
    needed = [os.path.realpath(repo), os.path.realpath(sys.prefix), os.path.dirname(os.path.dirname(python))]
    reachable(needed)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOGCONF_", "VLLM_", "RANK"))}
    env["PYTHONPATH"] = os.path.realpath(repo)
    probe = "import logconf, yaml; print(json.dumps(logconf.__file__))"
    try:
        where = as_user(NOBODY, probe, env)
    except SystemExit as exc:
        raise SystemExit(f"user nobody cannot run this checkout's logconf with {sys.executable}: {exc}") from None
    if where != os.path.join(os.path.realpath(repo), "logconf", "__init__.py"):
        raise SystemExit(f"user nobody imports another logconf: {where}")

    seen: dict[str, object] = {}
    namespace: dict[str, object] = {}
    os.environ.update(XDG_CACHE_HOME="/tmp/cache-0", PYTHONPATH=env["PYTHONPATH"])
    exec(USER_CODE, namespace)  # root's part runs here, in this process
    seen["root default"] = namespace["own_default"]("root's own")  # type: ignore[operator]
    os.mkdir("/tmp/root-open")
    os.chmod("/tmp/root-open", 0o777)  # every user may write it, and there is no sticky bit
    os.mkdir("/tmp/root-sticky")
    os.chmod("/tmp/root-sticky", 0o1777)  # as /tmp: every user may add files, none may replace another's
    os.mkdir("/tmp/root-sticky-too")
    os.chmod("/tmp/root-sticky-too", 0o1777)

    seen.update(
        as_user(  # type: ignore[arg-type]
            NOBODY,
            """
seen = {"nobody default": own_default("nobody's own")}
seen["nobody in root's world-writable dir without sticky bit"] = attempt("/tmp/root-open")
seen["nobody, shared, in root's dir"] = attempt("/tmp/root-open", "1")
seen["nobody in root's sticky dir"] = attempt("/tmp/root-sticky-too", message="root's and sticky, as /tmp")
os.mkdir("/tmp/nobody-open")
os.chmod("/tmp/nobody-open", 0o777)
planted = "/tmp/root-sticky/skyrl_rank_0.log"
open(planted, "w").close()
os.chmod(planted, 0o666)
print(json.dumps(seen))
""",
            env,
        )
    )
    seen.update(as_user(NAMELESS, 'print(json.dumps({"nameless default": own_default("no name")}))', env))  # type: ignore[arg-type]
    attempt = namespace["attempt"]
    seen["root in nobody's world-writable dir"] = attempt("/tmp/nobody-open")  # type: ignore[operator]
    seen["root onto nobody's planted 0666 file"] = attempt("/tmp/root-sticky")  # type: ignore[operator]
    seen["root, shared, in nobody's dir"] = attempt("/tmp/nobody-open", "1")  # type: ignore[operator]
    seen["root, shared, onto nobody's file"] = attempt("/tmp/root-sticky", "1")  # type: ignore[operator]
    print(json.dumps(seen))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
