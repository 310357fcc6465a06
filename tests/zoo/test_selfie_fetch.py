"""``fetch_models``: idempotence, bad input, and nothing half-written in ``engines/``.

The happy path (download, convert, verify, write) runs once per session in
the ``selfie_engines`` fixture (conftest); these tests work on copies of its output.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
import torch

from localsr_cam.errors import ModelError
from localsr_cam.models import selfie
from localsr_cam.zoo import artifacts, registry, selfie_fetch
from localsr_cam.zoo.listing import list_models

SELFIE_FILES = ("selfie.pt", "selfie.onnx", "selfie_landscape.pt", "selfie_landscape.onnx")


@pytest.fixture(scope="module")
def prepared(selfie_engines: Path) -> Path:
    return selfie_engines


@pytest.fixture(scope="module")
def wheel() -> Path:
    return selfie_fetch.ensure_wheel()


@pytest.fixture()
def copied(prepared: Path, tmp_path: Path) -> Path:
    """A private copy of the prepared selfie files and manifest entries."""
    target = tmp_path / "engines"
    target.mkdir()
    for name in SELFIE_FILES:
        shutil.copy2(prepared / name, target / name)
    manifest = artifacts.read_manifest(prepared)
    for name in selfie.VARIANTS:
        artifacts.write_manifest_entry(name, manifest[name], target)
    return target


def snapshot(directory: Path) -> dict[str, tuple[str, int]]:
    """Every file (hidden ones included) → (sha256, mtime in ns)."""
    return {p.name: (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted(directory.iterdir())}


def assert_empty(directory: Path) -> None:
    leftovers = sorted(p.name for p in directory.iterdir()) if directory.exists() else []
    assert leftovers == [], f"left behind: {leftovers}"


# --------------------------------------------------------------------------- reruns


def test_second_fetch_does_nothing(copied: Path, tmp_path: Path) -> None:
    """Up-to-date models are not rebuilt, and no wheel is looked for (empty cache)."""
    before = snapshot(copied)
    empty_cache = tmp_path / "cache"
    assert selfie_fetch.fetch_models(copied, cache_dir=empty_cache) == []
    assert snapshot(copied) == before
    assert not empty_cache.exists()


def test_changed_file_rebuilds_only_its_model_with_the_same_bytes(copied: Path,
                                                                  wheel: Path) -> None:
    before = snapshot(copied)
    onnx_path = copied / "selfie_landscape.onnx"
    onnx_path.write_bytes(onnx_path.read_bytes() + b"tampered")
    assert selfie_fetch.fetch_models(copied, wheel=wheel) == ["selfie-landscape"]
    after = snapshot(copied)
    for name in ("selfie.pt", "selfie.onnx"):
        assert after[name] == before[name]  # untouched, same mtime
    for name in ("selfie_landscape.pt", "selfie_landscape.onnx", "manifest.json"):
        assert after[name][0] == before[name][0]  # rewritten, identical bytes
    assert not [p for p in copied.iterdir() if p.name.startswith(".")]


def test_a_rebuild_of_the_recorded_files_keeps_the_recorded_figures(copied: Path,
                                                                   wheel: Path) -> None:
    """Another machine's float libraries give other max |Δ| figures for the same files:
    the committed manifest keeps its own (a fresh clone's fetch leaves git clean)."""
    manifest = artifacts.read_manifest(copied)
    entry = dict(manifest["selfie"])
    entry["verification"] = {**entry["verification"], "max_abs_diff_onnx": 1.23e-05}
    artifacts.write_manifest_entry("selfie", entry, copied)
    (copied / "selfie.onnx").unlink()
    assert selfie_fetch.fetch_models(copied, wheel=wheel) == ["selfie"]
    after = artifacts.read_manifest(copied)["selfie"]
    assert after["verification"]["max_abs_diff_onnx"] == 1.23e-05
    assert after["sha256"] == manifest["selfie"]["sha256"]
    # files that differ from the record get their own figures
    entry["sha256"] = {**entry["sha256"], "onnx": "0" * 64}
    artifacts.write_manifest_entry("selfie", entry, copied)
    (copied / "selfie.onnx").unlink()
    assert selfie_fetch.fetch_models(copied, wheel=wheel) == ["selfie"]
    assert artifacts.read_manifest(copied)["selfie"]["verification"]["max_abs_diff_onnx"] \
        != 1.23e-05


def test_list_models_reports_each_state(copied: Path) -> None:
    def status(directory: Path) -> dict[str, str]:
        return {row[0]: row[1] for row in list_models(directory)}

    rows = list_models(copied)
    assert [row[0] for row in rows] == list(registry.MODELS)
    assert all(len(row) == 4 for row in rows)
    assert status(copied)["selfie"] == status(copied)["selfie-landscape"] == "ready"
    (copied / "selfie.onnx").write_bytes(b"not the exported model")
    (copied / "selfie_landscape.pt").unlink()
    listed = status(copied)
    assert listed["selfie"] == "modified"
    assert listed["selfie-landscape"] == "missing"
    assert listed["maskrcnn"] in ("ready", "no weights")


# --------------------------------------------------------------------------- bad input


def test_wheel_with_wrong_hash_is_refused(tmp_path: Path) -> None:
    """A wheel that merely looks right (same members) is refused before any work."""
    fake = tmp_path / selfie_fetch.WHEEL_NAME
    with zipfile.ZipFile(fake, "w") as archive:
        for source in selfie_fetch.SOURCES.values():
            archive.writestr(source.member, b"TFL3 but not really")
    out = tmp_path / "engines"
    with pytest.raises(ModelError, match="sha256") as info:
        selfie_fetch.fetch_models(out, wheel=fake)
    assert "\n" not in str(info.value)
    assert_empty(out)


def test_missing_wheel_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "engines"
    with pytest.raises(ModelError, match="does not exist"):
        selfie_fetch.fetch_models(out, wheel=tmp_path / "absent.whl")
    assert_empty(out)


def test_wheel_without_the_model_is_refused(tmp_path: Path) -> None:
    archive_path = tmp_path / "other.whl"
    with zipfile.ZipFile(archive_path, "w") as archive:
        archive.writestr("mediapipe/__init__.py", "")
    with pytest.raises(ModelError, match="cannot read"):
        selfie_fetch.read_tflite_from_wheel(archive_path, "selfie")


@pytest.mark.parametrize(("victim", "keep"), [("selfie", 0.01), ("selfie-landscape", 0.5)])
def test_truncated_tflite_aborts_the_fetch_without_writing(
        victim: str, keep: float, wheel: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A truncated .tflite (as if the archive member were damaged) is a ModelError, and
    when it is the second model, the first, already converted, is not written either."""
    real_read = selfie_fetch.read_tflite_from_wheel

    def damaged(path: Path, name: str) -> bytes:
        data = real_read(path, name)
        return data[: int(len(data) * keep)] if name == victim else data

    monkeypatch.setattr(selfie_fetch, "read_tflite_from_wheel", damaged)
    out = tmp_path / "engines"
    with pytest.raises(ModelError, match="truncated or corrupt") as info:
        selfie_fetch.fetch_models(out, wheel=wheel)
    assert "\n" not in str(info.value)
    assert_empty(out)


def test_tflite_with_wrong_hash_in_wheel_is_refused(tmp_path: Path, wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as source:
        data = source.read(selfie_fetch.SOURCES["selfie"].member)
    damaged = tmp_path / "damaged.whl"
    with zipfile.ZipFile(damaged, "w") as archive:
        archive.writestr(selfie_fetch.SOURCES["selfie"].member, data[:-100])
    with pytest.raises(ModelError, match="sha256"):
        selfie_fetch.read_tflite_from_wheel(damaged, "selfie")


def test_failed_export_leaves_engines_untouched(copied: Path, wheel: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """A failure after one model converted writes nothing: old files stay as they were."""
    (copied / "selfie_landscape.onnx").unlink()
    (copied / "selfie.onnx").write_bytes(b"stale")
    before = snapshot(copied)

    def broken_export(model: Any, size: tuple[int, int]) -> bytes:
        if size == selfie.VARIANTS["selfie-landscape"]:
            raise RuntimeError("exporter crashed\nwith a long story")
        return real_export(model, size)

    real_export = selfie_fetch.export_onnx
    monkeypatch.setattr(selfie_fetch, "export_onnx", broken_export)
    with pytest.raises(ModelError, match="ONNX export failed") as info:
        selfie_fetch.fetch_models(copied, wheel=wheel)
    assert "\n" not in str(info.value)
    assert snapshot(copied) == before


def test_pip_failure_is_one_line_and_leaves_no_download(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def failing_run(command: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        calls.append(command)
        return subprocess.CompletedProcess(command, 1, "", "Collecting mediapipe\n"
                                           "ERROR: No matching distribution found\n")

    monkeypatch.setattr(selfie_fetch.subprocess, "run", failing_run)
    cache = tmp_path / "cache"
    with pytest.raises(ModelError, match="No matching distribution found") as info:
        selfie_fetch.ensure_wheel(cache)
    assert "\n" not in str(info.value)
    (command,) = calls
    assert command[:4] == [sys.executable, "-m", "pip", "download"]
    assert "--no-deps" in command and selfie_fetch.MEDIAPIPE_REQUIREMENT in command
    assert_empty(cache)


def test_cached_wheel_is_reused_without_pip(wheel: Path, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / selfie_fetch.WHEEL_NAME).symlink_to(wheel)

    def no_pip(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("pip must not run when the cache holds the wheel")

    monkeypatch.setattr(selfie_fetch.subprocess, "run", no_pip)
    assert selfie_fetch.ensure_wheel(cache) == cache / selfie_fetch.WHEEL_NAME


# --------------------------------------------------------------------------- fallback


@pytest.mark.parametrize("name", list(selfie.VARIANTS))
def test_golden_check_without_litert(name: str, wheel: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Without LiteRT the port is checked against the recorded region means: the real
    conversion passes, a slightly wrong output (every pixel +0.01) is refused."""
    monkeypatch.setattr(selfie_fetch, "run_litert", lambda tflite, images: None)
    data = selfie_fetch.read_tflite_from_wheel(wheel, name)
    model = selfie.load_tflite(data)
    images = selfie_fetch.verification_batch(selfie.VARIANTS[name])
    with torch.inference_mode():
        output = model(images)
    record = selfie_fetch.compare(name, data, images, {"torch": output})
    assert record["max_abs_diff_torch"] < selfie_fetch.PARITY_TARGET
    assert "recorded" in record["reference"]
    with pytest.raises(ModelError, match="differs from the reference"):
        selfie_fetch.compare(name, data, images, {"torch": (output + 0.01).clamp(0, 1)})


def test_models_list_reports_a_modified_trained_model(tmp_path: Path) -> None:
    """Trained models record hashes under files.<role>.sha256: a changed file shows; a
    missing int8 file is said (the cpu backend runs float32 without it)."""
    import shutil

    from localsr_cam.zoo import artifacts

    source = artifacts.engines_dir()
    for name in ("fast_unet.pt", "fast_unet.onnx", "manifest.json"):
        shutil.copy(source / name, tmp_path / name)
    rows = {row[0]: row for row in list_models(tmp_path)}
    assert rows["fast"][1] == "ready"
    assert "localsr-cam models quantize fast" in rows["fast"][3]
    shutil.copy(source / "fast_unet.int8.onnx", tmp_path / "fast_unet.int8.onnx")
    rows = {row[0]: row for row in list_models(tmp_path)}
    assert rows["fast"][1] == "ready" and "int8 for the cpu backend" in rows["fast"][3]
    for name in ("fast_unet.int8.onnx", "fast_unet.onnx"):
        with (tmp_path / name).open("ab") as handle:
            handle.write(b"tampered")
        statuses = {row[0]: row[1] for row in list_models(tmp_path)}
        assert statuses["fast"] == "modified"
        shutil.copy(source / name, tmp_path / name)
