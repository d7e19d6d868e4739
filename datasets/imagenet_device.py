"""ImageNet folders decoded on the training device (``data.decode=device``).

Per batch: threads read the files' bytes (``data.workers`` of them, one batch read ahead of the
one being trained); JPEGs are decoded by one batched ``torchvision.io.decode_jpeg`` call on the
device (nvJPEG on CUDA; on the CPU the threads decode them as they read), any other format on
the CPU; then on the device each image's crop is resized to ``S x S`` (``S`` =
``data.image_size``; one resize per image, as the images differ in size), the batch is stacked,
flipped and normalised. All of it runs one batch ahead in a loader thread. The crop is the workers
path's (``datasets/imagenet.py``): shorter side to ``data.resize``, then a random ``S x S`` crop
for training with ``data.augment`` (a centre crop otherwise), done as one resize of the matching
box of the original image. Crop offsets and flips are drawn for each whole global batch from a
generator seeded by the trainer's data generator, so a run resumes exactly and data-parallel
ranks keep their rows of one draw.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import torch
import torch.nn.functional as F

_JPEG_MAGIC = b"\xff\xd8"


def _read(path: str) -> torch.Tensor:
    from torchvision.io import read_file

    return read_file(path)


def _is_jpeg(data: torch.Tensor) -> bool:
    return data.numel() > 2 and bytes(data[:2].tolist()) == _JPEG_MAGIC


def _decode_cpu(data: torch.Tensor) -> torch.Tensor:
    from torchvision.io import ImageReadMode, decode_image

    return decode_image(data, mode=ImageReadMode.RGB)


def crop_boxes(sizes: torch.Tensor, resize: int, side: int, offsets: torch.Tensor | None) -> torch.Tensor:
    """``(B, 4)`` float boxes ``(top, left, height, width)`` in original pixels: the ``side x side``
    crop of each image resized so its shorter side is ``resize``. ``sizes`` ``(B, 2)`` = (H, W);
    ``offsets`` ``(B, 2)`` in [0, 1): where the crop lies in the free range (None: centred)."""
    sizes = sizes.double()
    scale = resize / sizes.min(1).values  # original -> resized
    resized = (sizes * scale[:, None]).round()
    free = (resized - side).clamp(min=0)
    start = ((free + 1) * offsets.double()).floor().clamp(max=free) if offsets is not None else (free / 2).round()
    return torch.cat([start, torch.full_like(start, float(side))], 1) / scale[:, None]


class DeviceDecodeSplit:
    """One split of an image folder, ``samples``: ``[(path, class index), ...]``."""

    def __init__(
        self, samples, device, workers: int, train: bool, side: int, resize: int, augment: bool, flip: bool, norm
    ):
        self.samples = list(samples)
        self.device = torch.device(device)
        self.workers = max(1, workers)
        self.train = train
        self.side, self.resize = side, max(resize, side)
        self.augment, self.flip = augment and train, flip
        self.max_value = norm.max_value  # norm: a ChannelNorm (datasets/normalize.py)
        self.mean = norm.mean.float().to(self.device).view(1, 3, 1, 1)
        self.std = norm.std.float().to(self.device).view(1, 3, 1, 1)
        self._stream: torch.cuda.Stream | None = None  # CUDA: the loader thread's side stream (made on first use)

    def __len__(self) -> int:
        return len(self.samples)

    def num_batches(self, batch_size: int) -> int:
        return -(-len(self) // batch_size)

    def shard(self, rank: int, world_size: int) -> DeviceDecodeSplit:
        """Rank ``rank``'s contiguous share of the split (evaluation across data-parallel ranks)."""
        n = len(self)
        part = DeviceDecodeSplit.__new__(DeviceDecodeSplit)
        part.__dict__.update(self.__dict__)
        part.samples = self.samples[rank * n // world_size : (rank + 1) * n // world_size]
        return part

    def _load(self, pool, paths: list) -> list:
        """Each file as a ``(3, H, W)`` uint8 tensor on the device."""
        raw = list(pool.map(_read, paths))
        if self.device.type == "cuda":
            from torchvision.io import ImageReadMode, decode_jpeg

            jpeg = [i for i, d in enumerate(raw) if _is_jpeg(d)]
            images: list[torch.Tensor | None] = [None] * len(raw)
            if jpeg:
                try:
                    decoded = decode_jpeg([raw[i] for i in jpeg], mode=ImageReadMode.RGB, device=self.device)
                except RuntimeError:  # a file nvJPEG cannot decode (e.g. CMYK) fails the call: this batch on the CPU
                    decoded = [_decode_cpu(raw[i]).to(self.device) for i in jpeg]
                for i, img in zip(jpeg, decoded):
                    images[i] = img
            for i, d in enumerate(raw):
                if images[i] is None:
                    images[i] = _decode_cpu(d).to(self.device, non_blocking=True)
            return images
        return list(pool.map(_decode_cpu, raw))

    def _prepare(self, pool, paths: list, offsets, flips):
        """``(x, event)``: the batch, and on CUDA the event after which it is ready. On CUDA the
        loader thread works on a side stream of its own (the decoder writes from its own stream;
        the training stream waits for ``event`` and records ``x`` before using it)."""
        if self.device.type != "cuda":
            return self._assemble(self._load(pool, paths), offsets, flips), None
        torch.cuda.set_device(self.device)  # a thread starts on cuda:0; data-parallel ranks use others
        if self._stream is None:
            self._stream = torch.cuda.Stream(device=self.device)
        with torch.cuda.stream(self._stream):
            x = self._assemble(self._load(pool, paths), offsets, flips)
            event = torch.cuda.Event()
            event.record(self._stream)
        return x, event

    def _ready(self, prepared) -> torch.Tensor:
        """The batch of ``_prepare``, safe to use on the current stream."""
        x, event = prepared
        if event is not None:
            current = torch.cuda.current_stream(self.device)
            current.wait_event(event)
            x.record_stream(current)
        return x

    def _assemble(self, images: list, offsets, flips) -> torch.Tensor:
        """``(B, 3, S, S)`` float32: each image's crop box resized to ``S x S``, flipped, normalised."""
        sizes = torch.tensor([img.shape[1:] for img in images])
        boxes = crop_boxes(sizes, self.resize, self.side, offsets).tolist()  # host-side geometry
        crops = []
        for img, (top, left, h, w) in zip(images, boxes):  # images differ in size: one resize each
            t0, l0 = int(top), int(left)
            t1, l1 = min(img.shape[1], max(t0 + 1, round(top + h))), min(img.shape[2], max(l0 + 1, round(left + w)))
            crop = img[None, :, t0:t1, l0:l1]
            if crop.device.type == "cpu":  # uint8 channels-last: torch's vectorised antialiased resize (5x float's)
                crop = crop.contiguous(memory_format=torch.channels_last)
            else:
                crop = crop.float()
            crops.append(
                F.interpolate(crop, size=(self.side, self.side), mode="bilinear", antialias=True, align_corners=False)
            )
        x = torch.cat(crops).float().contiguous()
        if flips is not None:
            x = torch.where(flips.to(self.device).view(-1, 1, 1, 1), x.flip(3), x)
        return x.div_(self.max_value).sub_(self.mean).div_(self.std)

    def batches(self, batch_size: int, generator: torch.Generator | None = None, augment=None, rows=None):
        """``(x (B, 3, S, S) float32, y (B,) int64)`` on the device; shuffled when ``generator`` is given.
        ``rows(n) -> slice``: this rank's rows of each ``n``-row global batch (data parallelism)."""
        n = len(self)
        order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
        crop_gen = None
        if generator is not None and self.augment:
            crop_gen = torch.Generator().manual_seed(int(torch.randint(0, 2**62, (1,), generator=generator)))
        labels = torch.tensor([c for _, c in self.samples])
        plan = []
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            offsets = flips = None
            if crop_gen is not None:  # drawn for the whole global batch, then this rank's rows
                offsets = torch.rand(len(idx), 2, generator=crop_gen)
                flips = torch.rand(len(idx), generator=crop_gen) < 0.5 if self.flip else None
            if rows is not None:
                part = rows(len(idx))
                idx, offsets = idx[part], offsets[part] if offsets is not None else None
                flips = flips[part] if flips is not None else None
            plan.append((idx.tolist(), offsets, flips))
        with ThreadPoolExecutor(self.workers) as pool, ThreadPoolExecutor(1) as loader:
            ahead = None
            paths = lambda idx: [self.samples[j][0] for j in idx]  # noqa: E731
            for i, (batch_idx, offsets, flips) in enumerate(plan):
                x = self._ready(
                    ahead.result() if ahead is not None else self._prepare(pool, paths(batch_idx), offsets, flips)
                )
                if i + 1 < len(plan):  # read, decode and crop the next batch while this one trains
                    ahead = loader.submit(self._prepare, pool, paths(plan[i + 1][0]), *plan[i + 1][1:])
                yield x, labels[batch_idx].to(self.device, non_blocking=True)
