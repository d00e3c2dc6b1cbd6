"""Machine learning: device choice, model factory, checkpoints, inference, training.

Submodules are imported explicitly (``from workbench.ml.inference import Predictor``)
so that importing ``workbench.ml`` stays cheap and never pulls in torch by itself.
"""
