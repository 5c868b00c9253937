"""Types every layer shares, at the bottom of the import order (docs/architecture.md): the latent
energy (energy.py), the calibration map a checkpoint may carry (score_map.py), and Model (model.py)."""
