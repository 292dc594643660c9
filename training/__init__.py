"""The recurrence-complete action model, its loader and trainer."""

# Installed as a subpackage of ghframes (pyproject.toml package-dir). From the repository root
# the folder would also import as `training`: a second copy of every module, its classes and its
# state, which isinstance checks and checkpoints would tell apart.
if __name__ != "ghframes.training":
    raise ImportError("import the trainer as ghframes.training (python -m ghframes.training.train)")


def load(path):
    """A training checkpoint (OUT/checkpoint.pt) read for use: `Loaded(model, model_config,
    train_config, action_names, step)`, the model in eval mode with the checkpoint's weights.
    Only tensors and plain data are loaded (torch.load weights_only); a file holding anything
    else is refused with a GhframesError before any of it runs. Imports torch on first use."""
    from .checkpoint import load as load_checkpoint

    return load_checkpoint(path)
