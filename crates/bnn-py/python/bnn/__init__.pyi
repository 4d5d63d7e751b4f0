from os import PathLike
from typing import Any, Callable, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import numpy.typing as npt

_Path = Union[str, PathLike[str]]

__version__: str

class Model:
    """A binary neural network, ready to classify uint8 images."""

    @property
    def inputs(self) -> int: ...
    @property
    def classes(self) -> Union[list[str], list[int]]:
        """The class names, or the class indices when the model has none."""
    @property
    def num_classes(self) -> int: ...
    @property
    def description(self) -> str: ...
    def predict(
        self,
        images: Union[npt.NDArray[np.uint8], npt.NDArray[np.floating[Any]]],
        threads: Optional[int] = None,
        kernel: Optional[str] = None,
    ) -> npt.NDArray[np.int64]:
        """Classes of (N, inputs) or (N, H, W[, C]) uint8 images, shape (N,); or of
        float rows (N, D) for a model with a stored feature encoding."""
    def scores(
        self,
        images: npt.NDArray[np.uint8],
        threads: Optional[int] = None,
        kernel: Optional[str] = None,
    ) -> npt.NDArray[np.float32]:
        """Output scores, float32 of shape (N, classes)."""
    def classify(
        self,
        images: npt.NDArray[np.uint8],
        threads: Optional[int] = None,
        kernel: Optional[str] = None,
    ) -> Tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
        """Classes and scores from one pass."""
    def with_rule(self, rule: str) -> "Model":
        """The same network with the decision rule "scores" or "seed"."""
    @property
    def class_names(self) -> Optional[list[str]]:
        """The class names stored in the model, or None."""
    @property
    def encoding(self) -> Optional[str]:
        """The stored feature encoding, described, or None."""
    def with_class_names(self, names: Sequence[str]) -> "Model":
        """The same network with its classes named (saved in the file)."""
    def with_encoding(
        self,
        x: npt.ArrayLike,
        kind: str = "minmax",
        levels: Optional[int] = None,
    ) -> "Model":
        """The same network with a feature encoding fitted on rows x (N, D):
        "minmax", or "thermometer" with levels cut points per feature."""
    def evaluate(
        self,
        x: npt.NDArray[Any],
        y: npt.ArrayLike,
        threads: Optional[int] = None,
        kernel: Optional[str] = None,
    ) -> Tuple[float, npt.NDArray[np.int64]]:
        """Accuracy and the confusion matrix [true, predicted] on x against y."""
    def info(self) -> dict[str, Any]:
        """Shape, rule, input encoding and shape, bytes on disk and in memory."""
    def save(self, path: _Path) -> None:
        """Writes the model as a .bnn file, atomically."""

def load(path: _Path) -> Model:
    """Loads a .bnn model file."""

def kernels() -> list[str]:
    """The kernels this CPU runs, best first."""

def mnist(
    dir: _Path = "data/mnist", split: str = "test"
) -> Tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8]]:
    """MNIST's "train" or "test" split: images (N, 28, 28) and labels (N,)."""

def from_numpy(
    layers: Sequence[Mapping[str, Any]],
    rule: str = "scores",
    input: str = "binary",
    threshold: int = 128,
    input_shape: Optional[Tuple[int, int, int]] = None,
    description: str = "",
) -> Model:
    """A model from (outputs, inputs) weight matrices and biases or batch norms."""

def from_onnx(path: _Path) -> Model:
    """A model from an ONNX file of a binary network (see docs/IMPORT.md)."""

def from_keras(model: Any, input_scale: float = 1.0, input_offset: float = 0.0) -> Model:
    """A model from a Larq/Keras binary network (QuantDense, QuantConv2D,
    BatchNormalization, MaxPool2D, Flatten); the Keras model sees
    pixel·input_scale + input_offset (see docs/IMPORT.md)."""

def train(
    recipe: Optional[str] = None,
    data: Optional[_Path] = None,
    output: Optional[_Path] = None,
    epochs: Optional[int] = None,
    seed: Optional[int] = None,
    progress: Optional[Callable[[dict[str, Any]], object]] = None,
    *,
    x: Optional[npt.NDArray[Any]] = None,
    y: Optional[npt.NDArray[np.integer[Any]]] = None,
    x_test: Optional[npt.NDArray[Any]] = None,
    y_test: Optional[npt.NDArray[np.integer[Any]]] = None,
    x_val: Optional[npt.NDArray[Any]] = None,
    y_val: Optional[npt.NDArray[np.integer[Any]]] = None,
    class_names: Optional[Sequence[str]] = None,
    encoding: Optional[str] = None,
    val_split: Optional[float] = None,
    test: Optional[_Path] = None,
    val: Optional[_Path] = None,
    labels: Optional[_Path] = None,
    label_column: Optional[str] = None,
    channels_first: bool = False,
) -> Tuple[Model, dict[str, Any]]:
    """Trains a recipe on MNIST (``data`` defaults to "data/mnist"), on your
    data set at path ``data`` (a .npz, .npy, .csv, or a directory of IDX
    files, CIFAR batches or class folders, as ``bnn train --data``), or on
    arrays x and y (uint8 images, or uint8/float features with ``encoding``
    "u8" or "thermometer[:K]"): the model and its metrics."""
