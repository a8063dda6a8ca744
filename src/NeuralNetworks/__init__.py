"""NeuralNetworks: neural networks written from scratch on NumPy, with a Keras-style API."""

__version__ = "0.1.0"

__all__ = ["__version__"]
