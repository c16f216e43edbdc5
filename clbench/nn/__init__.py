"""Pure-torch layers and networks (no Avalanche import here)."""

from clbench.nn.networks import Classifier, MultiHead, build_model, mlp_features
from clbench.nn.resnet import reduced_resnet18_features

__all__ = ["Classifier", "MultiHead", "build_model", "mlp_features", "reduced_resnet18_features"]
