"""Binary neural networks on bit-packed XNOR + popcount, from NumPy.

Three lines classify an array of MNIST-sized images::

    import bnn
    model = bnn.load("weights/seed.bnn")
    classes = model.predict(images)      # uint8 (N, 784) or (N, 28, 28)

``predict``, ``scores`` and ``train`` release the GIL, so a model can be
shared by many Python threads. Errors carry the command line tool's
one-line messages: ``OSError`` (with ``filename``) when a file cannot be
read or written, ``ValueError`` for a wrong file or value, ``TypeError``
for an array of the wrong dtype.
"""

from ._bnn import Model, __version__, from_numpy, from_onnx, kernels, load, mnist, train
from .keras import from_keras

__all__ = [
    "Model",
    "__version__",
    "from_keras",
    "from_numpy",
    "from_onnx",
    "kernels",
    "load",
    "mnist",
    "train",
]
