"""The two super-resolution U-Nets (torch modules only; the zoo builds and loads them).

Both follow the engine contract of :mod:`localsr_cam.runtime.base`: ``forward(image)`` takes
the LOW-resolution image, N×3×h×w float32 RGB in [0,1], and returns ``sr``,
N×3×2h×2w float32 RGB, not clamped. Any ``h, w >= 1`` works; the networks pad or crop
inside ``forward`` so the same graph (and its ONNX export) serves every size.

- :class:`PaperUNet` reproduces the source paper's vanilla U-Net: the input is resized
  to the HR size (bicubic, inside ``forward``), two down blocks and two up blocks at HR
  resolution, each down block's output *added* to its up block, dropout in the first
  down block. Slow (all of it runs at HR resolution); it is the reference.
- :class:`FastUNet` is ours, for real time on a laptop CPU: it runs at LR resolution,
  with one half-resolution level, and predicts a residual over a bilinear (or bicubic,
  ``base="bicubic"``) 2× upscale through a PixelShuffle tail.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from localsr_cam.errors import ConfigError
from localsr_cam.models.chroma import JPEG_LEVEL, JpegChromaSmoothing

SCALE = 2
BASES = ("bilinear", "bicubic")
"""The fixed 2× upscales FastUNet can add its residual to."""


def _conv(cin: int, cout: int, k: int = 3, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2)


class LevelFiLM(nn.Module):
    """Feature-wise scale and shift from the degradation levels (FiLM).

    ``levels`` N×K float32 (see :mod:`localsr_cam.process.estimate`) → a two-layer MLP →
    one ``(1 + γ, β)`` pair of N×c×1×1 tensors per entry of ``channels``. The last layer
    starts at zero, so a fresh FiLM is the identity and weights of a net trained without
    levels load unchanged (fine-tuning starts from that net's outputs).
    """

    def __init__(self, levels: int, channels: tuple[int, ...], hidden: int = 32) -> None:
        super().__init__()
        self.channels = channels
        self.hidden = nn.Linear(levels, hidden)
        self.out = nn.Linear(hidden, 2 * sum(channels))
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, levels: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        params = self.out(F.relu(self.hidden(levels)))[:, :, None, None]
        pairs, start = [], 0
        for c in self.channels:
            gamma = params[:, start: start + c]
            beta = params[:, start + c: start + 2 * c]
            pairs.append((1.0 + gamma, beta))
            start += 2 * c
        return pairs


def _modulate(x: torch.Tensor, pair: tuple[torch.Tensor, torch.Tensor] | None) -> torch.Tensor:
    return x if pair is None else x * pair[0] + pair[1]


def _no_levels(image: torch.Tensor, levels: int) -> torch.Tensor:
    return image.new_zeros((image.shape[0], levels))


def _smoothing(chroma: bool, levels: int) -> JpegChromaSmoothing | None:
    """The JPEG chroma step for a net that asks for it (it reads the JPEG level, so the
    net must take levels)."""
    if chroma and levels <= JPEG_LEVEL:
        raise ConfigError("JPEG chroma smoothing needs the degradation levels "
                          f"(levels > {JPEG_LEVEL})")
    return JpegChromaSmoothing() if chroma else None


class BackProjection(nn.Module):
    """One back-projection step on the SR, as strong as the degradation levels say.

    The SR, downscaled 2× by area (each 2×2 block's mean), should give the net's input
    back. What it misses, ``image − area(sr)`` (N×3×h×w), is upscaled 2× with the net's
    base and added ``λ`` times, ``λ`` (N×1×1×1) a linear function of the levels. A small
    net's output misses part of its input: one step at λ 1 after the shipped FastUNet
    gained about 0.2 dB on area-downscaled photos, while under low light, where the
    misses are mostly noise, it lost 1.9 dB (BENCHMARKS.md): λ must follow the levels.
    ``λ`` starts at zero: a fresh step is the identity, so the weights of a net trained
    without it load unchanged and fine-tuning starts from that net's outputs.
    """

    def __init__(self, levels: int, base: str) -> None:
        super().__init__()
        self.base = base
        self.strength = nn.Linear(levels, 1)
        nn.init.zeros_(self.strength.weight)
        nn.init.zeros_(self.strength.bias)

    def weight(self, levels: torch.Tensor) -> torch.Tensor:
        """``levels`` N×K → λ, N×1×1×1 float32."""
        return self.strength(levels)[:, :, None, None]

    def forward(self, image: torch.Tensor, sr: torch.Tensor, levels: torch.Tensor
                ) -> torch.Tensor:
        """``image`` N×3×h×w (as the net saw it), ``sr`` N×3×2h×2w, ``levels`` N×K →
        the corrected ``sr``, N×3×2h×2w float32."""
        miss = image - F.avg_pool2d(sr, SCALE)
        return sr + self.weight(levels) * F.interpolate(
            miss, scale_factor=SCALE, mode=self.base, align_corners=False)


def _back_projection(backproject: bool, levels: int, base: str) -> BackProjection | None:
    """The back-projection step for a net that asks for it (its strength reads the
    levels, so the net must take levels)."""
    if backproject and levels <= 0:
        raise ConfigError("back-projection needs the degradation levels (levels > 0)")
    return BackProjection(levels, base) if backproject else None


def _conditioned(smoothing: JpegChromaSmoothing | None, image: torch.Tensor,
                 levels: torch.Tensor | None) -> torch.Tensor:
    """``image`` as the net sees it: JPEG chroma smoothed when the net has that step and
    was given levels (none = a clean frame, nothing to smooth)."""
    if smoothing is None or levels is None:
        return image
    return smoothing(image, levels[:, JPEG_LEVEL])


class FastUNet(nn.Module):
    """LR-space residual U-Net with a PixelShuffle tail.

    Layout (``C = width``)::

        image ─ head conv3×3 3→C ─┬─ conv3×3/2 C→2C ─ depth × conv3×3 2C→2C ─ conv1×1 2C→4C
                                  │                                             PixelShuffle(2)
                                  └──────────────────(+)────────────────────────────┘
                                                      └─ conv3×3 C→12 ─ PixelShuffle(2)
        sr = base2×(image) + that residual     (base: bilinear, or bicubic)

    Only the head, the skip addition and the tail run at LR resolution; the ``depth``
    blocks run at half LR resolution with 2C channels, where they cost a quarter as
    much. With width 16 and depth 2 that is about 8.4 KMAC per LR pixel.

    ``int8_layers``: the modules whose convs the CPU backend runs in int8 (the
    half-resolution ones, and the tail as the export form pads it to 16 output channels;
    see :mod:`localsr_cam.train.quantize`).

    ``chroma``: the image first goes through :class:`~localsr_cam.models.chroma.
    JpegChromaSmoothing`, gated by the JPEG level (``levels`` needed); the base upscale
    is taken of the smoothed image too.

    ``base``: the upscale the residual is added to. ``bicubic`` is the very upscale the
    net is measured against (``cv2.INTER_CUBIC`` equals torch's bicubic in float), so a
    residual the net is unsure of and keeps small leaves bicubic, not the softer bilinear.

    ``backproject``: the SR then takes one :class:`BackProjection` step, its strength
    from the levels (``levels`` needed).

    Odd sizes: the stride-2 conv gives ``ceil(h/2)``, the PixelShuffle brings it back to
    ``2·ceil(h/2)`` and the result is cropped to ``h`` before the skip is added, so any
    ``h, w >= 1`` works without padding.
    """

    int8_layers = ("down", "body", "tail")

    def __init__(self, width: int = 16, depth: int = 2, levels: int = 0,
                 chroma: bool = False, base: str = "bilinear",
                 backproject: bool = False) -> None:
        super().__init__()
        if width < 1 or depth < 0 or levels < 0 or base not in BASES:
            raise ConfigError(f"FastUNet needs width >= 1, depth >= 0, levels >= 0 and a "
                              f"base in {BASES} (got {width}, {depth}, {levels}, {base!r})")
        self.width = width
        self.base = base
        self.depth = depth
        self.levels = levels
        self.smoothing = _smoothing(chroma, levels)
        self.backproject = _back_projection(backproject, levels, base)
        c = width
        # levels > 0: FiLM on the half-resolution features (the down conv's output and
        # each body block), where a per-channel scale and shift costs least
        self.film = LevelFiLM(levels, (2 * c,) * (depth + 1)) if levels else None
        self.head = _conv(3, c)
        self.down = _conv(c, 2 * c, stride=2)
        self.body = nn.ModuleList(_conv(2 * c, 2 * c) for _ in range(depth))
        self.up = _conv(2 * c, 4 * c, k=1)
        self.tail = _conv(c, 3 * SCALE * SCALE)
        # Start as plain bilinear upscaling: the residual branch outputs zero.
        nn.init.zeros_(self.tail.weight)
        assert self.tail.bias is not None
        nn.init.zeros_(self.tail.bias)

    def config(self) -> dict[str, Any]:
        """The constructor arguments, as recorded in the manifest."""
        config: dict[str, Any] = {"width": self.width, "depth": self.depth}
        if self.levels:
            config["levels"] = self.levels
        if self.smoothing is not None:
            config["chroma"] = True
        if self.base != "bilinear":
            config["base"] = self.base
        if self.backproject is not None:
            config["backproject"] = True
        return config

    def conditioned(self, image: torch.Tensor, levels: torch.Tensor | None
                    ) -> torch.Tensor:
        """``image`` N×3×h×w as the layers see it (JPEG chroma smoothed if ``chroma``)."""
        return _conditioned(self.smoothing, image, levels)

    def features(self, image: torch.Tensor, levels: torch.Tensor | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        """The part both forms share: ``image`` N×3×h×w, already :meth:`conditioned`
        (+ ``levels`` N×K) → the LR skip N×C×h×w and the half-resolution features
        N×2C×⌈h/2⌉×⌈w/2⌉ (float32). ``levels`` None means all zeros (a clean frame)."""
        pairs: list[Any] = [None] * (len(self.body) + 1)
        if self.film is not None:
            pairs = self.film(_no_levels(image, self.levels) if levels is None else levels)
        skip = F.relu(self.head(image))
        x = F.relu(_modulate(self.down(skip), pairs[0]))
        for conv, pair in zip(self.body, pairs[1:], strict=True):
            x = F.relu(_modulate(conv(x), pair))
        return skip, x

    def forward(self, image: torch.Tensor, levels: torch.Tensor | None = None
                ) -> torch.Tensor:
        """``image`` N×3×h×w float32 in [0,1], ``levels`` N×K float32 (ignored when the
        net was built with ``levels=0``) → ``sr`` N×3×2h×2w float32 (not clamped)."""
        h, w = image.shape[-2], image.shape[-1]
        image = self.conditioned(image, levels)
        skip, x = self.features(image, levels)
        x = F.pixel_shuffle(self.up(x), 2)[..., :h, :w]
        x = F.relu(x + skip)
        base = F.interpolate(image, scale_factor=SCALE, mode=self.base, align_corners=False)
        sr = base + F.pixel_shuffle(self.tail(x), SCALE)
        if self.backproject is None:
            return sr
        return self.backproject(image, sr, _no_levels(image, self.levels)
                                if levels is None else levels)

    def export_module(self) -> nn.Module:
        """The same function without PixelShuffle, for ONNX export (see
        :class:`FastUNetExportForm`)."""
        return FastUNetExportForm(self)


class FastUNetExportForm(nn.Module):
    """A trained :class:`FastUNet` rewritten without PixelShuffle, for ONNX Runtime.

    ONNX Runtime's DepthToSpace (what PixelShuffle exports to) is a slow generic
    transpose: it took a third of FastUNet's time on a CPU. Both uses become stride-2
    transposed convolutions computing the same numbers:

    - ``up`` (1×1 conv 2C→4C, then PixelShuffle) is a 2×2 stride-2 transposed conv
      2C→C. Its bias differs per sub-pixel position, which a transposed conv's bias
      cannot express, so a constant ones channel is appended to the input and carries
      the bias in its weights.
    - the tail's PixelShuffle is a 2×2 stride-2 transposed conv 12→3 with 0/1 weights
      that picks channel ``c·4 + 2a + b`` for output pixel ``(2i+a, 2j+b)``.

    The base upscale is folded into that last shuffle too: a 2× bilinear upscale (half-
    pixel centres, edges clamped) gives output pixel ``(2i+a, 2j+b)`` from the 3×3
    neighbourhood of input pixel ``(i, j)`` (weights ¾ and ¼ per axis), a bicubic one
    from its 5×5 neighbourhood (four taps per axis), so it is a fixed grouped conv 3→12
    on the edge-padded image, added to the tail's 12 channels at LR resolution before
    they are shuffled. ONNX Runtime's Resize and the add at HR cost more than that conv
    (2.6 vs 0.8 ms on a 352×360 box, bilinear).

    A back-projection step (``net.backproject``) is folded in the same way, by linearity.
    The SR's area downscale is each colour's mean over its four sub-pixel planes: of the
    base's planes, a fixed 3×3 depthwise filter of the image (the mean of the base's four
    kernels); of the tail's, three more tail channels whose weights are the means of each
    colour's four (15 channels cost what 12 do in ONNX Runtime's 16-channel blocks). And
    ``base(image) + λ·base(miss)`` is ``base(image + λ·miss)``: the step costs a few
    3-channel operations at LR resolution, 0.6 ms on a 352×360 box (int8, one thread,
    23.7 → 24.3 ms), where a 1×1 conv 12→3 for the mean and a second base conv on the
    miss cost 5.8.

    The tail (with those three channels) is a conv of its own, ``tail``, padded with
    zero channels to a multiple of :data:`TAIL_CHANNEL_BLOCK` outputs: ONNX Runtime's
    int8 conv has a fast kernel only for such counts (a 3×3 conv 16→16 on a 352×360 box
    in int8 took a third of its float32 time; 16→12 or 16→15 took longer than float32),
    so the CPU's int8 form quantizes it too.

    It runs the original's layers (``net.features``) and replaces only the tail, the
    shuffles and the base; outputs match the original to float rounding (checked by the
    export's parity test). The tail's weights are copied when the form is built.
    """

    def __init__(self, net: FastUNet) -> None:
        super().__init__()
        self.net = net
        up_w = net.up.weight.detach()[:, :, 0, 0]  # (4C, 2C): out index = c·4 + 2a + b
        assert net.up.bias is not None
        out_c = up_w.shape[0] // 4
        weight = torch.cat([up_w.t(), net.up.bias.detach()[None]], dim=0)  # (2C+1, 4C)
        self.register_buffer("up_weight", weight.reshape(-1, out_c, 2, 2).clone())
        self.register_buffer("shuffle_weight", pixel_shuffle_weight())
        self.register_buffer("base_weight", _subpixel_kernels(net.base))
        colours = self.base_weight.shape[0] // (SCALE * SCALE)
        # the base upscale's own area downscale: the mean of each colour's four kernels
        self.register_buffer("base_area_weight", self.base_weight.reshape(
            colours, SCALE * SCALE, 1, *self.base_weight.shape[-2:]).mean(dim=1))
        self.tail = _padded_tail(net.tail, area_means=net.backproject is not None)
        self.up_weight: torch.Tensor
        self.shuffle_weight: torch.Tensor
        self.base_weight: torch.Tensor
        self.base_area_weight: torch.Tensor

    def forward(self, image: torch.Tensor, levels: torch.Tensor | None = None
                ) -> torch.Tensor:
        """``image`` N×3×h×w float32 in [0,1] (+ ``levels`` N×K) → ``sr`` N×3×2h×2w."""
        h, w = image.shape[-2], image.shape[-1]
        image = self.net.conditioned(image, levels)
        skip, x = self.net.features(image, levels)
        with_ones = torch.cat([x, torch.ones_like(x[:, :1])], dim=1)
        x = F.conv_transpose2d(with_ones, self.up_weight, stride=2)[..., :h, :w]
        x = F.relu(x + skip)
        step = self.net.backproject
        planes_out = self.net.tail.out_channels
        tail = self.tail(x)
        residual = tail[:, :planes_out]
        if step is None:
            planes = residual + self._fixed(image, self.base_weight)
        else:
            residual_area = tail[:, planes_out:planes_out + planes_out // (SCALE * SCALE)]
            miss = image - self._fixed(image, self.base_area_weight) - residual_area
            strength = step.weight(_no_levels(image, self.net.levels) if levels is None
                                   else levels)
            planes = residual + self._fixed(image + strength * miss, self.base_weight)
        return F.conv_transpose2d(planes, self.shuffle_weight, stride=SCALE)

    @staticmethod
    def _fixed(image: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """N×3×h×w → a fixed grouped conv of the edge-padded image (the base upscale's
        12 sub-pixel planes, or its area downscale's 3)."""
        margin = weight.shape[-1] // 2
        return F.conv2d(F.pad(image, (margin,) * 4, mode="replicate"), weight, groups=3)


TAIL_CHANNEL_BLOCK = 16
"""The export form's tail has a multiple of this many output channels (see
:class:`FastUNetExportForm`)."""


def _padded_tail(tail: nn.Conv2d, area_means: bool) -> nn.Conv2d:
    """A copy of FastUNet's ``tail`` conv (C→12: colour ``c`` of sub-pixel ``(a, b)`` in
    channel ``c·4 + 2a + b``), then, with ``area_means``, 3 channels each the mean of one
    colour's four (the residual's area downscale), then zero channels up to a multiple of
    :data:`TAIL_CHANNEL_BLOCK`."""
    assert tail.bias is not None
    colours = tail.out_channels // (SCALE * SCALE)
    weight, bias = tail.weight.detach(), tail.bias.detach()
    weights, biases = [weight], [bias]
    if area_means:
        weights.append(weight.reshape(colours, SCALE * SCALE, *weight.shape[1:]).mean(dim=1))
        biases.append(bias.reshape(colours, -1).mean(dim=1))
    used = sum(w.shape[0] for w in weights)
    spare = -used % TAIL_CHANNEL_BLOCK
    weights.append(weight.new_zeros((spare, *weight.shape[1:])))
    biases.append(bias.new_zeros(spare))
    padded = _conv(tail.in_channels, used + spare, k=weight.shape[-1])
    assert padded.bias is not None
    with torch.no_grad():
        padded.weight.copy_(torch.cat(weights))
        padded.bias.copy_(torch.cat(biases))
    return padded.requires_grad_(False)


def pixel_shuffle_weight(colours: int = 3) -> torch.Tensor:
    """float32 (colours·4)×colours×2×2: the weight of the stride-2 transposed conv that
    is ``PixelShuffle(2)`` — channel ``c·4 + 2a + b`` goes to colour ``c``, sub-pixel
    ``(a, b)`` — with which :class:`FastUNetExportForm` ends."""
    shuffle = torch.zeros(colours * SCALE * SCALE, colours, SCALE, SCALE)
    for c in range(colours):
        for a in range(SCALE):
            for b in range(SCALE):
                shuffle[c * SCALE * SCALE + a * SCALE + b, c, a, b] = 1.0
    return shuffle


SUBPIXEL_TAPS = {
    # weights of input pixels i-1..i+1 for output pixels 2i (row 0) and 2i+1 (row 1)
    "bilinear": [[0.25, 0.75, 0.0], [0.0, 0.75, 0.25]],
    # i-2..i+2: Keys' cubic (A = -0.75, as OpenCV and torch) at distances 1.75, 0.75,
    # 0.25, 1.25 from the sample point i - 1/4, and mirrored for i + 1/4
    "bicubic": [[-0.03515625, 0.26171875, 0.87890625, -0.10546875, 0.0],
                [0.0, -0.10546875, 0.87890625, 0.26171875, -0.03515625]],
}
"""Per-axis taps of a 2× upscale with half-pixel centres, by base."""


def _subpixel_kernels(base: str) -> torch.Tensor:
    """float32 (3·4)×1×k×k (k = 3 bilinear, 5 bicubic): for colour ``c`` and sub-pixel
    ``(a, b)``, channel ``c·4 + 2a + b``, the weights of a 2× ``base`` upscale (half-pixel
    centres) that give output pixel ``(2i+a, 2j+b)`` from the k×k input pixels around
    ``(i, j)``."""
    taps = torch.tensor(SUBPIXEL_TAPS[base])
    k = taps.shape[1]
    kernels = torch.zeros(3 * SCALE * SCALE, 1, k, k)
    for c in range(3):
        for a in range(SCALE):
            for b in range(SCALE):
                kernels[c * SCALE * SCALE + a * SCALE + b, 0] = torch.outer(taps[a], taps[b])
    return kernels


class PaperUNet(nn.Module):
    """The paper's vanilla U-Net on the bicubic-resized input (``C = width``)::

        up = bicubic2×(image)                                   (inside forward, H = 2h)
        d1 = conv-relu-conv-relu(up) 3→C, dropout              at H
        d2 = conv-relu-conv-relu(maxpool(d1)) C→2C             at H/2
        b  = conv-relu-conv-relu(maxpool(d2)) 2C→2C            at H/4   (bridge)
        u2 = conv-relu-conv-relu(convT2×(b) + d2) 2C→C         at H/2   (additive skip)
        u1 = conv-relu-conv-relu(convT2×(u2) + d1) C→C         at H     (additive skip)
        sr = conv1×1(u1) C→3  (+ up when ``residual``)

    ``residual=True`` adds the bicubic input to the output (global residual learning);
    the paper's network outputs the image directly (``residual=False``). Max pooling uses
    ``ceil_mode`` and the transposed convs' outputs are cropped to the skip's size, so
    any ``h, w >= 1`` works. ``chroma``: JPEG chroma smoothing first, as in
    :class:`FastUNet`.
    """

    def __init__(self, width: int = 32, dropout: float = 0.1, residual: bool = True,
                 levels: int = 0, chroma: bool = False) -> None:
        super().__init__()
        if width < 1 or not 0.0 <= dropout < 1.0 or levels < 0:
            raise ConfigError(f"PaperUNet needs width >= 1 and 0 <= dropout < 1 "
                              f"(got {width}, {dropout})")
        self.width = width
        self.dropout = dropout
        self.residual = residual
        self.levels = levels
        self.smoothing = _smoothing(chroma, levels)
        c = width
        # levels > 0: FiLM on the outputs of down2 and the bridge (H/2 and H/4)
        self.film = LevelFiLM(levels, (2 * c, 2 * c)) if levels else None
        self.down1 = self._block(3, c)
        self.drop1 = nn.Dropout2d(dropout)
        self.down2 = self._block(c, 2 * c)
        self.bridge = self._block(2 * c, 2 * c)
        self.up2t = nn.ConvTranspose2d(2 * c, 2 * c, 2, stride=2)
        self.up2 = self._block(2 * c, c)
        self.up1t = nn.ConvTranspose2d(c, c, 2, stride=2)
        self.up1 = self._block(c, c)
        self.out = nn.Conv2d(c, 3, 1)

    @staticmethod
    def _block(cin: int, cout: int) -> nn.Sequential:
        return nn.Sequential(_conv(cin, cout), nn.ReLU(), _conv(cout, cout), nn.ReLU())

    def config(self) -> dict[str, Any]:
        """The constructor arguments, as recorded in the manifest."""
        config: dict[str, Any] = {"width": self.width, "dropout": self.dropout,
                                  "residual": self.residual}
        if self.levels:
            config["levels"] = self.levels
        if self.smoothing is not None:
            config["chroma"] = True
        return config

    def forward(self, image: torch.Tensor, levels: torch.Tensor | None = None
                ) -> torch.Tensor:
        """``image`` N×3×h×w float32 in [0,1], ``levels`` N×K float32 (ignored when the
        net was built with ``levels=0``) → ``sr`` N×3×2h×2w float32 (not clamped)."""
        pairs: list[Any] = [None, None]
        if self.film is not None:
            pairs = self.film(_no_levels(image, self.levels) if levels is None else levels)
        image = _conditioned(self.smoothing, image, levels)
        up = F.interpolate(image, scale_factor=SCALE, mode="bicubic", align_corners=False)
        d1 = self.drop1(self.down1(up))
        d2 = _modulate(self.down2(F.max_pool2d(d1, 2, ceil_mode=True)), pairs[0])
        b = _modulate(self.bridge(F.max_pool2d(d2, 2, ceil_mode=True)), pairs[1])
        u2 = self.up2t(b)[..., : d2.shape[-2], : d2.shape[-1]]
        u2 = self.up2(u2 + d2)
        u1 = self.up1t(u2)[..., : d1.shape[-2], : d1.shape[-1]]
        u1 = self.up1(u1 + d1)
        sr = self.out(u1)
        return sr + up if self.residual else sr


def count_params(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def macs_per_lr_pixel(model: nn.Module, h: int = 64, w: int = 64) -> float:
    """Multiply-accumulates of the convolutions per LOW-resolution input pixel.

    Counted with forward hooks on ``Conv2d``/``ConvTranspose2d`` for one h×w input;
    resizes, ReLUs and additions are not counted.
    """
    total = 0

    def hook(mod: nn.Module, inputs: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        nonlocal total
        assert isinstance(mod, nn.Conv2d | nn.ConvTranspose2d)
        kh, kw = mod.kernel_size
        if isinstance(mod, nn.Conv2d):
            total += out.numel() * (mod.in_channels // mod.groups) * kh * kw
        else:  # each input element feeds out_channels·kh·kw outputs
            total += inputs[0].numel() * (mod.out_channels // mod.groups) * kh * kw

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, nn.Conv2d | nn.ConvTranspose2d)]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, 3, h, w))
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return total / (h * w)
