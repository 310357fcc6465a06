"""Video devices on this machine: cameras, loopback (virtual) cameras, and the defaults.

On Linux every V4L2 device is listed from sysfs (``/sys/class/video4linux/videoN``:
its ``name`` and ``index``) and asked, through the V4L2 ioctls ``VIDIOC_QUERYCAP``,
``VIDIOC_ENUM_FMT`` and ``VIDIOC_ENUM_FRAMESIZES``, for its driver, whether it captures
or outputs, and its pixel formats and frame sizes. A v4l2loopback device (driver
``v4l2 loopback``, or a virtual sysfs node) is a virtual camera, not a camera: ``run``
never reads from one by default, and ``--sink virtualcam`` writes to the first.

The hardware edge is :class:`V4L2Device`'s ``ioctl`` function and the sysfs root, both
replaceable (tests use a fake tree and a fake ioctl). Elsewhere (Windows, macOS)
nothing is listed and ``run`` tries camera 0.
"""

from __future__ import annotations

import dataclasses
import errno
import logging
import os
import re
import struct
import sys
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

Ioctl = Callable[[int, int, bytearray], None]
"""``(fd, request, buffer)``: the kernel reads and fills ``buffer`` in place."""


def _iowr(nr: int, size: int, read_only: bool = False) -> int:
    """The Linux ``_IOR('V', nr, size)`` / ``_IOWR('V', nr, size)`` request number."""
    direction = 2 if read_only else 3
    return (direction << 30) | (size << 16) | (ord("V") << 8) | nr


CAPABILITY = struct.Struct("=16s32s32sIII12x")  # struct v4l2_capability, 104 bytes
FMTDESC = struct.Struct("=III32sII12x")  # struct v4l2_fmtdesc, 64 bytes
FRMSIZE = struct.Struct("=III6I8x")  # struct v4l2_frmsizeenum, 44 bytes
VIDIOC_QUERYCAP = _iowr(0, CAPABILITY.size, read_only=True)
VIDIOC_ENUM_FMT = _iowr(2, FMTDESC.size)
VIDIOC_ENUM_FRAMESIZES = _iowr(74, FRMSIZE.size)
BUF_TYPE_VIDEO_CAPTURE = 1
CAP_VIDEO_CAPTURE = 0x1
CAP_VIDEO_OUTPUT = 0x2
CAP_DEVICE_CAPS = 0x80000000
FRMSIZE_DISCRETE = 1
LOOPBACK_DRIVER = "v4l2 loopback"
MAX_SIZES_SHOWN = 6


@dataclasses.dataclass(frozen=True)
class VideoFormat:
    """A pixel format (``fourcc`` such as ``MJPG``, ``YUYV``) and its frame sizes
    (``(width, height)``, largest first; a stepwise range is given by its two ends)."""

    fourcc: str
    sizes: tuple[tuple[int, int], ...]


@dataclasses.dataclass(frozen=True)
class VideoDevice:
    """One ``/dev/videoN``: ``index`` N, ``name`` (the card name), ``driver`` (``""``
    when it could not be asked), ``kind`` (``camera``, ``loopback`` or ``other``: a
    metadata node or an output), ``formats`` (capture formats), ``problem`` (why it
    could not be asked, e.g. busy or no permission; ``""`` otherwise)."""

    index: int
    path: str
    name: str
    driver: str
    kind: str
    formats: tuple[VideoFormat, ...] = ()
    problem: str = ""


class V4L2Device:
    """The three ioctls on one open device node; ``ioctl`` is ``fcntl.ioctl`` by default.

    Use as a context manager: ``open`` happens in ``__enter__`` (non-blocking, read
    only) and ``close`` in ``__exit__``.
    """

    def __init__(self, path: str, ioctl: Ioctl | None = None) -> None:
        self.path = path
        self._ioctl = ioctl or _fcntl_ioctl
        self._fd = -1

    def __enter__(self) -> V4L2Device:
        self._fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def capabilities(self) -> tuple[str, str, int]:
        """``(driver, card, capabilities)`` of this node (its device caps when given)."""
        buffer = bytearray(CAPABILITY.size)
        self._ioctl(self._fd, VIDIOC_QUERYCAP, buffer)
        driver, card, _bus, _version, caps, device_caps = CAPABILITY.unpack(buffer)
        if caps & CAP_DEVICE_CAPS:
            caps = device_caps
        return _text(driver), _text(card), caps

    def formats(self) -> list[VideoFormat]:
        """Every capture pixel format with its frame sizes."""
        found = []
        for index in range(64):
            buffer = bytearray(FMTDESC.pack(index, BUF_TYPE_VIDEO_CAPTURE, 0, b"", 0, 0))
            if not self._ask(VIDIOC_ENUM_FMT, buffer):
                break
            pixelformat = FMTDESC.unpack(buffer)[4]
            found.append(VideoFormat(_fourcc(pixelformat), tuple(self._sizes(pixelformat))))
        return found

    def _sizes(self, pixelformat: int) -> list[tuple[int, int]]:
        sizes: list[tuple[int, int]] = []
        for index in range(256):
            buffer = bytearray(FRMSIZE.pack(index, pixelformat, 0, 0, 0, 0, 0, 0, 0))
            if not self._ask(VIDIOC_ENUM_FRAMESIZES, buffer):
                break
            _, _, kind, *values = FRMSIZE.unpack(buffer)
            if kind == FRMSIZE_DISCRETE:
                sizes.append((values[0], values[1]))
            else:  # stepwise/continuous: min_w, max_w, step_w, min_h, max_h, step_h
                min_w, max_w, _step_w, min_h, max_h, _step_h = values
                sizes.extend([(max_w, max_h), (min_w, min_h)])
                break
        return sorted(set(sizes), key=lambda s: (-s[0] * s[1], -s[0]))

    def _ask(self, request: int, buffer: bytearray) -> bool:
        """One enumeration step; False at the end of the list (EINVAL)."""
        try:
            self._ioctl(self._fd, request, buffer)
        except OSError as exc:
            if exc.errno == errno.EINVAL:
                return False
            raise
        return True


def _fcntl_ioctl(fd: int, request: int, buffer: bytearray) -> None:
    import fcntl

    fcntl.ioctl(fd, request, buffer, True)


def _text(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("utf-8", "replace").strip()


def _fourcc(code: int) -> str:
    return "".join(chr((code >> (8 * i)) & 0xFF) for i in range(4)).strip()


def list_devices(sys_root: Path = Path("/sys"), dev_root: Path = Path("/dev"),
                 ioctl: Ioctl | None = None) -> list[VideoDevice]:
    """Every ``videoN`` in ``sys_root``/class/video4linux, in index order (see the
    module notes); empty where there is no such folder."""
    folder = sys_root / "class" / "video4linux"
    if not folder.is_dir():
        return []
    nodes = []
    for entry in folder.iterdir():
        match = re.fullmatch(r"video(\d+)", entry.name)
        if match:
            nodes.append((int(match.group(1)), entry))
    return [_describe(number, entry, str(dev_root / entry.name), ioctl)
            for number, entry in sorted(nodes)]


def _describe(number: int, node: Path, path: str, ioctl: Ioctl | None) -> VideoDevice:
    name = _read(node / "name") or node.name
    virtual = "/virtual/" in str(node.resolve())
    try:
        with V4L2Device(path, ioctl) as device:
            driver, card, caps = device.capabilities()
            formats = tuple(device.formats()) if caps & CAP_VIDEO_CAPTURE else ()
    except OSError as exc:
        problem = exc.strerror or str(exc)
        kind = "loopback" if virtual else ("camera" if _read(node / "index") in ("", "0")
                                            else "other")
        return VideoDevice(number, path, name, "", kind, problem=problem)
    if driver == LOOPBACK_DRIVER or virtual:
        kind = "loopback"
    elif caps & CAP_VIDEO_CAPTURE:
        kind = "camera"
    else:
        kind = "other"
    return VideoDevice(number, path, card or name, driver, kind, formats)


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def default_camera(devices: list[VideoDevice] | None = None) -> str | None:
    """The ``--source`` that ``run`` reads by default: the first camera that is not a
    loopback device, as its index (``"0"``), or ``None`` when there is none (``run``
    then uses the built-in sample). Off Linux: ``"0"`` (it cannot be listed)."""
    if not sys.platform.startswith("linux"):
        return "0"
    devices = list_devices() if devices is None else devices
    cameras = [d for d in devices if d.kind == "camera"]
    return str(cameras[0].index) if cameras else None


def default_loopback(devices: list[VideoDevice]) -> VideoDevice | None:
    """The loopback device ``--sink virtualcam`` writes to (pyvirtualcam takes the
    first one), or ``None``."""
    loopbacks = [d for d in devices if d.kind == "loopback"]
    return loopbacks[0] if loopbacks else None


def describe_devices(devices: list[VideoDevice], platform: str = sys.platform) -> list[str]:
    """The ``localsr-cam devices`` report, one string per line."""
    if not platform.startswith("linux"):
        return ["listing cameras needs Linux (V4L2); elsewhere `run` tries camera 0 "
                "(--source N picks another) and the virtual camera is OBS's"]
    lines = ["cameras:"]
    cameras = [d for d in devices if d.kind == "camera"]
    lines += [_device_line(d) for d in cameras] or ["  none"]
    lines.append("loopback devices (virtual cameras for --sink virtualcam):")
    loopbacks = [d for d in devices if d.kind == "loopback"]
    lines += [_device_line(d) for d in loopbacks] or [
        "  none; create one with: sudo apt install v4l2loopback-dkms && sudo modprobe "
        "v4l2loopback devices=1 exclusive_caps=1 card_label=localsr"]
    others = [d for d in devices if d.kind == "other"]
    if others:
        lines.append("other video nodes (metadata, outputs): "
                     + ", ".join(d.path for d in others))
    picked = default_camera(devices)
    lines.append(f"`localsr-cam run` reads: camera {picked} ({cameras[0].path})" if picked
                 else "`localsr-cam run` reads: the built-in sample (no camera found)")
    loopback = default_loopback(devices)
    lines.append(f"`--sink virtualcam` writes to: {loopback.path}" if loopback
                 else "`--sink virtualcam` has no device to write to")
    return lines


def _device_line(device: VideoDevice) -> str:
    head = f"  {device.index:<3} {device.path:<13} {device.name}"
    if device.driver:
        head += f" ({device.driver})"
    if device.problem:
        return f"{head}: cannot ask it ({device.problem})"
    formats = []
    for fmt in device.formats:
        sizes = " ".join(f"{w}x{h}" for w, h in fmt.sizes[:MAX_SIZES_SHOWN])
        more = f" +{len(fmt.sizes) - MAX_SIZES_SHOWN}" if len(fmt.sizes) > MAX_SIZES_SHOWN else ""
        formats.append(f"{fmt.fourcc} {sizes}{more}".strip())
    return head + (": " + "; ".join(formats) if formats else "")
