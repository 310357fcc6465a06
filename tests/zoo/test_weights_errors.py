"""A weights file that cannot be loaded is refused with a reason a user can act on."""

from __future__ import annotations

import pytest
import torch

from localsr_cam.errors import ModelError
from localsr_cam.zoo.recipes import read_state_dict


class Note:
    """An object of a class torch's safe loader does not know."""


def _refusal(path) -> str:
    with pytest.raises(ModelError) as caught:
        read_state_dict(path, "localsr-cam models fetch")
    message = str(caught.value)
    assert str(path) in message and "localsr-cam models fetch" in message
    return message


def test_a_text_file_is_not_a_weights_file(tmp_path):
    path = tmp_path / "w.pt"
    path.write_text("hello, these are not weights\n")
    message = _refusal(path)
    assert "not a PyTorch weights file" in message and "101" not in message


def test_an_empty_file_says_so(tmp_path):
    path = tmp_path / "w.pt"
    path.write_bytes(b"")
    assert "the file is empty" in _refusal(path)


def test_objects_besides_tensors_are_named(tmp_path):
    path = tmp_path / "w.pt"
    torch.save({"w": torch.zeros(2), "extra": Note()}, path)
    assert "Python objects besides tensors" in _refusal(path)


def test_a_cut_short_file_is_called_damaged(tmp_path):
    whole = tmp_path / "whole.pt"
    torch.save({"w": torch.arange(4096, dtype=torch.float32)}, whole)
    path = tmp_path / "w.pt"
    path.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    assert "damaged or cut short" in _refusal(path)


def test_a_good_file_loads(tmp_path):
    path = tmp_path / "w.pt"
    torch.save({"w": torch.ones(3)}, path)
    assert torch.equal(read_state_dict(path, "x")["w"], torch.ones(3))
