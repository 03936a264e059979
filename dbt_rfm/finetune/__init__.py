"""Fine-tuning the net on one declared target: ``dbt-rfm finetune`` (see ``docs/finetuning.md``).

Modules:

* :mod:`~dbt_rfm.finetune.config`: :class:`FinetuneConfig`, the run's settings;
* :mod:`~dbt_rfm.finetune.split`: the time split into training and validation anchors;
* :mod:`~dbt_rfm.finetune.warehouse`: a target's labelled context anchors and their cells, read
  from the DuckDB file ``dbt build`` wrote;
* :mod:`~dbt_rfm.finetune.loop`: episodes, validation, early stopping
  (:func:`~dbt_rfm.finetune.loop.finetune_arrays`, also used by the accuracy benchmark);
* :mod:`~dbt_rfm.finetune.artifact`: the versioned ONNX artifact and its report;
* :mod:`~dbt_rfm.finetune.command`: the CLI flags and the whole run.

Needs the ``train`` extra (torch); nothing is imported here so the CLI stays light.
"""
