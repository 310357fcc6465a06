"""A private Xvfb X server for tests that open real windows, and ways to drive it.

OpenCV's Qt GUI connects to one X display per process and ends the process when that
server goes away, so window code under test runs in a child Python (:func:`run_in_display`)
while the test process only starts the server, takes screenshots and reads the results.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

XVFB = shutil.which("Xvfb")
XDOTOOL = shutil.which("xdotool")
REPO_ROOT = Path(__file__).resolve().parent.parent


class XvfbServer:
    """``Xvfb`` on a display number it picks itself (``-displayfd``); a context manager.

    ``display`` (``":N"``) is set once the server accepts connections.
    """

    def __init__(self, screen: str = "1600x900x24", timeout_s: float = 10.0) -> None:
        self.screen = screen
        self.timeout_s = timeout_s
        self.display = ""
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> XvfbServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        if XVFB is None:
            raise RuntimeError("Xvfb is not installed")
        read_fd, write_fd = os.pipe()
        try:
            self._process = subprocess.Popen(
                [XVFB, "-displayfd", str(write_fd), "-screen", "0", self.screen,
                 "-nolisten", "tcp", "-noreset"],
                pass_fds=(write_fd,),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )  # fmt: skip
            os.close(write_fd)
            write_fd = -1
            number = self._read_display_number(read_fd)
        except BaseException:
            self.stop()
            raise
        finally:
            os.close(read_fd)
            if write_fd >= 0:
                os.close(write_fd)
        self.display = f":{number}"

    def _read_display_number(self, read_fd: int) -> int:
        """Xvfb writes ``N\\n`` to the pipe when it is ready to accept clients."""
        text = b""
        while not text.endswith(b"\n"):
            ready, _, _ = select.select([read_fd], [], [], self.timeout_s)
            chunk = os.read(read_fd, 16) if ready else b""
            if not chunk:
                raise RuntimeError(f"Xvfb did not start within {self.timeout_s} s")
            text += chunk
        return int(text)

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def run_in_display(
    display: str, module: str, function: str, *args: Any, timeout_s: float = 60.0
) -> Any:
    """Call ``module.function(*args)`` (e.g. ``tests.test_x``) in a fresh Python on ``display``.

    Arguments and the return value travel as JSON. Raises ``AssertionError`` with the child's
    output when it fails, so a crash inside Qt shows up as a failed test, not a dead pytest.
    """
    with tempfile.TemporaryDirectory() as folder:
        result_path = Path(folder) / "result.json"
        code = (
            "import importlib, json, sys\n"
            "sys.path.insert(0, sys.argv[1])\n"
            "func = getattr(importlib.import_module(sys.argv[2]), sys.argv[3])\n"
            "result = func(*json.loads(sys.argv[4]))\n"
            "open(sys.argv[5], 'w').write(json.dumps(result))\n"
        )
        env = {**os.environ, "DISPLAY": display}
        argv = [sys.executable, "-c", code, str(REPO_ROOT), module, function]
        done = subprocess.run(
            [*argv, json.dumps(args), str(result_path)],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )
        if done.returncode != 0 or not result_path.exists():
            raise AssertionError(
                f"{module}.{function} failed with status {done.returncode}:\n"
                f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
            )
        return json.loads(result_path.read_text())


def find_window(display: str, title: str) -> int:
    """The id of the top-level window named exactly ``title`` (no window manager assumed)."""
    with _XConnection(display) as x:
        net_wm_name = x.intern_atom(b"_NET_WM_NAME")
        for window in x.query_tree(x.root):
            for name_atom in (net_wm_name, _WM_NAME):
                if x.get_property(window, name_atom) == title.encode():
                    return window
    raise LookupError(f"no window named {title!r} on {display}")


def press_key(display: str, window: int, key: str) -> None:
    """Focus ``window`` and type ``key`` (an X keysym name such as ``m`` or ``Escape``)."""
    subprocess.run(
        [XDOTOOL or "xdotool", "windowfocus", "--sync", str(window), "key", key],
        env={**os.environ, "DISPLAY": display},
        timeout=10,
        check=True,
    )


def request_close(display: str, window: int) -> None:
    """Ask ``window`` to close the way a window manager does when the user clicks ×.

    Sends the ICCCM ``WM_PROTOCOLS``/``WM_DELETE_WINDOW`` client message.
    """
    with _XConnection(display) as x:
        protocols = x.intern_atom(b"WM_PROTOCOLS")
        delete = x.intern_atom(b"WM_DELETE_WINDOW")
        event = struct.pack("<BBHII5I", 33, 32, 0, window, protocols, delete, 0, 0, 0, 0)
        x.send(struct.pack("<BBHII", 25, 0, 11, window, 0) + event)  # SendEvent
        x.sync()


def remap_window(display: str, window: int) -> None:
    """Unmap and map ``window`` again, so that its toolkit gets fresh Map and Expose events.

    Without a window manager, Qt on Xvfb now and then misses the first map of a new window
    and never draws it (about one window in five here); mapping it again fixes that.
    """
    with _XConnection(display) as x:
        x.send(struct.pack("<BxHI", 10, 2, window))  # UnmapWindow
        x.send(struct.pack("<BxHI", 8, 2, window))  # MapWindow
        x.sync()


_WM_NAME = 39  # a predefined atom


class _XConnection:
    """A bare X11 client connection (no xlib needed) to a local display, no auth."""

    def __init__(self, display: str) -> None:
        number = display.rpartition(":")[2].partition(".")[0]
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(5)
        try:
            self.sock.connect(f"/tmp/.X11-unix/X{number}")
            self.sock.sendall(struct.pack("<cxHHHHxx", b"l", 11, 0, 0, 0))
            status, _, _, _, extra_words = struct.unpack("<BBHHH", self.recv(8))
            setup = self.recv(4 * extra_words)
            if status != 1:
                raise RuntimeError(f"X server {display} refused the connection")
        except BaseException:
            self.sock.close()
            raise
        self.id_base = struct.unpack_from("<I", setup, 4)[0]
        vendor_len, n_formats = struct.unpack_from("<H", setup, 16)[0], setup[21]
        screens_at = 32 + vendor_len + (-vendor_len % 4) + 8 * n_formats
        self.root = struct.unpack_from("<I", setup, screens_at)[0]

    def __enter__(self) -> _XConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()

    def send(self, request: bytes) -> None:
        self.sock.sendall(request)

    def recv(self, size: int) -> bytes:
        data = b""
        while len(data) < size:
            chunk = self.sock.recv(size - len(data))
            if not chunk:
                raise RuntimeError("the X server closed the connection")
            data += chunk
        return data

    def reply(self, what: str) -> bytes:
        answer = self.recv(32)
        if answer[0] != 1:
            raise RuntimeError(f"X error {answer[1]} in {what}")
        return answer

    def sync(self) -> None:
        """A round trip (GetInputFocus): every request sent so far has been handled."""
        self.send(struct.pack("<BxH", 43, 1))
        self.reply("a request before GetInputFocus")

    def query_tree(self, window: int) -> list[int]:
        """The children of ``window``, bottom to top."""
        self.send(struct.pack("<BxHI", 15, 2, window))
        head = self.reply("QueryTree")
        extra_words, count = (
            struct.unpack_from("<I", head, 4)[0],
            struct.unpack_from("<H", head, 16)[0],
        )
        body = self.recv(4 * extra_words)
        return list(struct.unpack_from(f"<{count}I", body))

    def get_property(self, window: int, atom: int) -> bytes:
        """The first 256 bytes of a property's value (any type), b"" when not set."""
        self.send(struct.pack("<BBHIIIII", 20, 0, 6, window, atom, 0, 0, 64))
        head = self.reply("GetProperty")
        extra_words, value_format = struct.unpack_from("<I", head, 4)[0], head[1]
        count = struct.unpack_from("<I", head, 16)[0]
        body = self.recv(4 * extra_words)
        return body[: count * max(value_format, 8) // 8]

    def intern_atom(self, name: bytes) -> int:
        padded = name + b"\0" * (-len(name) % 4)
        self.send(struct.pack("<BBHHxx", 16, 0, 2 + len(padded) // 4, len(name)) + padded)
        return int(struct.unpack_from("<I", self.reply(f"InternAtom {name!r}"), 8)[0])
