"""Calibrating a discriminator into a logit: raw, platt (alias logistic), isotonic, finetune, head, dcd.

`calibrate` (methods.py) is the one entry point; run.py writes its result as a checkpoint.
"""
from .maps import Calibration
from .methods import METHODS, CalibrationResult, calibrate

__all__ = ["Calibration", "CalibrationResult", "METHODS", "calibrate"]
