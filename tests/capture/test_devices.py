"""``localsr-cam devices`` over a fake sysfs tree and a fake V4L2 ioctl layer (the
hardware edge): cameras with their formats and sizes, loopback devices, the defaults."""

from __future__ import annotations

import errno
import struct
from pathlib import Path

import pytest

from localsr_cam.capture import devices
from localsr_cam.capture.devices import (
    CAP_DEVICE_CAPS,
    CAP_VIDEO_CAPTURE,
    CAP_VIDEO_OUTPUT,
    CAPABILITY,
    FMTDESC,
    FRMSIZE,
    VIDIOC_ENUM_FMT,
    VIDIOC_ENUM_FRAMESIZES,
    VIDIOC_QUERYCAP,
    default_camera,
    describe_devices,
    list_devices,
)
from localsr_cam.cli.main import main


def fourcc(text: str) -> int:
    return struct.unpack("<I", text.encode())[0]


class FakeV4L2:
    """What the kernel answers, per device path: driver, card, caps and formats
    ``{fourcc: [sizes] or ("step", min, max)}``; fds map to paths by opening order."""

    def __init__(self, dev: Path, table: dict[str, dict]) -> None:
        self.dev = dev
        self.table = table
        self.requests: list[int] = []

    def device_for(self, fd: int) -> dict:
        target = Path(f"/proc/self/fd/{fd}").resolve().name
        entry = self.table[target]
        if entry.get("busy"):
            raise OSError(errno.EBUSY, "Device or resource busy")
        return entry

    def __call__(self, fd: int, request: int, buffer: bytearray) -> None:
        self.requests.append(request)
        entry = self.device_for(fd)
        if request == VIDIOC_QUERYCAP:
            buffer[:] = CAPABILITY.pack(entry["driver"].encode(), entry["card"].encode(),
                                        b"usb-1", 1, entry["caps"] | CAP_DEVICE_CAPS,
                                        entry["caps"])
        elif request == VIDIOC_ENUM_FMT:
            index, kind, *_ = FMTDESC.unpack(buffer)
            formats = list(entry.get("formats", {}))
            if kind != 1 or index >= len(formats):
                raise OSError(errno.EINVAL, "Invalid argument")
            buffer[:] = FMTDESC.pack(index, kind, 0, formats[index].encode(),
                                     fourcc(formats[index]), 0)
        elif request == VIDIOC_ENUM_FRAMESIZES:
            index, pixelformat, *_ = FRMSIZE.unpack(buffer)
            name = struct.pack("<I", pixelformat).decode()
            sizes = entry["formats"][name]
            if isinstance(sizes, tuple):  # stepwise
                if index > 0:
                    raise OSError(errno.EINVAL, "Invalid argument")
                _, (min_w, min_h), (max_w, max_h) = sizes
                buffer[:] = FRMSIZE.pack(0, pixelformat, 3, min_w, max_w, 8, min_h, max_h, 8)
                return
            if index >= len(sizes):
                raise OSError(errno.EINVAL, "Invalid argument")
            buffer[:] = FRMSIZE.pack(index, pixelformat, 1, *sizes[index], 0, 0, 0, 0)
        else:
            raise OSError(errno.ENOTTY, "Inappropriate ioctl for device")


def fake_machine(tmp_path: Path, table: dict[str, dict],
                 virtual: tuple[str, ...] = ()) -> tuple[Path, Path, FakeV4L2]:
    """A /sys tree (class links into devices/, loopbacks under devices/virtual) and a
    /dev folder of plain files standing in for the device nodes."""
    sys_root, dev = tmp_path / "sys", tmp_path / "dev"
    classes = sys_root / "class" / "video4linux"
    classes.mkdir(parents=True)
    dev.mkdir()
    for name, entry in table.items():
        parent = "virtual" if name in virtual else "pci0000:00/usb1"
        node = sys_root / "devices" / parent / "video4linux" / name
        node.mkdir(parents=True)
        (node / "name").write_text(entry["card"] + "\n")
        (node / "index").write_text(str(entry.get("index", 0)) + "\n")
        (classes / name).symlink_to(node)
        (dev / name).write_text("")
    return sys_root, dev, FakeV4L2(dev, table)


LAPTOP = {
    "video0": {"driver": "uvcvideo", "card": "Integrated Camera", "caps": CAP_VIDEO_CAPTURE,
               "formats": {"MJPG": [(640, 480), (1280, 720)], "YUYV": [(640, 480)]}},
    "video1": {"driver": "uvcvideo", "card": "Integrated Camera", "caps": 0x00800000,
               "index": 1},
    "video2": {"driver": "v4l2 loopback", "card": "localsr",
               "caps": CAP_VIDEO_CAPTURE | CAP_VIDEO_OUTPUT},
}


def test_cameras_loopbacks_and_metadata_nodes_are_told_apart(tmp_path):
    sys_root, dev, ioctl = fake_machine(tmp_path, LAPTOP, virtual=("video2",))
    found = list_devices(sys_root, dev, ioctl)
    assert [(d.index, d.kind) for d in found] == [(0, "camera"), (1, "other"),
                                                  (2, "loopback")]
    camera = found[0]
    assert camera.path == str(dev / "video0") and camera.name == "Integrated Camera"
    assert camera.driver == "uvcvideo"
    assert [(f.fourcc, f.sizes) for f in camera.formats] == [
        ("MJPG", ((1280, 720), (640, 480))), ("YUYV", ((640, 480),))]


def test_the_report_names_what_run_reads_and_where_virtualcam_writes(tmp_path):
    sys_root, dev, ioctl = fake_machine(tmp_path, LAPTOP, virtual=("video2",))
    text = "\n".join(describe_devices(list_devices(sys_root, dev, ioctl), "linux"))
    assert "Integrated Camera (uvcvideo): MJPG 1280x720 640x480; YUYV 640x480" in text
    assert f"`localsr-cam run` reads: camera 0 ({dev / 'video0'})" in text
    assert f"`--sink virtualcam` writes to: {dev / 'video2'}" in text


def test_run_never_reads_a_loopback_device_by_default(tmp_path):
    table = {"video0": LAPTOP["video2"], "video4": LAPTOP["video0"]}
    sys_root, dev, ioctl = fake_machine(tmp_path, table, virtual=("video0",))
    found = list_devices(sys_root, dev, ioctl)
    assert default_camera(found) == "4"
    only_loopback = [d for d in found if d.kind == "loopback"]
    assert default_camera(only_loopback) is None


def test_a_stepwise_camera_shows_its_size_range(tmp_path):
    table = {"video0": {"driver": "fake", "card": "Range Cam", "caps": CAP_VIDEO_CAPTURE,
                        "formats": {"YUYV": ("step", (160, 120), (1920, 1080))}}}
    sys_root, dev, ioctl = fake_machine(tmp_path, table)
    (camera,) = list_devices(sys_root, dev, ioctl)
    assert camera.formats[0].sizes == ((1920, 1080), (160, 120))


def test_a_busy_device_is_listed_with_the_reason(tmp_path):
    table = {"video0": dict(LAPTOP["video0"], busy=True)}
    sys_root, dev, ioctl = fake_machine(tmp_path, table)
    (camera,) = list_devices(sys_root, dev, ioctl)
    assert camera.kind == "camera" and "busy" in camera.problem
    assert "cannot ask it (Device or resource busy)" in describe_devices([camera], "linux")[1]


def test_no_devices_at_all_says_what_run_does_and_how_to_get_a_loopback(tmp_path):
    text = "\n".join(describe_devices(list_devices(tmp_path / "nosys", tmp_path), "linux"))
    assert "the built-in sample" in text and "modprobe v4l2loopback" in text


def test_elsewhere_it_says_camera_0():
    assert "camera 0" in describe_devices([], "darwin")[0]


def test_the_devices_command(tmp_path, monkeypatch, capsys):
    sys_root, dev, ioctl = fake_machine(tmp_path, LAPTOP, virtual=("video2",))
    real = devices.list_devices
    monkeypatch.setattr(devices, "list_devices",
                        lambda: real(sys_root, dev, ioctl))
    monkeypatch.setattr(devices.sys, "platform", "linux")
    assert main(["devices"]) == 0
    out = capsys.readouterr().out
    assert "Integrated Camera" in out and "reads: camera 0" in out


@pytest.mark.parametrize("request_code, size", [(VIDIOC_QUERYCAP, 104), (VIDIOC_ENUM_FMT, 64),
                                                (VIDIOC_ENUM_FRAMESIZES, 44)])
def test_ioctl_numbers_match_the_linux_headers(request_code, size):
    # <linux/videodev2.h>: VIDIOC_QUERYCAP 0x80685600, ENUM_FMT 0xc0405602,
    # ENUM_FRAMESIZES 0xc02c564a
    expected = {104: 0x80685600, 64: 0xC0405602, 44: 0xC02C564A}[size]
    assert request_code == expected
