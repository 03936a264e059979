"""Pretraining the relational foundation model: episodes, training driver, zero-shot metrics.

``dbt-rfm pretrain --steps N --out DIR`` (see ``docs/pretraining.md``) runs
:func:`dbt_rfm.pretrain.loop.run_pretrain`. Modules:

* :mod:`~dbt_rfm.pretrain.tasks`: a random target on a database -> a time-split, tokenized task;
* :mod:`~dbt_rfm.pretrain.cache`: prepared tasks on disk (``.npz``);
* :mod:`~dbt_rfm.pretrain.sources`: the data mix (training pool, held-out groups);
* :mod:`~dbt_rfm.pretrain.episode`: context/query episodes and their loss;
* :mod:`~dbt_rfm.pretrain.evaluate`: zero-shot metrics;
* :mod:`~dbt_rfm.pretrain.checkpoint`: the atomic resume checkpoint;
* :mod:`~dbt_rfm.pretrain.loop`: the driver; :mod:`~dbt_rfm.pretrain.command`: the CLI flags.

Needs the ``train`` extra (torch); nothing is imported here so the CLI stays light.
"""
