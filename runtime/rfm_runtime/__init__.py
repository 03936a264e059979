"""rfm_runtime: score sampled subgraphs with an ONNX relational transformer.

Depends on numpy, pyarrow and onnxruntime only, so it can be staged into a warehouse
(Snowpark) or a scoring worker without torch or dbt.
"""

from rfm_runtime.errors import RfmError

__all__ = ["RfmError"]
__version__ = "0.1.0"
