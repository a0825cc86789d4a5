"""The training machinery both sides rely on: checkpoint callbacks and the resume path, DDP
helpers, the private Lightning APIs lit_rl uses, crash-safe files and evaluation videos."""
