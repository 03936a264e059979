"""The net: a relational transformer over cell tokens and an in-context learning head (torch).

Needs the ``train`` extra. Scoring never imports this package: it runs the exported ONNX
artifact through :mod:`rfm_runtime`.
"""

from dbt_rfm.nn.config import NetConfig
from dbt_rfm.nn.encoder import RelationalEncoder
from dbt_rfm.nn.icl_head import ICLHead

__all__ = ["ICLHead", "NetConfig", "RelationalEncoder"]
