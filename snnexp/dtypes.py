"""The torch dtypes that ``model.dtype`` names."""

import torch

DTYPES = {"float64": torch.float64, "float32": torch.float32}
