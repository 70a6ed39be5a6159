"""What the fast strategies prepare from a model's weights, and the one rule that drops it.

The ``merged`` strategy folds BatchNorm into box kernels (per device and dtype), the ``sparse``
strategy compiles programs for its kernel, and ``auto`` compares the masks' density with a
threshold. All of it lives in one ``PreparedCache`` per model and is dropped all at once when:

- ``MouseNet.invalidate()`` is called: the documented call after a change torch does not see
  (a write through ``tensor.numpy()`` or DLPack, a ``param.data = ...`` assignment);
- ``load_state_dict`` loads into the model or a module holding it (a post-hook, torch's
  public signal);
- the state key changes. It holds every parameter's and buffer's identity (a replaced
  tensor) and version counter, which torch bumps on every in-place update (optimizer steps,
  ``copy_`` or ``mul_`` under ``no_grad``), and every submodule's identity (a swapped module).
  Version counters are a private tensor attribute; this module is the only reader. A tensor
  made under ``torch.inference_mode`` has none: then nothing is cached at all.

The same listing of the module tree tells whether a submodule has a forward or backward hook
(``fast.hooks`` then tells which the fast strategies can fire themselves).
"""

from __future__ import annotations

import operator
import threading
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import torch
from torch import nn

Prepared = TypeVar("Prepared")
_HOOK_TABLES = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks")
_GLOBAL_HOOK_TABLES = tuple(f"_global{table}" for table in _HOOK_TABLES)
_UNPINNED = object()
_NOT_READ = object()
_VERSION = operator.attrgetter("_version")


def _drop_after_load(module: nn.Module, incompatible_keys: Any) -> None:  # noqa: ANN401
    """``load_state_dict`` post-hook: a module-level function, so the model still pickles."""
    invalidate = getattr(module, "invalidate", None)
    if invalidate is not None:
        invalidate()


class PreparedCache:
    """Everything derived from one model's weights, by name, and when it is stale."""

    def __init__(self, model: nn.Module) -> None:
        self._model = model
        self._entries: dict[Hashable, Any] = {}
        self._key: tuple | None = None
        self._pinned = threading.local()
        self._list()
        # A copied model carries the hook already (deepcopy and pickle copy the hook table)
        if _drop_after_load not in model._load_state_dict_post_hooks.values():  # noqa: SLF001
            model.register_load_state_dict_post_hook(_drop_after_load)

    def _list(self) -> None:
        modules = list(self._model.modules())
        self._children = [module._modules for module in modules]  # noqa: SLF001
        self._structure = self._shape()
        self._slots = [(table, name) for module in modules
                       for table in (module._parameters, module._buffers)  # noqa: SLF001
                       for name in table]
        # the model's own hooks are left out: its __call__ runs them whatever the strategy
        self._hook_tables = [getattr(module, table) for module in modules[1:]
                             for table in _HOOK_TABLES]

    def _shape(self) -> tuple[int, ...]:
        return tuple(id(child) for table in self._children for child in table.values())

    def _relist_if_changed(self) -> None:
        if getattr(self._pinned, "listed", False):
            return  # already looked at within this call
        if self._shape() != self._structure:
            self._list()
        if getattr(self._pinned, "key", _UNPINNED) is not _UNPINNED:
            self._pinned.listed = True

    def invalidate(self) -> None:
        """Drop everything prepared; the next call prepares it again from the weights."""
        self._entries = {}
        self._key = None

    def hooks_registered(self) -> bool:
        """Whether a submodule has a forward or backward hook, or one is registered for every
        module (``torch.nn.modules.module.register_module_forward_hook`` and alike). torch
        signals no hook being added, so this looks at the hook tables (dicts that registering
        fills in place): tens of microseconds for the default spec."""
        shared = torch.nn.modules.module
        if any(getattr(shared, table, None) for table in _GLOBAL_HOOK_TABLES):
            return True
        self._relist_if_changed()
        return any(self._hook_tables)

    def _state_key(self) -> tuple | None:
        """The weights' state now; None when a tensor has no version counter."""
        self._relist_if_changed()
        tensors = [table[name] for table, name in self._slots]
        try:  # (map over an attrgetter: a third of a generator's time; fixed costs count)
            versions = tuple(map(_VERSION, tensors))
        except AttributeError:  # a slot holds None
            versions = tuple(-1 if t is None else t._version for t in tensors)  # noqa: SLF001
        except RuntimeError:  # an inference tensor: it has no version counter
            return None
        return self._structure + versions + tuple(map(id, tensors))

    def _current_key(self) -> tuple | None:
        pinned: Any = getattr(self._pinned, "key", _UNPINNED)
        if pinned is _UNPINNED:
            return self._state_key()
        if pinned is _NOT_READ:
            pinned = self._pinned.key = self._state_key()
        return pinned  # type: ignore[no-any-return]

    @contextmanager
    def call(self) -> Iterator[None]:
        """Within one strategy call (on this thread), read the state key at most once: the
        choice and the executors then share it instead of each walking the tensors again."""
        if getattr(self._pinned, "key", _UNPINNED) is not _UNPINNED:
            yield  # already inside a call on this thread
            return
        self._pinned.key = _NOT_READ
        try:
            yield
        finally:
            del self._pinned.key
            self._pinned.listed = False

    def get(self, name: Hashable, build: Callable[[], Prepared]) -> Prepared:
        """The entry ``name``, built by ``build()`` unless one built from the present weights
        is held."""
        key = self._current_key()
        if key is None:
            self.invalidate()
            return build()
        entries = self._entries
        if key != self._key:
            entries = self._entries = {}
            self._key = key
        if name not in entries:
            entries[name] = build()
        return entries[name]
