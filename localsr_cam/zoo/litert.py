"""Google's own runtime (LiteRT, ``ai_edge_litert``) on an original ``.tflite``: the
reference our ports are checked against. Optional: without the package there is no
reference, and callers fall back to recorded values."""

from __future__ import annotations

from typing import Any


def run_tflite(tflite: bytes, images: Any) -> dict[str, Any] | None:
    """Run ``images`` (N×3×H×W float32 torch tensor, already scaled as the model
    expects) one at a time through LiteRT, fed NHWC: ``{output tensor name: N×… float32
    torch tensor}`` in the graph's own layout, or ``None`` without ``ai_edge_litert``."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        return None
    import torch

    interpreter = Interpreter(model_content=tflite)
    interpreter.allocate_tensors()
    source = interpreter.get_input_details()[0]["index"]
    targets = {d["name"]: d["index"] for d in interpreter.get_output_details()}
    outputs: dict[str, list[Any]] = {name: [] for name in targets}
    for image in images:
        interpreter.set_tensor(source, image[None].permute(0, 2, 3, 1).contiguous().numpy())
        interpreter.invoke()
        for name, index in targets.items():
            outputs[name].append(torch.from_numpy(interpreter.get_tensor(index).copy()))
    return {name: torch.cat(values) for name, values in outputs.items()}
