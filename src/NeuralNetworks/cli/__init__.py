"""The command line: ``NeuralNetworks train | test | predict | info | inspect | download | export | app``.

Thin by design: ``parser`` declares the arguments, ``checks`` judges flag values before anything runs,
``recipe`` turns the training flags into an optimizer, a schedule and callbacks, and ``commands`` calls the
library and prints. Every expected failure (bad data, a file that is not a model, a wrong flag value) becomes
one line ``error: ...`` on stderr and exit status 2; Ctrl-C during training saves the best weights so far and
exits with 130.
"""

from ..data import catalog
from .commands import class_table, main
from .parser import ARCHITECTURES, build_parser

__all__ = ["main", "build_parser", "class_table", "ARCHITECTURES", "catalog"]
