"""Drive a page in Debian's headless Chromium and read back the DOM its script built.

``make test`` installs ``chromium-headless-shell`` (``make browser``); without it the tests fail
and name the package. Clicks go through the page's own test hook (a ``#test=click:<id>`` fragment
that its script reads), so one ``--dump-dom`` run loads the page, clicks, and prints the result.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import pytest

BROWSERS = ("chromium-headless-shell", "chromium")
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
# A budget of virtual time lets the page's script finish before the dump; headless Chromium as root needs --no-sandbox.
FLAGS = ("--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--virtual-time-budget=10000")


def browser() -> str:
    """The headless browser's path; fail, naming the package, where there is none."""
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    pytest.fail(
        "no headless Chromium: install Debian's chromium-headless-shell "
        "(`make browser`, which `make test` runs, or apt-get install chromium-headless-shell)"
    )


def _run(page: Path, fragment: str, *flags: str) -> subprocess.CompletedProcess[str]:
    url = page.resolve().as_uri() + (f"#{fragment}" if fragment else "")
    command = [browser(), *FLAGS, *flags, url]
    if Path(command[0]).name == "chromium":
        command.insert(1, "--headless")
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    errors = [line for line in done.stderr.splitlines() if "Uncaught" in line or ":ERROR:CONSOLE" in line]
    assert not errors, "the page's script failed:\n" + "\n".join(errors)
    return done


def dom(page: Path, fragment: str = "") -> Node:
    """Load ``page`` (with ``#fragment``), let its script run, and return the DOM it built."""
    return parse(_run(page, fragment, "--dump-dom").stdout)


def screenshot(page: Path, out: Path, width: int = 1400, height: int = 900, fragment: str = "") -> tuple[int, int]:
    """Save a PNG of ``page`` as a ``width`` x ``height`` window shows it; return the PNG's size."""
    _run(page, fragment, f"--screenshot={out.resolve()}", f"--window-size={width},{height}")
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{out} is not a PNG"
    return struct.unpack(">II", data[16:24])  # IHDR: width, height


@dataclass
class Node:
    """One element of the dumped DOM: tag, attributes, children, and text pieces in order."""

    tag: str
    attrs: dict[str, str]
    children: list[Node] = field(default_factory=list)
    parts: list[str | Node] = field(default_factory=list)

    @property
    def id(self) -> str | None:
        return self.attrs.get("id")

    @property
    def classes(self) -> set[str]:
        return set(self.attrs.get("class", "").split())

    def text(self) -> str:
        return "".join(p if isinstance(p, str) else p.text() for p in self.parts)

    def walk(self):
        yield self
        for child in self.children:
            yield from child.walk()

    def find(self, id: str) -> Node:
        found = [n for n in self.walk() if n.id == id]
        assert len(found) == 1, f"{len(found)} elements with id {id!r}"
        return found[0]

    def select(self, tag: str | None = None, cls: str | None = None, **attrs: str) -> list[Node]:
        """Elements with this tag, this class among theirs, and these attributes (``data_lane`` for ``data-lane``)."""
        wanted = {k.replace("_", "-"): v for k, v in attrs.items()}
        return [
            n
            for n in self.walk()
            if (tag is None or n.tag == tag)
            and (cls is None or set(cls.split()) <= n.classes)
            and all(n.attrs.get(k) == v for k, v in wanted.items())
        ]


class _Builder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", {})
        self.stack = [self.root]

    def handle_starttag(self, tag, attrs):
        node = Node(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(node)
        self.stack[-1].parts.append(node)
        if tag not in VOID:
            self.stack.append(node)

    def handle_endtag(self, tag):
        for depth in range(len(self.stack) - 1, 0, -1):
            if self.stack[depth].tag == tag:
                del self.stack[depth:]
                return

    def handle_data(self, data):
        self.stack[-1].parts.append(data)


def parse(text: str) -> Node:
    builder = _Builder()
    builder.feed(text)
    builder.close()
    return builder.root
