"""Top-1 / top-5 accuracy and loss on a validation split (during training and ``mnc evaluate``).

Evaluation items are preprocessed by ``mnc.imaging`` (resize, centre crop, normalise), the same
code ``mnc predict`` runs, so the accuracy reported here is what a deployed model gets.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from mnc.analysis.limits import check_memory
from mnc_backends.torch.training import checkpoint, distributed, loaders, progress
from mnc_backends.torch.training.config import TrainConfig, build_config, config_from_plain
from mnc_backends.torch.training.data import build_splits
from mnc_backends.torch.training.datasets import drop_unreadable
from mnc_backends.torch.training.model import build_model, ir_of, load_state, network_input
from mnc_backends.torch.training.transforms import normalize_batch


@torch.no_grad()
def evaluate_loader(model: torch.nn.Module, loader: torch.utils.data.DataLoader,
                    context: distributed.Context, config: TrainConfig,
                    amp_dtype: torch.dtype = torch.bfloat16,
                    show_progress: bool | None = False,
                    description: str = "evaluate") -> dict[str, float]:
    """Mean loss, top-1 and top-5 over every readable item of the loader's data set (all
    ranks); ``skipped_images`` counts the image files that could not be read.
    ``show_progress`` as in ``progress.bar`` (``None``: a bar or log lines)."""
    was_training = model.training
    model.eval()
    sums = torch.zeros(4, device=context.device, dtype=torch.float64)
    skipped = torch.zeros(1, device=context.device, dtype=torch.float64)
    total = len(loader.sampler) * context.world_size  # type: ignore[arg-type]
    bar = progress.bar(total, description, show_progress if context.is_main else False)
    for images, labels in loader:
        images, labels, unreadable = drop_unreadable(images, labels)
        skipped += unreadable
        if not labels.numel():
            continue
        images = normalize_batch(images.to(context.device, non_blocking=True), config.mean,
                                 config.std, bool(config.channels_last))
        labels = labels.to(context.device, non_blocking=True)
        with torch.autocast(context.device.type, dtype=amp_dtype, enabled=bool(config.amp)):
            logits = model(network_input(model, images))
        logits = logits.float()
        k = min(5, logits.shape[1])
        top = logits.topk(k, dim=1).indices
        hits = top == labels.unsqueeze(1)
        sums += torch.stack([F.cross_entropy(logits, labels, reduction="sum").double(),
                             hits[:, 0].sum().double(), hits.any(dim=1).sum().double(),
                             torch.tensor(float(labels.shape[0]), device=context.device,
                                          dtype=torch.float64)])
        bar.update(labels.shape[0] * context.world_size)
    bar.close()
    model.train(was_training)
    loss, top1, top5, count = distributed.all_reduce_sum(sums, context).tolist()
    unreadable_total = int(distributed.all_reduce_sum(skipped, context).item())
    images = int(count)
    count = max(count, 1.0)
    return {"loss": loss / count, "top1": top1 / count, "top5": top5 / count,
            "images": images, "skipped_images": unreadable_total}


def evaluate_checkpoint(path: str | Path, overrides: dict[str, Any] | None = None,
                        split: str = "val") -> dict[str, Any]:
    """Load a checkpoint (or saved model) and measure it on a data set's split.

    Preprocessing settings (mean, std, crop fraction) come from the checkpoint's training
    config when it has one, so evaluation matches how the network was trained.
    """
    content = checkpoint.load_checkpoint(path, training=False)
    origin = str(path)
    ir = ir_of(content, origin)
    base = (config_from_plain(content["config"], origin).model_dump(mode="json")
            if content.get("config") else {})
    for key in ("workers", "device", "amp", "channels_last", "format"):
        base.pop(key, None)  # machine-specific: chosen again for this machine
    config = build_config(base, overrides)
    context = distributed.setup(config.device)
    try:
        splits = build_splits(config, (ir.input.height, ir.input.width), ir.input.channels,
                              ir.readout.classes, splits=(split,))
        dataset = splits.train if split == "train" else splits.val
        on_cuda = context.device.type == "cuda"
        config = config.model_copy(update={
            "amp": on_cuda if config.amp is None else config.amp,
            "channels_last": on_cuda if config.channels_last is None else config.channels_last,
            "workers": loaders.default_workers(config.workers, context.device,
                                               context.world_size, splits.format)})
        per_rank = max(1, config.batch_size // context.world_size)
        check_memory(ir, "run", batch=min(per_rank, len(dataset)), origin=origin)
        model = build_model(ir)
        load_state(model, content["state_dict"], origin)
        model = model.to(context.device)
        if config.channels_last:
            model = model.to(memory_format=torch.channels_last)
        loader = loaders.make_loader(
            dataset, loaders.ShardSampler(len(dataset), context.world_size, context.rank),
            per_rank, config.workers or 0, on_cuda, config.prefetch_factor)
        amp_dtype = torch.bfloat16 if config.amp_dtype == "bfloat16" else torch.float16
        result = evaluate_loader(model, loader, context, config, amp_dtype, config.progress)
    finally:
        distributed.teardown()
    return {"checkpoint": origin, "data": config.data, "format": splits.format, "split": split,
            "content_hash": ir.content_hash, "epoch": content.get("epoch"), **result}
