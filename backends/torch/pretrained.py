"""A network as a folder the Hugging Face ecosystem reads: ``save_pretrained`` and
``from_pretrained``, with no network access.

Layout::

    config.json               the IR (``mnc.ir.serialize``): the whole network description
    model.safetensors         the weights, with the IR and its hash in the header
    preprocessor_config.json  how images become the input (``MouseNet.pretrained_cfg``)
    README.md                 the model card (``mnc.model_card``): sources, preprocessing,
                              metrics where known

``from_pretrained`` rebuilds the network from ``model.safetensors`` alone and refuses a folder
whose ``config.json`` describes another network than the weights carry.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from mnc.errors import UserFileError
from mnc.io.atomic import write_text_atomic
from mnc.io.textfile import read_json_file
from mnc.ir.serialize import ir_to_json
from mnc.model_card import model_card
from mnc_backends.torch.weights_io import Network, load_model, save_model

if TYPE_CHECKING:
    from mnc_backends.torch.module import MouseNet

CONFIG = "config.json"
WEIGHTS = "model.safetensors"
PREPROCESSOR = "preprocessor_config.json"
CARD = "README.md"
MAX_CONFIG_BYTES = 64 * 1024 * 1024


def save_pretrained(
    model: MouseNet, folder: str | Path, metrics: Mapping[str, float] | None = None
) -> Path:
    """Write ``folder`` (made if missing); the weights go last, so a folder with weights is
    complete. Returns the folder."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise UserFileError(
            f"{folder}: exists and is not a folder (save_pretrained writes a folder of files)"
        )
    folder.mkdir(parents=True, exist_ok=True)
    cfg = model.pretrained_cfg
    parameters = sum(parameter.numel() for parameter in model.parameters())
    write_text_atomic(folder / CONFIG, ir_to_json(model.ir) + "\n")
    write_text_atomic(folder / PREPROCESSOR, json.dumps(cfg, indent=2) + "\n")
    write_text_atomic(folder / CARD, model_card(model.ir, cfg, parameters, metrics))
    save_model(model, folder / WEIGHTS)
    return folder


def from_pretrained(folder: str | Path, network: type[Network]) -> Network:
    """The network a ``save_pretrained`` folder holds, built as a ``network`` (``MouseNet``);
    UserFileError naming what is wrong."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserFileError(
            f"{folder}: no such folder (from_pretrained reads a local folder "
            f"written by save_pretrained, and never downloads)"
        )
    weights = folder / WEIGHTS
    if not weights.is_file():
        raise UserFileError(
            f"{folder}: holds no {WEIGHTS} (a save_pretrained folder has "
            f"{CONFIG}, {WEIGHTS}, {PREPROCESSOR} and {CARD})"
        )
    model = load_model(weights, network)
    config = folder / CONFIG
    if config.is_file():
        data = read_json_file(config, MAX_CONFIG_BYTES, "mnc IR (config.json)")
        found = data.get("content_hash") if isinstance(data, dict) else None
        if found != model.ir.content_hash:
            raise UserFileError(
                f"{config}: describes network {str(found)[:12]}, but {WEIGHTS} holds "
                f"{model.ir.short_hash}; the folder mixes two networks (save it again)"
            )
    return model
