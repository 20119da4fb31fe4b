"""Opt-in speed/memory options applied to a module before training: torch.compile, activation checkpointing."""

from __future__ import annotations

import functools

from torch import nn
from torch.distributed.algorithms._checkpoint.checkpoint_wrapper import (
    CheckpointImpl,
    apply_activation_checkpointing,
    checkpoint_wrapper,
)


class ActivationCheckpointingUnavailable(ValueError):
    """activation_checkpointing=true for a model that does not name blocks to checkpoint."""


def compile_networks(module: nn.Module) -> list[str]:
    """torch.compile every direct child network of the module in place (parameter names and
    checkpoints unchanged); children without parameters are left alone.  Returns the compiled names."""
    names = []
    for name, child in module.named_children():
        if not any(True for _ in child.parameters()):
            continue
        child.compile()
        names.append(name)
    return names


def enable_activation_checkpointing(module: nn.Module) -> int:
    """Recompute the activations of the module's blocks in backward instead of storing them.

    A model offers this by listing its block classes in the class attribute
    `activation_checkpointing_blocks` (e.g. `(ResidualBlock,)`); every submodule of those classes is
    wrapped (non-reentrant torch.utils.checkpoint), state-dict keys unchanged.  Returns how many blocks
    were wrapped."""
    blocks = tuple(getattr(module, "activation_checkpointing_blocks", ()))
    if not blocks:
        raise ActivationCheckpointingUnavailable(
            f"{type(module).__name__} does not offer activation checkpointing: it has no "
            "`activation_checkpointing_blocks` (set activation_checkpointing=false)"
        )
    count = sum(isinstance(m, blocks) for m in module.modules())
    wrapper = functools.partial(checkpoint_wrapper, checkpoint_impl=CheckpointImpl.NO_REENTRANT)
    apply_activation_checkpointing(module, checkpoint_wrapper_fn=wrapper, check_fn=lambda m: isinstance(m, blocks))
    return count
