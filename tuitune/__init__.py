"""tuitune: fine-tune large language models from a terminal.

Importing this package must stay cheap: no torch, transformers or textual here.
"""

__version__ = "0.1.0"
