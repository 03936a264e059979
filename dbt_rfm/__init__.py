"""dbt-rfm: in-warehouse prediction with a relational foundation model."""

from dbt_rfm.errors import RfmError

__all__ = ["RfmError"]
__version__ = "0.1.0"
