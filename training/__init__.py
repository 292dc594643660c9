"""The recurrence-complete action model, its loader and trainer."""

# Installed as a subpackage of ghframes (pyproject.toml package-dir). From the repository root
# the folder would also import as `training`: a second copy of every module, its classes and its
# state, which isinstance checks and checkpoints would tell apart.
if __name__ != "ghframes.training":
    raise ImportError("import the trainer as ghframes.training (python -m ghframes.training.train)")
